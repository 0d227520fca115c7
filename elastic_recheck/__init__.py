"""elastic-recheck: tell developers why their change failed CI when it is a known bug."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, looked up on first use: ``importlib.metadata`` costs
    start-up time that ``--help`` and most commands do not need.

    Set at build time from the git tags by setuptools-scm (``0.1.devN+g<hash>``
    before the first tag); ``0+unknown`` when the package runs uninstalled.
    """
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("elastic-recheck")
    except PackageNotFoundError:
        found = "0+unknown"
    globals()["__version__"] = found
    return found
