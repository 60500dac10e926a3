"""The NumPy reference backend: an interpreter over the op table, the specification of every op."""

from cnnc.backends.numpy.backend import NumpyBackend
from cnnc.backends.numpy.interpreter import ExecutionError, NumpyExecutable
from cnnc.backends.numpy.table import IMPLS

__all__ = ["IMPLS", "ExecutionError", "NumpyBackend", "NumpyExecutable"]
