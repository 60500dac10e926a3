"""Entry point: cnnc as a backend of ONNX's test runner (`onnx.backend.base.Backend`).

    import cnnc.onnx_backend as backend
    rep = backend.prepare(model, "CPU")          # the NumPy reference interpreter
    rep = backend.prepare(model, "OPENCL")       # OpenCL's default device ("OPENCL:P:D" names one)
    outputs = rep.run([x, ...])                  # ONNX's layouts in, ONNX's layouts out

A model goes through the same importer as `cnnc.load_spec` (cnnc/frontend/onnx_import.py), so
what cnnc cannot model is refused with the importer's message (a CnncError, which the runner
records as a failure). ONNX's runner only asks for the devices 'CPU' and 'CUDA', so
`OpenCLBackend` is the same backend with 'CPU' meaning OpenCL's default device (pocl's CPU device
on a machine without a GPU): `BackendTest(cnnc.onnx_backend.OpenCLBackend, __name__)`.

The layouts are mapped at the boundary: a 4-D NCHW input is fed to cnnc as NHWC, and each output
is transposed back to what ONNX computes (the importer says how, per value; an NCHW tensor
flattened as an output has its columns put back in ONNX's order). The values a cnnc
network holds as weights (a Conv's W, a Reshape's shape, a Gemm's B) are graph inputs in ONNX's
node tests: a graph input that the importer needs as a constant, and every non-float input, is
bound to the array `run` is given, as an initialiser would be, and the model is compiled for
those values (once per distinct value).

A graph of element-wise operators only (activations, arithmetic, Clip, Dropout, ...) computes
each element from the inputs' elements at the same place, so its tensors of any rank are
presented to cnnc folded into a 4-D tensor of batch 1 (`Folding`): consecutive axes on which
every input is whole or broadcast alike become one axis, the output is reshaped back. Inputs
whose broadcasts do not fold into three such axes, and every graph with an operator that reads
axes (Softmax, Concat, Reduce*), go through as given and are refused as cnnc refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnnc.errors import CnncError, InputError

try:
    from onnx.backend.base import Backend, BackendRep
except ImportError:  # the onnx extra is not installed: prepare() says so (require_onnx)
    Backend = BackendRep = object  # type: ignore[assignment,misc]

NUMPY_DEVICE = "CPU"
OPENCL_DEVICE = "OPENCL"
_CONSTANT_NEEDED = re.compile(r"\('([^']*)'\) must be a constant")
MAX_BOUND_RETRIES = 64  # graph inputs bound as constants, one import try each
# ONNX operators whose every output element depends only on the input elements at the same
# place (after broadcasting): reshaping their inputs alike cannot change what they compute.
ELEMENTWISE = frozenset({
    "Abs", "Add", "Cast", "Celu", "Clip", "Div", "Dropout", "Elu", "Exp", "Gelu", "HardSigmoid",
    "HardSwish", "Identity", "LeakyRelu", "Log", "Max", "Mean", "Min", "Mish", "Mul", "Neg",
    "Relu", "Selu", "Sigmoid", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Swish", "Tanh",
    "ThresholdedRelu"})
FOLDED_AXES = 3  # a folded tensor is ONNX's (1, a, b, c): cnnc's NHWC (1, b, c, a)


def _onnx() -> Any:
    from cnnc.frontend.onnx_file import require_onnx

    return require_onnx()


def _parse_device(device: str, default_backend: str) -> tuple[str, str | None]:
    """(cnnc backend, OpenCL device selector) for an ONNX device string."""
    text = str(device).strip()
    kind, _, rest = text.partition(":")
    kind = kind.upper()
    if kind == NUMPY_DEVICE and not rest:
        return default_backend, None
    if kind == OPENCL_DEVICE:
        return "opencl", rest or None
    raise CnncError(f"device {device!r} is not one cnnc runs on",
                    hint=f"use {NUMPY_DEVICE!r} (the NumPy reference), {OPENCL_DEVICE!r} (OpenCL's "
                         f"default device) or '{OPENCL_DEVICE}:P:D' (platform:device)")


def _scalar_constant(node: Any) -> bool:
    """A Constant node holding one value of rank 0 (an expanded function's 0.5, 1, ...)."""
    if node.op_type != "Constant" or len(node.attribute) != 1:
        return False
    attr = node.attribute[0]
    if attr.name in ("value_float", "value_int"):
        return True
    return attr.name == "value" and not list(attr.t.dims)


class Folding:
    """How an element-wise graph's data inputs of any rank are reshaped into ONNX 4-D shapes
    (1, a, b, c) that cnnc takes, and its outputs reshaped back.

    Right-aligned as ONNX broadcasts them, the axes where every input is either whole or 1 in
    the same pattern are consecutive runs; each run is one folded axis (an input whole on the
    run has the product of its sizes there, one broadcast on it has 1), so the folded inputs
    broadcast element for element as the originals do."""

    def __init__(self, inputs: Mapping[str, tuple[int, ...]],
                 outputs: Mapping[str, tuple[int, ...]]) -> None:
        rank = max(len(s) for s in inputs.values())
        padded = {n: (1,) * (rank - len(s)) + tuple(s) for n, s in inputs.items()}
        full = np.broadcast_shapes(*padded.values())
        runs: list[tuple[tuple[bool, ...], list[int]]] = []
        for axis, size in enumerate(full):
            pattern = tuple(padded[n][axis] == size for n in padded)
            if size == 1:  # 1 everywhere: it joins any run (or none, leading)
                if runs:
                    runs[-1][1].append(axis)
            elif runs and runs[-1][0] == pattern:
                runs[-1][1].append(axis)
            else:
                runs.append((pattern, [axis]))
        if len(runs) > FOLDED_AXES:
            raise ValueError(f"{len(runs)} runs of broadcast axes")
        ones = (1,) * (FOLDED_AXES - len(runs))
        self.inputs = {n: (1, *ones, *(int(np.prod([s[a] for a in axes], dtype=np.int64))
                                       for _, axes in runs))
                       for n, s in padded.items()}
        self.declared = dict(inputs)
        self.outputs = dict(outputs)

    @staticmethod
    def of(model: Any, data: Sequence[str]) -> Folding | None:
        """The folding of `model`'s data inputs, or None where the graph is not element-wise
        only, its inputs are already what cnnc takes (one rank, 2 or 4, one batch size), or
        their broadcasts do not fold."""
        graph = model.graph
        if not data or not all(n.op_type in ELEMENTWISE or _scalar_constant(n)
                               for n in graph.node):
            return None
        declared = {i.name: i.type.tensor_type.shape.dim for i in graph.input}
        shapes: dict[str, tuple[int, ...]] = {}
        for name in data:
            dims = declared[name]
            if not all(d.HasField("dim_value") for d in dims):
                return None
            shapes[name] = tuple(d.dim_value for d in dims)
        ranks = {len(s) for s in shapes.values()}
        if (len(ranks) == 1 and ranks <= {2, 4}
                and len({s[0] for s in shapes.values()}) == 1):
            return None
        # An output's shape: the broadcast of the data inputs it is computed from.
        reads: dict[str, set[str]] = {n: {n} for n in data}
        for node in graph.node:
            got = set().union(*(reads.get(i, set()) for i in node.input if i))
            for out in node.output:
                reads[out] = got
        outputs = {}
        for out in graph.output:
            if not reads.get(out.name):
                return None
            outputs[out.name] = np.broadcast_shapes(*(shapes[n] for n in reads[out.name]))
        try:
            return Folding(shapes, outputs)
        except ValueError:
            return None


class CnncBackendRep(BackendRep):
    """A prepared model: `run(inputs)` returns its outputs as ONNX computes them."""

    def __init__(self, model: Any, backend: str, device: str | None) -> None:
        self.model = model
        self.backend = backend
        self.device = device
        graph = model.graph
        inits = {t.name for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in inits]
        self.output_names = [o.name for o in graph.output]
        self._float = {i.name: i.type.tensor_type.elem_type == _onnx().TensorProto.FLOAT
                       for i in graph.input if i.name not in inits}
        # cnnc's data inputs are float32 (batch, features) or (batch, C, H, W): any other input
        # can only be a constant to cnnc (a shape, a scale, a bias), bound when run() gives it.
        ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in graph.input}
        self._fold = Folding.of(model, [n for n in self.input_names
                                        if self._float[n] and ranks[n] > 0])
        self._bound: set[str] = {
            i.name for i in graph.input if i.name in self._float and (
                not self._float[i.name] or ranks[i.name] not in (2, 4)) and not (
                self._fold and i.name in self._fold.inputs)}
        self._compiled: dict[bytes, tuple[Any, dict[str, tuple[str, Any]]]] = {}
        if not self._bound:
            # A model whose inputs are all data compiles now, so that prepare() refuses it.
            self._prepare({})

    # ------------------------------------------------------------ compiling

    def _key(self, values: Mapping[str, np.ndarray]) -> bytes:
        parts = []
        for name in sorted(self._bound):
            v = values[name]
            parts.append(f"{name}:{v.dtype.str}:{v.shape}:".encode() + v.tobytes())
        return b"\0".join(parts)

    def _prepare(self, values: Mapping[str, np.ndarray]) -> tuple[Any, dict] | None:
        """The compiled model for these bound inputs; binds more inputs while the importer
        names a graph input it needs as a constant."""
        for _ in range(MAX_BOUND_RETRIES):
            key = self._key(values)
            if key in self._compiled:
                return self._compiled[key]
            try:
                built = self._compile(values)
            except CnncError as err:
                wanted = [n for n in _CONSTANT_NEEDED.findall(err.message)
                          if n in self._float and n not in self._bound]
                if not wanted:
                    if self._bound:
                        raise CnncError(
                            f"{err.message}\n  (bound as constants: {', '.join(sorted(self._bound))}"
                            "; cnnc's data inputs are float32 (batch, features) or (batch, C, H, "
                            "W) tensors, or of any rank in a graph of element-wise operators "
                            "whose broadcasts fold)") from None
                    raise
                self._bound.update(wanted)
                if not all(n in values for n in wanted):
                    return None  # at prepare(): compiled when run() gives their values
                continue
            self._compiled[key] = built
            return built
        raise CnncError(f"more than {MAX_BOUND_RETRIES} graph inputs must be bound as constants")

    def _compile(self, values: Mapping[str, np.ndarray]) -> tuple[Any, dict]:
        import cnnc
        from cnnc.frontend.onnx_graph import read_graph
        from cnnc.frontend.onnx_import import lower_onnx

        onnx = _onnx()
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        g = model.graph
        keep = [i for i in g.input if i.name not in self._bound]
        del g.input[:]
        g.input.extend(keep)
        for name in sorted(self._bound):
            g.initializer.append(onnx.numpy_helper.from_array(np.asarray(values[name]), name))
        if self._fold is not None:
            for value in g.input:
                if value.name in self._fold.inputs:
                    folded = onnx.helper.make_tensor_type_proto(
                        onnx.TensorProto.FLOAT, self._fold.inputs[value.name])
                    value.type.tensor_type.shape.CopyFrom(folded.tensor_type.shape)
            for value in g.output:
                value.type.tensor_type.ClearField("shape")
            del g.value_info[:]
        label = f"<{g.name or 'model'}>"
        boundary: dict[str, tuple[str, Any]] = {}
        graph = lower_onnx(read_graph(model, label), name=g.name or "model",
                           boundary=boundary)
        compiled = cnnc.compile(graph, backend=self.backend, device=self.device)
        return compiled, boundary

    # ------------------------------------------------------------ running

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """The outputs, in the graph's order, for inputs given as a list (graph order) or a
        dict by ONNX input name, in ONNX's layouts."""
        if kwargs:
            raise CnncError(f"run() got unknown keyword arguments {sorted(kwargs)}")
        values = self._named(inputs)
        built = self._prepare(values)
        if built is None:
            raise CnncError("the model's constant inputs were not given")
        compiled, boundary = built
        feeds = {}
        counts = set()
        for name in self.input_names:
            if name in self._bound:
                continue
            cnnc_name, perm = boundary[name]
            x = np.asarray(values[name])
            if x.dtype != np.float32:
                raise InputError(f"input '{name}' holds {x.dtype} values; cnnc computes float32")
            if self._fold is not None:
                x = self._folded(name, x)
            # ONNX value = transpose(cnnc value, perm), so cnnc value = transpose(x, argsort)
            feeds[cnnc_name] = np.ascontiguousarray(np.transpose(x, np.argsort(perm)))
            counts.add(len(x))
        if len(counts) != 1:
            raise InputError(f"the inputs have different batch sizes: {sorted(counts)}")
        got = compiled.predict(feeds, batch_size=counts.pop())
        by_name = got if isinstance(got, dict) else {compiled.graph.outputs[0]: got}
        out = []
        for name in self.output_names:
            cnnc_name, perm = boundary[name]
            value = by_name[cnnc_name]
            if isinstance(perm, np.ndarray):  # a flattened NCHW tensor: ONNX's column order
                out.append(np.ascontiguousarray(value[:, perm]))
            else:
                out.append(np.ascontiguousarray(np.transpose(value, perm)))
            if self._fold is not None:
                out[-1] = out[-1].reshape(self._fold.outputs[name])
        return tuple(out)

    def _folded(self, name: str, x: np.ndarray) -> np.ndarray:
        """x reshaped as the folding says (it holds for the declared shapes only)."""
        assert self._fold is not None
        declared = self._fold.declared[name]
        if x.shape != declared:
            raise InputError(f"input '{name}' has shape {x.shape}; the model declares "
                             f"{declared} (its element-wise graph is folded for that shape)")
        return x.reshape(self._fold.inputs[name])

    def _named(self, inputs: Any) -> dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(self.input_names))
            missing = sorted(set(self.input_names) - set(inputs))
            if unknown or missing:
                raise InputError(f"the model's inputs are {self.input_names}; got unknown "
                                 f"{unknown}, missing {missing}")
            return {k: np.asarray(v) for k, v in inputs.items()}
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = list(inputs)
        if len(inputs) != len(self.input_names):
            raise InputError(f"the model has {len(self.input_names)} inputs "
                             f"({self.input_names}); got {len(inputs)} arrays")
        return {n: np.asarray(v) for n, v in zip(self.input_names, inputs)}


