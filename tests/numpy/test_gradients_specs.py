"""Finite-difference check, in float64, of every example spec's whole loss (specs/*.yaml).

The spec's own loss on a batch of two random images, with respect to the input and random
entries of every trainable parameter; for large specs one entry per tensor. Dropout masks are
those of step 3. Entries whose +-h runs cross a ReLU or max-pool kink are not compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnc
from cnnc.testing.gradcheck import GradientCheck

SPECS = sorted(Path(__file__).resolve().parents[2].joinpath("specs").glob("*.yaml"))
LARGE = 200_000  # parameters


# Specs whose check takes a minute and whose layers another spec's fast check already covers.
SLOW = {"fashion-best": "a minute at 680k parameters; its layers (strided and 1x1 conv2d, "
                        "batchnorm, add, global_avgpool2d) are resnet_mini's, checked fast"}
PARAMS = [pytest.param(p, id=p.stem, marks=pytest.mark.slow(reason=SLOW[p.stem]))
          if p.stem in SLOW else pytest.param(p, id=p.stem) for p in SPECS]


def test_there_are_specs_to_check():
    assert SPECS, "no specs/*.yaml found"


@pytest.mark.parametrize("path", PARAMS)
def test_spec_loss_gradient_matches_finite_differences(path):
    graph = cnnc.load_spec(str(path))
    loss = graph.train.loss if graph.train is not None else "sparse_categorical_crossentropy"
    check = GradientCheck(graph, loss=loss, batch=2, seed=11, step=3)
    report = check.check(entries=1 if graph.param_count() > LARGE else 2)
    assert len(report.skipped) <= max(2, len(report.entries) // 5), report.summary()
    worst = report.worst()
    assert worst is not None and worst.error < 1e-5, report.summary()
    assert {e.name for e in report.checked} >= set(check.differentiable()) - {
        e.name for e in report.skipped}
