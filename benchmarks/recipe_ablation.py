"""Which parts of specs/fashion-best's recipe give how much: one part removed at a time.

    python benchmarks/recipe_ablation.py [--limit 12000] [--epochs 4] [--seed 0]
        [--validation-size 5000] [--only full,no_erase,...] [--backend opencl]
        [--device 0:0] [--data DIR]

Trains the spec (default specs/fashion-best.yaml) once per variant on a reduced budget (the first
`--limit` training examples, `--epochs` epochs, the one-cycle schedule compressed to them, the
same seed, so the same initial weights and batch order), in one process, and evaluates each on
a validation split of the last `--validation-size` training images (5,000: the spec's final run
trains on all 60,000, the choices behind it were made on this split) and the whole test set,
with and without flip test-time augmentation. The variants:

  full             the recipe as the spec states it, scored with tta flip
  no_tta           full's weights scored without test-time augmentation (nothing trained)
  no_erase         augment erase 0             no_flip    augment flip false
  no_crop          augment crop 0              no_smooth  label_smoothing 0
  adam             adam instead of adamw (the same rate and betas, no weight decay)
  constant_lr      a constant rate (the optimizer's learning_rate) instead of one_cycle

Batch norm's moving statistics are kept with momentum `--bn-momentum` (0.9, PyTorch's default)
instead of the spec's 0.99 (Keras'): they start at mean 0, variance 1 and a short run does not
forget those starting values (measured: 4 epochs of 12,000 images scored 32.9% validation, 87.5%
after 300 more statistics-only steps), while the weights a run learns do not depend on them:
training normalises by each batch's own statistics.

Prints one row per variant as it finishes, then a Markdown table with the differences from full.
On a reduced budget with one seed the differences are rough (a few tenths of a percent are
within run-to-run noise); the whole recipe's figure is the spec's own 20-epoch run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cnnc.ir.args import Attrs
from cnnc.ir.train_config import TrainConfig, parse_optimizer

ROOT = Path(__file__).resolve().parents[1]


def _augment(**changes) -> Callable[[TrainConfig], TrainConfig]:
    return lambda c: c.replace(augment=Attrs({**dict(c.augment), **changes}))


def _adam(c: TrainConfig) -> TrainConfig:
    args = c.optimizer.args
    return c.replace(optimizer=parse_optimizer({
        "name": "adam", "learning_rate": args["learning_rate"], "beta_1": args["beta_1"],
        "beta_2": args["beta_2"], "epsilon": args["epsilon"]}))


# Each variant: what it changes in the spec's train section (None: no training of its own).
VARIANTS: dict[str, Callable[[TrainConfig], TrainConfig] | None] = {
    "full": lambda c: c,
    "no_tta": None,
    "no_erase": _augment(erase=0.0),
    "no_flip": _augment(flip=False),
    "no_crop": _augment(crop=0),
    "no_smooth": lambda c: c.replace(label_smoothing=0.0),
    "adam": _adam,
    "constant_lr": lambda c: c.replace(schedule=Attrs(name="constant")),
}


@dataclass
class Row:
    variant: str
    val: float  # accuracy with the variant's test-time augmentation
    test: float
    val_plain: float  # without test-time augmentation
    test_plain: float
    train_s: float


def with_bn_momentum(graph, momentum: float):
    """`graph` with every batch norm's moving statistics kept with `momentum`."""
    return graph.with_nodes(
        replace(n, attrs=Attrs({**n.attrs, "momentum": momentum})) if n.op == "batchnorm" else n
        for n in graph.nodes)


def train_variant(graph, config: TrainConfig, *, limit: int, backend: str,
                  device: str | None, data_dir: str | None):
    """A model of `graph` trained under `config` on the first `limit` examples; its seconds."""
    from cnnc.model import compile_model

    model = compile_model(graph.replace(train=config), backend=backend, device=device)
    t = time.perf_counter()
    model.fit(limit=limit, verbose=0, data_dir=data_dir)
    return model, time.perf_counter() - t


def score(model, prepared, tta: str) -> tuple[float, float]:
    """Validation and test accuracy of `model` with test-time augmentation `tta`."""
    from cnnc.train.loop import evaluate_arrays

    loss = model.train_config.loss
    val = evaluate_arrays(model, prepared.validation, loss, tta=tta)
    test = evaluate_arrays(model, prepared.test, loss, tta=tta)
    return val.accuracy, test.accuracy


