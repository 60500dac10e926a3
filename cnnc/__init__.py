"""cnnc: a declarative CNN graph compiler.

Specs (text DSL, YAML, Python) are lowered to one layer graph, shape-inferred, optimised and run
on OpenCL devices, with a NumPy interpreter as the reference backend.

    import cnnc
    graph = cnnc.load_spec("specs/fashion.yaml")
    model = cnnc.compile(graph, backend="opencl")
    probs = model.predict(images)
"""

from __future__ import annotations

from cnnc.version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: `cnnc` starts faster
if TYPE_CHECKING:
    from typing import Any

    from cnnc.errors import CnncError
    from cnnc.frontend.network import Network
    from cnnc.ir.graph import Graph
    from cnnc.model import Model


def load_spec(spec: Any, *, name: str | None = None) -> Graph:
    """A graph from a spec: a path (.yaml/.yml/.cnn), DSL or YAML text, a dict, or a Network."""
    from cnnc.frontend.spec import load_spec as _load

    return _load(spec, name=name)


def compile(
    spec: Any, backend: str | None = None, device: str | None = None, **options: Any
) -> Model:
    """Compile a spec (anything load_spec takes, or a Graph) for a backend.

    backend: None (the default) picks the fast device as `cnnc run` does: the OpenCL device
    `device` or $CNNC_DEVICE names, else the first qualified GPU, then CPU; where no device
    qualifies, the NumPy reference, with a warning once (float64 always runs on NumPy).
    'numpy' asks for the reference interpreter, 'opencl' for OpenCL (an error without a
    device). device: for OpenCL, 'gpu', 'cpu', 'P:D' (platform:device index) or part of a
    device name; None picks the default device.
    options: seed (int, initialisation and dropout), dtype ('float32' or 'float64', NumPy only),
    loss and optimizer (override the spec's), learning_rate (the optimizer's), tune (OpenCL: 'cached', the default, runs the
    kernel variants the tuning cache holds for the device; 'never' the defaults; seconds: also
    tune what the cache lacks on first use, within that budget; see Model.tune).
    """
    from cnnc.errors import CnncError, did_you_mean
    from cnnc.model import COMPILE_OPTIONS, compile_model

    for key in options:
        if key not in COMPILE_OPTIONS:
            raise CnncError(f"cnnc.compile got an unknown keyword argument {key!r}",
                            hint=did_you_mean(str(key), COMPILE_OPTIONS)
                            or f"the options are {', '.join(COMPILE_OPTIONS)}")
    return compile_model(spec, backend=backend, device=device, **options)


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `import cnnc` (and the `cnnc` command's start) is quick.
    if name == "CnncError":
        from cnnc.errors import CnncError

        return CnncError
    if name == "Network":
        from cnnc.frontend.network import Network

        return Network
    if name == "Graph":
        from cnnc.ir.graph import Graph

        return Graph
    if name in _CALLBACKS:  # Keras' callbacks: cnnc.EarlyStopping, or cnnc.callbacks.*
        from cnnc.train import callbacks

        return callbacks if name == "callbacks" else getattr(callbacks, name)
    raise AttributeError(f"module 'cnnc' has no attribute {name!r}")


_CALLBACKS = ("Callback", "EarlyStopping", "History", "LambdaCallback", "ModelCheckpoint",
              "ReduceLROnPlateau", "callbacks")

__all__ = ["Callback", "CnncError", "EarlyStopping", "Graph", "History", "LambdaCallback",
           "ModelCheckpoint", "Network", "ReduceLROnPlateau", "__version__", "callbacks",
           "compile", "load_spec"]


def __dir__() -> list[str]:
    # The names imported on first use (__getattr__) are public too: tab completion shows them;
    # this module's own helpers for its imports are not.
    return sorted({*globals(), *__all__} - {"TYPE_CHECKING", "annotations"})
