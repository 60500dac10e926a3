"""Every table keyed by op or activation name covers the op table and the activations table.

Per-op facts live in `OpDef` (shape, parameters, FLOPs, reduction terms, fused activation,
expansion); per-activation facts in cnnc/ir/activations.py. The backends' tables are checked
against them here and beside each backend (tests/numpy/test_interpreter.py,
tests/opencl/test_bind.py).
"""

from __future__ import annotations

import re

import pytest
from op_cases_module import op_cases

from cnnc.ir.activations import ACTIVATIONS, float_bits, kernel_defines
from cnnc.ir.ops import OPS, lookup_layer


def _kernel_text(name: str) -> str:
    # The sources ship inside the package; reading them needs no OpenCL driver.
    from cnnc.backends.opencl.program import kernel_dir

    return (kernel_dir() / name).read_text()


def _activation_branches() -> dict[str, str]:
    """common.h's chain of activations: each `#if`/`#elif` condition -> the text of its branch."""
    common = _kernel_text("common.h")
    start = common.index("#if defined(ACT_")
    chain = common[start:common.index("#else /* ACT_LINEAR", start)]
    parts = re.split(r"^#(?:if|elif) (defined\(ACT_.*)$", chain, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_elementwise_activation_has_a_forward_and_gradient_case_in_the_kernels():
    common = _kernel_text("common.h")
    branches = _activation_branches()
    for act in ACTIVATIONS.values():
        if not act.elementwise or act.name == "linear":
            continue
        plain = branches.get(f"defined({act.define})")
        assert plain is not None, f"common.h has no '#elif defined({act.define})' case"
        assert "#define ACTIVATE(" in plain and "#define ACTIVATE_GRAD(" in plain, act.name
        for const in act.constants:
            assert f"ACT_{const.upper()}_BITS" in common, (act.name, const)
            assert re.search(rf"\bACT_{const.upper()}\b", plain), (act.name, const)
        if act.params:  # a case of its own, selected by its parameters' defines
            with_params = [body for cond, body in branches.items()
                           if f"defined({act.define})" in cond and "_BITS)" in cond]
            assert len(with_params) == 1, act.name
            body = with_params[0]
            assert "#define ACTIVATE(" in body and "#define ACTIVATE_GRAD(" in body, act.name
            for param in act.params:
                assert f"ACT_{param.upper()}" in body, (act.name, param)
    grad = _kernel_text("elementwise.cl")
    assert "ACTIVATE_GRAD(" in grad


def test_kernel_defines_carry_constants_as_exact_float_bits():
    defines = kernel_defines("leaky_relu")
    assert defines["ACT_LEAKY_RELU"] == 1
    assert defines["ACT_SLOPE_BITS"] == float_bits(0.2) == 0x3E4CCCCD
    assert float_bits(-2.0) < 0  # negative floats travel as negative int32s
    with pytest.raises(ValueError):
        kernel_defines("softmax")  # spans a row: not an ACTIVATE(v)


def test_kernel_defines_carry_parameters_only_when_any_is_off_its_default():
    assert kernel_defines("relu", {}) == {"ACT_RELU": 1}
    capped = kernel_defines("relu", {"max_value": 0.5})
    assert capped == {"ACT_RELU": 1, "ACT_MAX_VALUE_BITS": float_bits(0.5),
                      "ACT_NEGATIVE_SLOPE_BITS": 0, "ACT_THRESHOLD_BITS": 0}
    leaky = kernel_defines("relu", {"negative_slope": 0.1, "threshold": -1.0})
    assert "ACT_MAX_VALUE_BITS" not in leaky  # no cap
    assert leaky["ACT_THRESHOLD_BITS"] == float_bits(-1.0)


def test_activation_parameters_belong_to_their_activation():
    """Keras' ReLU arguments on the relu; any other activation refuses them; the named ReLUs
    (relu6, leaky_relu) are what a parameterised relu fuses as."""
    from cnnc.ir.activations import fused_name, parameters
    from cnnc.ir.args import ArgError

    op = OPS["activation"]
    for act in ACTIVATIONS.values():
        for param, default in act.params.items():
            assert any(a.name == param and a.default == default for a in op.args), param
    assert parameters(op.check_attrs({"activation": "relu"})) == {}
    with pytest.raises(ArgError, match="max_value applies to the relu activation only"):
        op.check_attrs({"activation": "tanh", "max_value": 1.0})
    with pytest.raises(ArgError, match="below threshold"):
        op.check_attrs({"activation": "relu", "max_value": 1.0, "threshold": 2.0})
    for act in ACTIVATIONS.values():
        if act.relu is not None:
            attrs = op.check_attrs({"activation": "relu", **act.relu})
            assert fused_name(attrs) == act.name
    odd = op.check_attrs({"activation": "relu", "negative_slope": 0.3})
    assert fused_name(odd) is None


def test_numpy_activations_cover_the_table():
    from cnnc.backends.numpy.activations import BACKWARD, FORWARD, PARAMETERISED

    assert set(FORWARD) == set(ACTIVATIONS) == set(BACKWARD)
    assert set(PARAMETERISED) == {a.name for a in ACTIVATIONS.values() if a.params}


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
    # Keras' ReLU with parameters counts as the relu layer did: two per element
    attrs = op.check_attrs({"activation": "relu", "max_value": 6.0})
    assert op.flops(attrs, ((None, 4, 5),), (None, 4, 5)) == numel((4, 5)) * 2


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

    CASES = op_cases().CASES

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
