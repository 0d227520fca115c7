"""elastic-recheck: tell developers why their change failed CI when it is a known bug."""

from importlib.metadata import PackageNotFoundError, version

#: Set at build time from the git tags by setuptools-scm (``0.1.devN+g<hash>``
#: before the first tag); ``0+unknown`` when the package runs uninstalled.
try:
    __version__ = version("elastic-recheck")
except PackageNotFoundError:
    __version__ = "0+unknown"
