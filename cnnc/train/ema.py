"""The moving average of the weights at evaluation (a train-stage helper; the average itself is
kept by the training graph, cnnc/passes/ema.py): validation runs on the averaged weights, and
when training ends they replace the weights, as Keras' fit does with use_ema, so the test
figures, the weights file, predictions and exports all use them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cnnc.passes.ema import ema_slot


def averaged_params(model) -> list[str]:
    """The parameters the model averages (none without use_ema, or before its first step:
    the averages start at the first step)."""
    if not model.train_config.optimizer.args.get("use_ema") or model.step == 0:
        return []
    graph = model.training_graph()
    return [n.inputs[1] for n in graph.nodes if n.op == "ema_update"]


def _swap_in(model, params: list[str]) -> None:
    shadows = model.backend.read_state([ema_slot(p) for p in params])
    model.backend.write_state({p: shadows[ema_slot(p)] for p in params})


@contextmanager
def averaged_weights(model) -> Iterator[None]:
    """The averaged weights in place of the weights while the block runs, then the weights
    back exactly (training continues from them)."""
    params = averaged_params(model)
    if not params:
        yield
        return
    kept = model.backend.read_state(params)
    _swap_in(model, params)
    try:
        yield
    finally:
        model.backend.write_state(kept)


def use_averaged_weights(model) -> bool:
    """At the end of training: the averaged weights become the weights (Keras'
    finalize_variable_values). Returns whether there were any."""
    params = averaged_params(model)
    if params:
        _swap_in(model, params)
    return bool(params)
