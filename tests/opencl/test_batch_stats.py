"""Batch norm's training statistics on the device (bind_gradients.py: bind_batchnorm_stats,
reduce.cl's batch_stats_partial and batch_stats_finish: one pass, chunks combined exactly)
against float64 NumPy: the mean and the biased variance, on data whose mean is far larger than
its spread (where a one-pass sum of squares would cancel), channel counts no vector width
divides, row counts the chunks do not divide, one row, with the device's tiling and a GPU's."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.opencl.runtime import OpenCLBackend
from cnnc.backends.opencl.target import Target
from cnnc.ir.args import Attrs
from cnnc.ir.graph import Graph, Node, infer_shapes


def _graph(shape: tuple[int, ...]) -> Graph:
    x = Node("x", "input", attrs=Attrs(shape=shape, dtype="float32"), shape=(None, *shape))
    return infer_shapes(Graph("stats", (x, Node("stats", "batchnorm_stats", ("x",))),
                              ("stats",), ()))


# (shape without the batch, batch): 14x14x16 at batch 128 is mobilenetv3_mini's first map
# (on a CPU 196 chunks of 128 rows, with the GPU tiling 8 of 3,136); 7 channels take vectors
# of 1; 3x5 at batch 7 is 105 rows, which no power of two of chunks divides (and which leaves
# a remainder to batch_stats_partial's four-row steps); 6x6x24 at batch 40 is 1,440 rows, on a
# CPU 11 chunks of 130 or 131; 1x1 at batch 1 is one row.
SHAPES = [((14, 14, 16), 128), ((5, 3, 7), 7), ((6, 6, 24), 40), ((1, 1, 9), 1)]


@pytest.mark.parametrize("tiling", ["native", "gpu-tiling"])
@pytest.mark.parametrize("shape,batch", SHAPES)
def test_batch_stats_match_float64(shape, batch, tiling, device):
    if tiling == "gpu-tiling" and device.kind == "gpu":
        pytest.skip("the native tiling of a GPU device is the GPU tiling")
    target = Target("gpu", device.compute_units, force_local_tiles=True) \
        if tiling == "gpu-tiling" else None
    rng = np.random.default_rng(batch)
    channels = shape[-1]
    # per channel: a mean up to 100, a spread from 0.1 to 10, and a trend along the rows, so
    # that the chunks' means differ and the combination's between-chunk term counts
    mean = rng.uniform(-100, 100, channels)
    spread = 10.0 ** rng.uniform(-1, 1, channels)
    rows = batch * int(np.prod(shape[:-1]))
    trend = np.linspace(-20, 20, rows)[:, None] * (spread > 1)
    x = (mean + spread * rng.standard_normal((batch, *shape))
         + trend.reshape(batch, *shape)).astype(np.float32)
    exe = OpenCLBackend(device, target=target).compile(_graph(shape), batch)
    assert [lau.kernel for lau in exe.plan.bindings["stats"].launches] == [
        "batch_stats_partial", "batch_stats_finish"]
    got = exe.run({"x": x}, ["stats"])["stats"]
    flat = x.astype(np.float64).reshape(-1, channels)
    want = np.stack([flat.mean(axis=0), flat.var(axis=0)])
    assert got.shape == (2, channels)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-4)
    # A sum of squares about zero would cancel away ~6e-8 * 1e4 / 1e-2 = 6% of the smallest
    # variances here; deviations about the chunks' means keep float32's accuracy.
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4)


def test_beta_gradient_is_the_sums_first_row_without_a_launch(device):
    """share_bn_sums.py's sums_row of row 0 (beta's gradient) binds as a view of the (2, C)
    sums (bind_distributed.py); gamma's row 1 stays a copy. The values: the whole step against
    NumPy (cross_check runs the graph whole, where the view is, and each node alone)."""
    import cnnc
    from cnnc.crosscheck import cross_check
    from cnnc.ir.train_config import TrainConfig
    from cnnc.passes.pipeline import training_graph

    spec = {"network": "bn_rows", "input": [3, 4, 5],
            "layers": [{"conv2d": [6, 3], "padding": "same", "use_bias": False},
                       {"batchnorm": None, "name": "bn"}, {"activation": "relu"},
                       "flatten", {"dense": 2}]}
    graph = training_graph(cnnc.load_spec(spec), TrainConfig(loss="mean_squared_error"))
    rows = {n.attrs["row"]: n for n in graph.nodes if n.op == "sums_row"}
    exe = OpenCLBackend(device).compile(graph, 3)
    beta, gamma = exe.plan.bindings[rows[0].name], exe.plan.bindings[rows[1].name]
    assert beta.view_of == rows[0].inputs[0] and not beta.launches
    assert [lau.kernel for lau in gamma.launches] == ["copy_block"]
    report = cross_check(graph, 3, seed=2, step=1)
    assert report.passed, [c.node for c in report.checks if not c.passed]
