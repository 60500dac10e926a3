"""The NumPy backend: state tensors as host arrays, graphs run by the interpreter.

The compute dtype is a compile option: float32 (the default, like the OpenCL backend) or float64
(for finite-difference gradient checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from cnnc.backends.numpy.interpreter import NumpyExecutable
from cnnc.backends.step_figures import StepFigures
from cnnc.errors import CnncError, WeightsError, did_you_mean
from cnnc.ir.graph import Graph, StateSpec
from cnnc.ir.shapes import shape_str

DTYPES = ("float32", "float64")


class NumpyBackend:
    """cnnc.backends.base.Backend on host memory."""

    name = "numpy"

    def __init__(self, dtype: str = "float32"):
        if dtype not in DTYPES:
            raise CnncError(f"the numpy backend computes in {' or '.join(DTYPES)}, "
                            f"not {dtype!r}")
        self.dtype = np.dtype(dtype)
        self._state: dict[str, np.ndarray] = {}
        self._figures: list[StepFigures] = []  # steps run with a Record, not read yet

    # ------------------------------------------------------------ state

    def state_names(self) -> tuple[str, ...]:
        return tuple(self._state)

    def state_arrays(self) -> Mapping[str, np.ndarray]:
        """The live arrays (the interpreter reads and updates them in place)."""
        return self._state

    def init_state(self, specs: Sequence[StateSpec], values: Mapping[str, np.ndarray]) -> None:
        for spec in specs:
            if spec.name not in values:
                raise WeightsError(f"no initial value for '{spec.name}'")
            value = _shaped(spec.name, values[spec.name], spec.shape)
            self._state[spec.name] = np.array(value, dtype=self.dtype, copy=True)

    def read_state(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {name: self._lookup(name).copy() for name in names}

    def write_state(self, values: Mapping[str, np.ndarray]) -> None:
        for name, value in values.items():
            target = self._lookup(name)
            target[...] = _shaped(name, value, target.shape)

    def _lookup(self, name: str) -> np.ndarray:
        try:
            return self._state[name]
        except KeyError:
            raise WeightsError(f"no state tensor named '{name}'",
                               hint=did_you_mean(name, self._state)) from None

    # ------------------------------------------------------------ graphs

    def compile(self, graph: Graph, batch: int, *, keep: Iterable[str] = ()) -> NumpyExecutable:
        """keep: values to keep readable after a run (the interpreter keeps what it is asked
        for at each run, so this is accepted for the Backend interface and not needed)."""
        return NumpyExecutable(self, graph, batch)

    # ------------------------------------------------------------ queued steps

    def keep_step_figures(self, figures: StepFigures) -> None:
        self._figures.append(figures)

    def read_step_figures(self) -> list[StepFigures]:
        """The figures of the steps run with a Record since the last call, in order."""
        figures, self._figures = self._figures, []
        return figures


def _shaped(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`value` as an array, if it has the state tensor's shape (never broadcast into it)."""
    value = np.asarray(value)
    if value.shape != shape:
        raise WeightsError(f"'{name}' has shape {shape_str(value.shape)}, "
                           f"expected {shape_str(shape)}")
    return value
