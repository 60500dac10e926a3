"""Helpers for the ONNX tests: models built with onnx.helper, run in onnxruntime and in cnnc.

onnxruntime is the oracle: it is written by no one here. A model's 4-D inputs are NCHW unless
its first node transposes from NHWC; cnnc is fed NHWC and its 4-D outputs are NHWC, so the
comparison transposes to match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import cnnc

RTOL = 1e-5  # max |cnnc - onnxruntime| relative to max |onnxruntime|
OPSET = 17


def make_model(nodes: Sequence[Any], inputs: Mapping[str, Sequence[Any]],
               outputs: Sequence[str], initializers: Mapping[str, np.ndarray] | None = None,
               *, opset: int = OPSET, name: str = "test") -> onnx.ModelProto:
    """A model; `inputs` maps names to shapes ('N' for a symbolic batch)."""
    graph = helper.make_graph(
        list(nodes), name,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=opsets,
                             ir_version=helper.find_min_ir_version_for(opsets))


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def ort_outputs(path: Path, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; these models are tiny
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, dict(feeds))


def nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = float(np.max(np.abs(want))) or 1.0
    return float(np.max(np.abs(got.astype(np.float64) - want))) / scale


def check_against_ort(path: Path, x: np.ndarray, *, backend: str = "numpy",
                      input_layout: str = "nchw", graph: Any = None) -> Any:
    """Import `path`, run it in cnnc on `x` (given as the ONNX model takes it) and in
    onnxruntime; assert they agree within RTOL; returns the graph."""
    graph = graph if graph is not None else cnnc.load_spec(path)
    feed_name = _only_input(path)
    want = ort_outputs(path, {feed_name: x})
    cnnc_x = nhwc(x) if input_layout == "nchw" else x
    got = cnnc.compile(graph, backend=backend).predict(cnnc_x, batch_size=len(x))
    gots = [got] if not isinstance(got, dict) else [got[o] for o in graph.outputs]
    assert len(gots) == len(want)
    for g, w in zip(gots, want):
        err = relative_error(g, nhwc(w))
        assert err <= RTOL, f"{path.name} on {backend}: relative error {err:.2e}"
    return graph


def _only_input(path: Path) -> str:
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    (name,) = [i.name for i in model.graph.input if i.name not in inits]
    return name


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (rng(seed).standard_normal(shape) * scale).astype(np.float32)
