"""benchmarks/recipe_ablation.py: each variant removes one part of fashion-best's recipe."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from training_spec import TINY_SPEC

from cnnc.frontend.spec import load_spec
from cnnc.train.fit import config_dict

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("recipe_ablation",
                                                  ROOT / "benchmarks" / "recipe_ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _flat(config) -> dict:
    d = config_dict(config)
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


# What each variant changes in specs/fashion-best.yaml's train section, worked out from it.
CHANGES = {
    "full": {},
    "no_erase": {"augment.erase": (0.5, 0.0)},
    "no_flip": {"augment.flip": (True, False)},
    "no_crop": {"augment.crop": (2, 0)},
    "no_smooth": {"label_smoothing": (0.1, 0.0)},
    "adam": {"optimizer.name": ("adamw", "adam"), "optimizer.weight_decay": (0.05, 0.0)},
    "constant_lr": {"schedule.name": ("one_cycle", "constant"),
                    **{f"schedule.{k}": (v, None) for k, v in {
                        "max_lr": 0.004, "pct_start": 0.25, "div_factor": 25.0,
                        "final_div_factor": 1e4, "three_phase": False, "cycle_momentum": True,
                        "base_momentum": 0.85, "max_momentum": 0.95}.items()}},
}


def test_each_variant_changes_only_its_part_of_the_recipe(ablation):
    base = load_spec(str(ROOT / "specs" / "fashion-best.yaml")).train
    assert set(CHANGES) | {"no_tta"} == set(ablation.VARIANTS)
    before = _flat(base)
    for name, want in CHANGES.items():
        after = _flat(ablation.VARIANTS[name](base))
        got = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
        assert got == want, name


def test_no_tta_is_full_scored_without_it_and_the_table_says_so(ablation, tiny_data, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    rows = ablation.ablate(str(spec), ["no_tta", "no_flip"], limit=32, epochs=1, seed=5,
                           backend="numpy", device=None, data_dir=str(tiny_data))
    no_tta, no_flip = rows
    assert [r.variant for r in rows] == ["no_tta", "no_flip"]
    assert (no_tta.val, no_tta.test) == (no_tta.val_plain, no_tta.test_plain)
    assert no_flip.train_s > 0 and 0 <= no_flip.val <= 1
    text = ablation.table(rows)
    assert text.splitlines()[2].startswith(f"| no_tta | {100 * no_tta.val:.2f}% |")


def test_a_spec_that_trains_on_every_example_is_scored_on_the_split_asked_for(
        ablation, tiny_data, tmp_path):
    """fashion-best's final run holds nothing out; the ablation holds out --validation-size."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.replace("validation_size: 32", "validation_size: 0"))
    assert load_spec(str(spec)).train.validation_size == 0
    with pytest.raises(SystemExit, match="holds out no validation examples"):
        ablation.ablate(str(spec), ["no_tta"], limit=32, epochs=1, seed=5, backend="numpy",
                        device=None, data_dir=str(tiny_data))
    (row,) = ablation.ablate(str(spec), ["no_tta"], limit=32, epochs=1, seed=5,
                             backend="numpy", device=None, data_dir=str(tiny_data),
                             validation_size=24)
    assert 0 <= row.val <= 1 and row.val * 24 == round(row.val * 24)


def test_the_moving_statistics_momentum_changes_no_learned_weight(ablation, tiny_data):
    """The ablation keeps batch norm's moving statistics at momentum 0.9 so that short runs
    forget their starting values; the weights learned must be the spec's run's exactly."""
    graph = load_spec(TINY_SPEC)
    assert any(n.op == "batchnorm" for n in graph.nodes)
    fast = ablation.with_bn_momentum(graph, 0.9)
    assert {n.attrs["momentum"] for n in fast.nodes if n.op == "batchnorm"} == {0.9}
    assert [n.op for n in fast.nodes] == [n.op for n in graph.nodes]
    weights, stats = [], []
    for g in (graph, fast):
        model, _ = ablation.train_variant(g, g.train.replace(epochs=2), limit=64,
                                          backend="numpy", device=None,
                                          data_dir=str(tiny_data))
        names = {s.name for s in g.state if s.role == "param"}
        got = model.get_weights()
        weights.append({k: v for k, v in got.items() if "moving" not in k and k in names})
        stats.append({k: v for k, v in got.items() if "moving" in k})
    assert weights[0].keys() == weights[1].keys() and stats[0]
    for k in weights[0]:
        np.testing.assert_array_equal(weights[0][k], weights[1][k], err_msg=k)
    assert any(not np.array_equal(stats[0][k], stats[1][k]) for k in stats[0])
