"""kernels/expmath.h's exp, expm1, tanh and log1p, and the smooth activations built on them
(common.h's ACTIVATE and ACTIVATE_GRAD through elementwise.cl), against float64 NumPy over dense
samples of the float32 line: extremes, subnormal results, signed zeros, inf and NaN included.

The bounds are in float32 ulps of the float64 truth (rounded to float32), with subnormal results
held to the same count of the smallest subnormal: a cheaper polynomial (one degree less) or a
scaling that flushes subnormals fails them.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy.activations import FORWARD, NEW_BACKWARD

SPECIAL = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan, 88.72283, 88.72284, 89.0, 1e30,
                      -87.33654, -87.34, -103.27, -103.97, -103.973, -104.0, -1e30, 1e-30,
                      -1e-30, 1e-45, -1e-45, 0.34657359, -0.34657359])

SOURCE = """
#include "common.h"
#define UNARY(name, f)                                                                     \\
__kernel void name##_1(__global const float *x, __global float *y)                         \\
{ int i = get_global_id(0); y[i] = f(x[i]); }                                              \\
__kernel void name##_8(__global const float *x, __global float *y)                         \\
{ int i = get_global_id(0); vstore8(f(vload8(i, x)), i, y); }
UNARY(exp, exp_poly)
UNARY(exp_normal, exp_normal)
UNARY(expm1, expm1_poly)
UNARY(tanh, tanh_poly)
UNARY(log1p, log1p_unit)
"""


def _line(stride: int, limit: float) -> np.ndarray:
    """Every `stride`-th float32 bit pattern with |x| < limit, the special values, a dense run
    around 0 (where expm1 and tanh must keep their relative accuracy), padded to a multiple
    of 8."""
    x = np.arange(0, 2**32, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x) & (np.abs(x) < limit)]
    near0 = np.linspace(-0.75, 0.75, 1 << 18, dtype=np.float32)
    x = np.concatenate([x, near0, SPECIAL])
    return np.concatenate([x, np.zeros((-x.size) % 8, np.float32)])


def _ulps(got: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|got - truth| in ulps of truth's float32 rounding (a subnormal's: the smallest
    subnormal); infinite where an overflow to inf (or NaN) differs, 0 where both agree."""
    with np.errstate(over="ignore", invalid="ignore"):
        t32 = truth.astype(np.float32)
        exact = (got == t32) | (np.isnan(got) & np.isnan(t32))
        finite = np.isfinite(t32) & np.isfinite(got)
        step = np.maximum(np.spacing(np.abs(np.where(finite, t32, 1))).astype(np.float64),
                          2.0**-149)
        err = np.where(finite, np.abs(got.astype(np.float64) - truth) / step, np.inf)
    return np.where(exact, 0.0, err)


def _run(device, kernel, x: np.ndarray, items: int, *extra) -> np.ndarray:
    import pyopencl as cl

    ctx, mf = device.context, cl.mem_flags
    queue = cl.CommandQueue(ctx)
    bufs = [cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=a) for a in (x, *extra)]
    out = cl.Buffer(ctx, mf.WRITE_ONLY, x.nbytes)
    kernel(queue, (items,), None, *bufs, out, *([np.int32(x.size)] if kernel.num_args > 2 +
                                                    len(extra) else []))
    y = np.empty_like(x)
    cl.enqueue_copy(queue, y, out)
    queue.finish()
    return y


_PROGRAMS: dict[str, object] = {}


@pytest.fixture
def program(device):
    """SOURCE built once per device for the module's tests."""
    import pyopencl as cl

    from cnnc.backends.opencl.kernel_files import kernel_dir

    if device.index not in _PROGRAMS:
        _PROGRAMS[device.index] = cl.Program(device.context, SOURCE).build(
            options=["-I", str(kernel_dir()), "-cl-mad-enable"])
    return _PROGRAMS[device.index]


# (kernel, float64 truth, input range, bound in ulps): measured on pocl (Zen 3) at 0.86, 0.86,
# 1.4, 2.5 and 2.7 (exp_normal: exp of the input clamped at -87.3, inf above 88.3). One degree
# less in the polynomials gives 41 (exp, exp_normal), 8.8 (expm1) and 6.6 (tanh).
FUNCTIONS = [
    ("exp", np.exp, 120.0, 2.0),
    ("exp_normal", lambda x: np.where(x > np.float32(88.3), np.inf,
                                      np.exp(np.maximum(x, np.float32(-87.3)))), 120.0, 2.0),
    ("expm1", np.expm1, 120.0, 2.0),
    ("tanh", np.tanh, 40.0, 3.0),
    ("log1p", np.log1p, None, 3.0),
]


