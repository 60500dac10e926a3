"""Backends: each adds implementations to the op table and runs graphs (see base.py)."""

from cnnc.backends.base import Backend, Executable, get_backend

__all__ = ["Backend", "Executable", "get_backend"]
