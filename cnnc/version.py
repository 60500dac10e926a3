"""cnnc's version, in a leaf module that every layer may import (the package root re-exports it)."""

__version__ = "0.1.0"
