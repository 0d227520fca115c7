"""elastic-recheck: tell developers why their change failed CI when it is a known bug."""

__version__ = "0.1.0"
