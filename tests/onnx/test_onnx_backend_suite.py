"""ONNX's own backend test suite (onnx.backend.test's node cases) run on cnnc.onnx_backend.

In scope: every node case of an operator cnnc's importer claims (onnx_ops.RULES) whose graph
holds claimed operators only (a function's expanded form included). Each runs through ONNX's
runner, which compares with the suite's expected outputs: on the NumPy reference all of them, on
OpenCL a representative subset (OPENCL_DEFAULT), the rest under `-m slow` (each builds kernels).
A case that does not fit cnnc's model is skipped by a reviewed pattern of backend_exclusions.py,
with its reason; every other case must pass. `python tests/onnx/test_onnx_backend_suite.py`
prints the per-operator table the README carries.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from backend_exclusions import EXCLUSIONS, EXPECTED_FAILURES

import cnnc.frontend.onnx_import  # noqa: F401  (imports every rule module: RULES is then whole)
import cnnc.onnx_backend as cnnc_backend
from cnnc.frontend.onnx_ops import RULES

# The kind of layer and kernel each claimed operator's cases reach: the OpenCL subset of the
# default suite holds a case of every family that has one that runs (a test checks it).
FAMILIES: dict[str, str] = {
    "Conv": "convolution", "ConvTranspose": "transposed convolution",
    "MaxPool": "pooling", "AveragePool": "pooling", "GlobalAveragePool": "global pooling",
    "GlobalMaxPool": "global pooling", "Gemm": "dense", "MatMul": "dense",
    "BatchNormalization": "normalisation", "LayerNormalization": "normalisation",
    "LRN": "local response normalisation", "Softmax": "softmax", "Resize": "resampling",
    "Concat": "concatenation", "Split": "channel slices", "Flatten": "flatten",
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "Max", "Min", "Mean", "Sum"), "merge"),
    **dict.fromkeys(("Clip", "Elu", "Gelu", "HardSigmoid", "HardSwish", "LeakyRelu", "Mish",
                     "Relu", "Sigmoid", "Softplus", "Swish", "Tanh", "ThresholdedRelu"),
                    "activation"),
    **dict.fromkeys(("Cast", "Dropout", "Identity"), "the identity in inference"),
    **dict.fromkeys(("Gather", "Pad", "ReduceMax", "ReduceMean", "Reshape", "Shape", "Slice",
                     "Transpose"), "shapes and reductions"),
}
# One or two cases per family: convolution (padded, strided, asymmetric), pooling (both,
# explicit pads, ceil mode), dense (Gemm, MatMul), element-wise graphs of other ranks folded to
# 4-D (a broadcast merge of three inputs, activations, HardSigmoid's affine form).
OPENCL_DEFAULT = (
    "test_basic_conv_with_padding",
    "test_conv_with_strides_and_asymmetric_padding",
    "test_maxpool_2d_precomputed_pads",
    "test_averagepool_2d_pads_count_include_pad",
    "test_averagepool_2d_ceil",
    "test_gemm_default_vector_bias",
    "test_matmul_2d",
    "test_batchnorm_example",
    "test_lrn",
    "test_softmax_example",
    "test_concat_2d_axis_1",
    "test_split_equal_parts_2d",
    "test_flatten_axis1",
    "test_resize_upsample_scales_nearest",
    "test_convtranspose_pads",
    "test_globalaveragepool",
    "test_add_bcast",
    "test_max_example",
    "test_gelu_default_1",
    "test_hardsigmoid",
    "test_dropout_default",
)


def _module_key(name: str) -> str:
    return name.lower().replace("_", "")


def claimed_cases() -> dict[str, tuple[str, Any]]:
    """Case name -> (the claimed operator it exercises, its TestCase). Only the modules of
    onnx.backend.test.case.node named by a claimed operator are imported (each computes its
    expected outputs on import, some slowly)."""
    import onnx.backend.test.case.node as node_cases

    claimed = set(RULES)
    keys = {_module_key(op): op for op in claimed}
    for path in sorted(Path(node_cases.__file__).parent.glob("*.py")):
        if _module_key(path.stem) in keys:
            importlib.import_module(f"{node_cases.__name__}.{path.stem}")
    by_name = {case.name: case for case in node_cases._NodeTestCases}
    out: dict[str, tuple[str, Any]] = {}
    for name, case in by_name.items():
        ops = {n.op_type for n in case.model.graph.node} - {"Constant"}
        if not ops or not ops <= claimed:
            continue
        base = by_name.get(name[:-len("_expanded")]) if name.endswith("_expanded") else case
        if base is None:
            continue
        base_ops = [n.op_type for n in base.model.graph.node if n.op_type != "Constant"]
        if len(base_ops) == 1 and base_ops[0] in claimed:
            out[name] = (base_ops[0], case)
    return out


CASES = claimed_cases()


def _runner(backend: Any, names: list[str], category: str) -> type:
    """ONNX's Runner over these cases only (built with just them: the full suite takes a
    minute to generate), with the exclusions and expected failures applied; its node-model
    unittest class, renamed `category`."""
    from onnx.backend.test import runner as onnx_runner

    cases = [CASES[n][1] for n in names]
    original = onnx_runner.load_model_tests
    onnx_runner.load_model_tests = lambda data_dir=None, kind=None: (
        list(cases) if kind == "node" else [])
    try:
        runner = onnx_runner.Runner(backend, __name__)
    finally:
        onnx_runner.load_model_tests = original
    for name in names:
        runner.include(f"^{re.escape(name)}_cpu$")
    for pattern in EXCLUSIONS:
        runner.exclude(pattern)
    for pattern in EXPECTED_FAILURES:
        runner.xfail(pattern)
    (cls,) = [c for key, c in runner.test_cases.items() if key == "OnnxBackendNodeModelTest"]
    return type(category, (cls,), {"__module__": __name__})


def _opencl_usable() -> bool:
    return cnnc_backend.OpenCLBackend.supports_device("CPU")


NumpyNodeTest = _runner(cnnc_backend.CnncBackend, sorted(CASES), "NumpyNodeTest")
if _opencl_usable():
    OpenCLNodeTest = _runner(cnnc_backend.OpenCLBackend, list(OPENCL_DEFAULT), "OpenCLNodeTest")
    OpenCLNodeSlowTest = pytest.mark.slow(reason="every claimed case on OpenCL builds its own "
                                                 "kernels: minutes on pocl")(_runner(
        cnnc_backend.OpenCLBackend, sorted(set(CASES) - set(OPENCL_DEFAULT)),
        "OpenCLNodeSlowTest"))


def excluded(name: str) -> str | None:
    for pattern, reason in {**EXCLUSIONS, **EXPECTED_FAILURES}.items():
        if re.search(pattern, f"{name}_cpu"):
            return reason
    return None


def test_the_opencl_subset_and_the_exclusions_name_real_cases():
    """A renamed case in a newer onnx would otherwise drop out of the suite unseen."""
    assert set(OPENCL_DEFAULT) <= set(CASES)
    assert not [n for n in OPENCL_DEFAULT if excluded(n)]
    names = [f"{n}_cpu" for n in CASES]
    unused = [p for p in {**EXCLUSIONS, **EXPECTED_FAILURES}
              if not any(re.search(p, n) for n in names)]
    assert not unused, f"patterns that match no case: {unused}"


def test_the_opencl_subset_holds_every_family_that_runs():
    """A case on OpenCL in the default suite for every family of claimed operators with a case
    that runs (every other case runs there under -m slow)."""
    # RULES grows as rule modules are imported (GlobalMaxPool, LayerNormalization, ...).
    assert set(FAMILIES) >= set(RULES), "a claimed operator without a family"
    running = {FAMILIES[op] for name, (op, _) in CASES.items() if not excluded(name)}
    on_opencl = {FAMILIES[CASES[name][0]] for name in OPENCL_DEFAULT}
    assert running - on_opencl == set()


def test_every_claimed_operator_has_a_case_that_runs():
    """An operator whose every case is excluded would be claimed and never checked here; the
    ones whose cases are all outside cnnc's model are listed, each checked in tests/onnx."""
    run = {op for name, (op, _) in CASES.items() if not excluded(name)}
    # LayerNormalization: tests/onnx/test_norm_shuffle_onnx.py; ReduceMax: test_exporter_forms.py
    checked_elsewhere = {"Cast", "Div", "Gather", "Identity", "LayerNormalization", "Pad",
                         "ReduceMax", "ReduceMean", "Reshape", "Shape", "Slice", "Transpose"}
    with_cases = {op for op, _ in CASES.values()}
    assert with_cases - run == checked_elsewhere & with_cases