def ablate(spec: str, variants: list[str], *, limit: int, epochs: int, seed: int,
           backend: str, device: str | None, data_dir: str | None,
           validation_size: int | None = None, bn_momentum: float | None = None,
           report: Callable[[Row], None] = lambda row: None) -> list[Row]:
    """One Row per variant (no_tta needs full, which it then trains first if not asked).
    validation_size: the examples held out to score on (None: the spec's own split).
    bn_momentum: batch norm's moving-statistics momentum (None: the spec's)."""
    from cnnc.data.dataset import load_configured, raw_pixels
    from cnnc.frontend.spec import load_spec
    from cnnc.train.fit import prepare_data

    graph = load_spec(spec)
    if bn_momentum is not None:
        graph = with_bn_momentum(graph, bn_momentum)
    base = graph.train.replace(epochs=epochs, seed=seed, tta="none")
    if validation_size is not None:
        base = base.replace(validation_size=validation_size, validation_split=0.0)
    shape = tuple(int(d) for d in graph.shape_of(graph.inputs[0])[1:])
    dataset = load_configured(base, data_dir, shape)
    # limit=1: only the whole validation and test parts are wanted here; fit reads its own.
    prepared = prepare_data(base, dataset, shape, limit=1, raw=raw_pixels(graph))
    if prepared.validation is None:
        raise SystemExit(f"{spec} holds out no validation examples: nothing to choose on")
    rows: list[Row] = []
    kept: dict[str, Row] = {}
    for name in (["full"] if "no_tta" in variants and "full" not in variants else []) + variants:
        change = VARIANTS[name]
        if change is None:  # no_tta: full's weights without test-time augmentation
            full = kept["full"]
            row = Row(name, full.val_plain, full.test_plain, full.val_plain, full.test_plain,
                      0.0)
        else:
            model, train_s = train_variant(graph, change(base), limit=limit, backend=backend,
                                           device=device, data_dir=data_dir)
            val, test = score(model, prepared, "flip")
            val_plain, test_plain = score(model, prepared, "none")
            row = Row(name, val, test, val_plain, test_plain, train_s)
        kept[name] = row
        if name in variants:
            rows.append(row)
            report(row)
    return rows


def table(rows: list[Row]) -> str:
    """The rows as Markdown, each with its difference from full's (when full is among them)."""
    full = next((r for r in rows if r.variant == "full"), None)

    def diff(value: float, ref: float | None) -> str:
        return "" if ref is None else f" ({100 * (value - ref):+.2f})"

    lines = ["| variant | val acc | test acc | val, no tta | test, no tta | training s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r.variant} | {100 * r.val:.2f}%{diff(r.val, full and full.val)} "
            f"| {100 * r.test:.2f}%{diff(r.test, full and full.test)} "
            f"| {100 * r.val_plain:.2f}% | {100 * r.test_plain:.2f}% "
            f"| {r.train_s:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "fashion-best.yaml"))
    parser.add_argument("--limit", type=int, default=12000, help="training examples used")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--validation-size", type=int, default=5000,
                        help="the last training examples held out to score on")
    parser.add_argument("--bn-momentum", type=float, default=0.9,
                        help="batch norm's moving-statistics momentum for the short runs")
    parser.add_argument("--only", default=",".join(VARIANTS),
                        help=f"comma-separated variants (default all: {', '.join(VARIANTS)})")
    parser.add_argument("--backend", default="opencl", choices=("opencl", "numpy"))
    parser.add_argument("--device", help="OpenCL device P:D (default: cnnc's choice)")
    parser.add_argument("--data", help="the dataset's folder (default: cnnc's cache)")
    args = parser.parse_args()
    variants = [v.strip() for v in args.only.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; expected some of {', '.join(VARIANTS)}")
    print(f"{args.spec}: first {args.limit:,} training examples, {args.epochs} epoch(s), seed "
          f"{args.seed}, {args.backend}; the last {args.validation_size:,} held out and the "
          f"test set scored; batch norm's moving statistics at momentum {args.bn_momentum}; "
          "'val/test acc' with tta flip (no_tta: without)", flush=True)
    started = time.perf_counter()
    rows = ablate(args.spec, variants, limit=args.limit, epochs=args.epochs, seed=args.seed,
                  backend=args.backend, device=args.device, data_dir=args.data,
                  validation_size=args.validation_size, bn_momentum=args.bn_momentum,
                  report=lambda r: print(
                      f"{r.variant:<12} val {100 * r.val:.2f}%  test {100 * r.test:.2f}%  "
                      f"(no tta: val {100 * r.val_plain:.2f}%  test {100 * r.test_plain:.2f}%)"
                      f"  {r.train_s:.0f} s training", flush=True))
    print()
    print(table(rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
