"""metatensor-torch (work in progress: this package is a skeleton for now)."""

from ._version import __version__


__all__ = ["__version__"]
