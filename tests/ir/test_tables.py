"""Every table keyed by op or activation name covers the op table and the activations table.

Per-op facts live in `OpDef` (shape, parameters, FLOPs, reduction terms, fused activation,
expansion); per-activation facts in cnnc/ir/activations.py. The backends' tables are checked
against them here and beside each backend (tests/numpy/test_interpreter.py,
tests/opencl/test_bind.py).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from cnnc.ir.activations import ACTIVATIONS, float_bits, kernel_defines
from cnnc.ir.ops import OPS, lookup_layer


def _op_cases():
    if "op_cases" in sys.modules:  # tests/opencl imports it under this name too
        return sys.modules["op_cases"]
    path = Path(__file__).parents[1] / "opencl" / "op_cases.py"
    spec = importlib.util.spec_from_file_location("op_cases", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["op_cases"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _kernel_text(name: str) -> str:
    # The sources ship inside the package; reading them needs no OpenCL driver.
    from cnnc.backends.opencl.program import kernel_dir

    return (kernel_dir() / name).read_text()


def test_every_elementwise_activation_has_a_forward_and_gradient_case_in_the_kernels():
    common = _kernel_text("common.h")
    grad = _kernel_text("elementwise.cl")
    for act in ACTIVATIONS.values():
        if not act.elementwise or act.name == "linear":
            continue
        assert re.search(rf"defined\({act.define}\)", common), act.name
        assert re.search(rf"defined\({act.define}\)", grad), act.name
        for const in act.constants:
            assert f"ACT_{const.upper()}_BITS" in common, (act.name, const)


def test_kernel_defines_carry_constants_as_exact_float_bits():
    defines = kernel_defines("leaky_relu")
    assert defines["ACT_LEAKY_RELU"] == 1
    assert defines["ACT_SLOPE_BITS"] == float_bits(0.2) == 0x3E4CCCCD
    assert float_bits(-2.0) < 0  # negative floats travel as negative int32s
    with pytest.raises(ValueError):
        kernel_defines("softmax")  # spans a row: not an ACTIVATE(v)


def test_numpy_activations_cover_the_table():
    from cnnc.backends.numpy.activations import BACKWARD, FORWARD

    assert set(FORWARD) == set(ACTIVATIONS) == set(BACKWARD)


def test_fused_activation_flag_matches_the_activation_argument():
    for op in OPS.values():
        has_arg = any(a.name == "activation" for a in op.args)
        if op.group in ("layer", "fused"):
            assert op.fuses_activation == has_arg, op.name
        else:
            assert not op.fuses_activation, op.name


def test_activation_flops_come_from_the_table():
    from cnnc.ir.shapes import numel

    op = OPS["activation"]
    for act in ACTIVATIONS.values():
        attrs = op.check_attrs({"activation": act.name})
        assert op.flops(attrs, ((None, 4, 5),), (None, 4, 5)) == numel((4, 5)) * act.flops


def test_expansions_name_layer_ops_with_valid_attributes():
    for op in OPS.values():
        if op.expand is None:
            continue
        assert op.group == "layer", op.name
        attrs = op.check_attrs({a.name: a.default for a in op.args if not a.required})
        target, target_attrs = op.expand(attrs)
        assert target in OPS and OPS[target].group == "layer" and target != op.name
        OPS[target].check_attrs(target_attrs)
        assert lookup_layer(op.name) is op


def test_reduction_rules_give_a_positive_count_for_every_op_of_the_example_cases():
    """The cross-check's tolerance reads each op's `reduction` rule: run it on the nodes of
    graphs that together hold every op (the OpenCL op cases)."""
    from cnnc.frontend.spec import load_spec
    from cnnc.ir.train_config import TrainConfig, parse_optimizer
    from cnnc.passes.pipeline import inference_graph, training_graph
    from cnnc.passes.sync_batchnorm import sync_batchnorm

    CASES = _op_cases().CASES

    seen = set()
    for case in CASES:
        graph = load_spec(case.spec())
        config = TrainConfig(loss=case.loss, optimizer=parse_optimizer(case.optimizer))
        train = training_graph(graph, config, seed=7, wrt_inputs=True)
        # sync_batchnorm: data-parallel ops; inference_graph: the fused ops
        for g in (graph, train, sync_batchnorm(train), inference_graph(graph)):
            for node in g.nodes:
                shapes = tuple(g.concrete_shape(v, case.batch) for v in node.inputs)
                terms = node.opdef.reduction(node.attrs, shapes)
                assert isinstance(terms, int) and terms >= 1, node
                seen.add(node.op)
    assert seen == {name for name, op in OPS.items() if op.expand is None}