@pytest.mark.parametrize("width", [1, 8])
@pytest.mark.parametrize("name, truth, limit, bound", FUNCTIONS, ids=[f[0] for f in FUNCTIONS])
def test_function_within_its_ulp_bound_over_the_float_line(device, program, width, name,
                                                           truth, limit, bound):
    import pyopencl as cl

    if limit is None:  # log1p_unit's domain: u = exp(-|x|) in [0, 1]
        x = np.concatenate([np.linspace(0, 1, 1 << 20, dtype=np.float32),
                            np.float32(2.0) ** -np.arange(150, dtype=np.float32),
                            np.float32([0.0, 1.0])])
        x = np.concatenate([x, np.zeros((-x.size) % 8, np.float32)])
    else:
        x = _line(1009, limit)
    y = _run(device, cl.Kernel(program, f"{name}_{width}"), x, x.size // width)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = truth(x.astype(np.float64))
    err = _ulps(y, ref)
    worst = int(np.argmax(err))
    assert err[worst] <= bound, (name, x[worst], y[worst], ref[worst], err[worst])
    nan = np.isnan(x)
    assert np.isnan(y[nan]).all()


def test_exp_matches_float32_exp_at_its_edges(device, program):
    """Overflow to inf past ln(FLT_MAX), subnormal results rounded once, 0 below them,
    exp(-0) = 1: as NumPy's float32 exp gives them."""
    import pyopencl as cl

    x = np.float32([88.72283, 88.72284, 100.0, np.inf, -87.34, -100.0, -103.27, -103.973,
                    -np.inf, -0.0, 0.0, 1e-30])
    y = _run(device, cl.Kernel(program, "exp_8"), np.resize(x, 16), 2)[:x.size]
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    assert np.isinf(y[:2]).tolist() == [False, True] and y[2] == y[3] == np.inf
    assert (_ulps(y, np.exp(x.astype(np.float64))) <= 2.0).all()
    assert (y[6:10] == ref[6:10]).all() and y[7] == y[8] == 0.0 and y[9] == y[10] == 1.0
    normal = _run(device, cl.Kernel(program, "exp_normal_8"), np.resize(x, 16), 2)[:x.size]
    assert np.isinf(normal[:4]).all()
    assert (normal[4:9] >= np.finfo(np.float32).tiny).all()
    assert normal[9] == normal[10] == 1.0


# The activations: bounds in ulps of the float64 result (relative), measured on pocl (Zen 3),
# where the result is above TINY in magnitude; below it, within TINY of the truth (sigmoid(x)
# for x < -88.7 is 1 / (1 + inf) = 0 by its formula, where the truth is a subnormal).
# gelu's and gelu_tanh's exp takes an argument computed in float32 (x^2 / 2, 2k (x + c x^3)):
# its rounding, |u| 2^-24 relative, comes on top (tens of ulps in their far negative tails).
TINY = 2.0**-100
ACTIVATIONS = {"silu": 4.0, "sigmoid": 3.0, "gelu": 8.0, "gelu_tanh": 6.0, "softplus": 4.0,
               "mish": 8.0, "elu": 3.0, "tanh": 3.0}
GELU_K = np.sqrt(2 / np.pi)
ARGUMENT = {"gelu": lambda x: x * x / 2,
            "gelu_tanh": lambda x: np.abs(2 * GELU_K * (x + 0.044715 * x**3))}


def _truth(name: str, x: np.ndarray) -> np.ndarray:
    return np.asarray(FORWARD[name](x.astype(np.float64)), dtype=np.float64)


@pytest.mark.parametrize("vector", [False, True], ids=["scalar", "float8"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_within_its_ulp_bound(device, name, vector):
    from cnnc.backends.opencl.program import program_cache
    from cnnc.ir.activations import kernel_defines

    defines = {**kernel_defines(name), **({"ELEMS": 8, "VW": 8} if vector else {})}
    kernel = program_cache(device).kernel("elementwise.cl", "activation", defines)
    x = _line(50021 if name == "gelu" else 4099, 100.0)  # gelu's reference: math.erfc each
    y = _run(device, kernel, x, x.size // 8 if vector else x.size)
    with np.errstate(over="ignore", invalid="ignore"):
        truth = _truth(name, x)
        err = _ulps(y, truth)
        err[(np.abs(truth) < TINY) & (np.abs(y - truth) <= TINY)] = 0.0
    if name in ARGUMENT:
        with np.errstate(over="ignore", invalid="ignore"):
            err /= np.maximum(1.0, np.nan_to_num(ARGUMENT[name](x.astype(np.float64))))
    worst = int(np.argmax(err))
    assert err[worst] <= ACTIVATIONS[name], (name, x[worst], y[worst], err[worst])
    assert np.isnan(y[np.isnan(x)]).all()


GRADIENTS = {"silu": 6.0, "gelu": 8.0, "gelu_tanh": 16.0, "softplus": 4.0, "mish": 16.0}


@pytest.mark.parametrize("vector", [False, True], ids=["scalar", "float8"])
@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_activation_gradient_within_its_bound(device, name, vector):
    """ACTIVATE_GRAD (scalar) and activate_grad_of (vectors), from the input x, dy = 1, for
    |x| < 100: held to ulps of the gradient, or of 1 where it is smaller (silu', gelu' and
    mish' cross 0 where their two terms, each near 0.2-1, cancel)."""
    from cnnc.backends.opencl.program import program_cache
    from cnnc.ir.activations import kernel_defines

    defines = {**kernel_defines(name), **({"ELEMS": 8, "VW": 8} if vector else {})}
    kernel = program_cache(device).kernel("elementwise.cl", "activation_grad", defines)
    x = _line(50021 if name == "gelu" else 4099, 100.0)
    x = x[np.abs(x) < 100]
    x = np.concatenate([x, np.zeros((-x.size) % 8, np.float32)])
    dy = np.ones_like(x)
    got = _run(device, kernel, x, x.size // 8 if vector else x.size, dy)
    truth = NEW_BACKWARD[name](x.astype(np.float64), dy.astype(np.float64))
    err = np.abs(got - truth)
    scale = np.maximum(np.abs(truth), 1.0)
    rel = err / scale / 2.0**-24
    worst = int(np.argmax(rel))
    assert rel[worst] <= GRADIENTS[name], (name, x[worst], got[worst], truth[worst])