def counts() -> dict[str, Counter]:
    """Per operator: cases in scope, run (and of those, on OpenCL in the default suite),
    excluded (with the kind of reason), expected to fail."""
    table: dict[str, Counter] = {}
    for name, (op, _) in sorted(CASES.items()):
        row = table.setdefault(op, Counter())
        row["cases"] += 1
        reason = excluded(name)
        if reason is None:
            row["run"] += 1
            row["opencl default"] += name in OPENCL_DEFAULT
        elif any(re.search(p, f"{name}_cpu") for p in EXPECTED_FAILURES):
            row["xfail"] += 1
        else:
            row[reason.split(":")[0]] += 1
    return table


if __name__ == "__main__":
    from backend_exclusions import ATTRIBUTE, BATCH, DTYPE, SHAPE

    # Every case that runs passes on NumPy and on OpenCL (the default subset, the rest under
    # -m slow); `opencl default` counts the subset.
    columns = [("run", "run (pass)"), ("opencl default", "of which on OpenCL by default"),
               (SHAPE, "shape"), (BATCH, "batch axis"),
               (DTYPE, "dtype"), (ATTRIBUTE, "attribute"), ("xfail", "other branch")]
    print("| operator | cases | " + " | ".join(c for _, c in columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    total: Counter = Counter()
    for op, row in sorted(counts().items()):
        total.update(row)
        print(f"| {op} | {row['cases']} | " + " | ".join(str(row[k]) for k, _ in columns)
              + " |")
    print(f"| **all** | {total['cases']} | " + " | ".join(str(total[k]) for k, _ in columns)
          + " |")