class CnncBackend(Backend):
    """onnx.backend.base.Backend for cnnc: device 'CPU' is the NumPy reference, 'OPENCL' (or
    'OPENCL:P:D') OpenCL."""

    default_backend = "numpy"  # what the device 'CPU' runs on

    @classmethod
    def is_compatible(cls, model: Any, device: str = NUMPY_DEVICE, **kwargs: Any) -> bool:
        return True  # what cnnc cannot model is refused at prepare(), with the reason

    @classmethod
    def prepare(cls, model: Any, device: str = NUMPY_DEVICE, **kwargs: Any) -> CnncBackendRep:
        if kwargs:
            raise CnncError(f"prepare() got unknown keyword arguments {sorted(kwargs)}")
        onnx = _onnx()
        if isinstance(model, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(model))
        backend, selector = _parse_device(device, cls.default_backend)
        return CnncBackendRep(model, backend, selector)

    @classmethod
    def run_model(cls, model: Any, inputs: Any, device: str = NUMPY_DEVICE,
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: Any, inputs: Sequence[Any], device: str = NUMPY_DEVICE,
                 outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None,
                 **kwargs: Any) -> tuple[np.ndarray, ...]:
        """One node as a model of its own (opset `opset_version`, else onnx's newest)."""
        onnx = _onnx()
        from onnx import helper

        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        if kwargs:
            raise CnncError(f"run_node() got unknown keyword arguments {sorted(kwargs)}")
        names = [n for n in node.input if n]
        arrays = [np.asarray(v) for v in inputs]
        if len(arrays) != len(names):
            raise InputError(f"node {node.op_type} has {len(names)} inputs; got {len(arrays)}")
        ins = [helper.make_tensor_value_info(
            n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape))
            for n, a in zip(names, arrays)]
        outs = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                for n in node.output if n]
        graph = helper.make_graph([node], f"{node.op_type}_node", ins, outs)
        opsets = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=opsets,
                                  ir_version=helper.find_min_ir_version_for(opsets))
        return cls.run_model(model, arrays, device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            backend, _ = _parse_device(device, cls.default_backend)
        except CnncError:
            return False
        if backend == "numpy":
            return True
        from cnnc.backends.opencl.device import devices

        try:
            return any(d.usable for d in devices())
        except CnncError:
            return False


class OpenCLBackend(CnncBackend):
    """The same backend with 'CPU' meaning OpenCL's default device (see the module doc)."""

    default_backend = "opencl"


def prepare(model: Any, device: str = NUMPY_DEVICE, **kwargs: Any) -> CnncBackendRep:
    return CnncBackend.prepare(model, device, **kwargs)


def run_model(model: Any, inputs: Any, device: str = NUMPY_DEVICE,
              **kwargs: Any) -> tuple[np.ndarray, ...]:
    return CnncBackend.run_model(model, inputs, device, **kwargs)


def run_node(node: Any, inputs: Sequence[Any], device: str = NUMPY_DEVICE,
             outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None,
             **kwargs: Any) -> tuple[np.ndarray, ...]:
    return CnncBackend.run_node(node, inputs, device, outputs_info, **kwargs)


def supports_device(device: str) -> bool:
    return CnncBackend.supports_device(device)


__all__ = ["CnncBackend", "CnncBackendRep", "OpenCLBackend", "prepare", "run_model",
           "run_node", "supports_device"]
