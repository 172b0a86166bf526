"""The package version, in a module of its own so that importing it ties nothing together."""

__version__ = "0.1.0"
