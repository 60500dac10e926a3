"""`cnnc predict SPEC --weights FILE INPUT...`: classify images, folders or arrays with saved weights.

Class names come from the run that wrote the weights (run.json beside them: the user's own
dataset's names), else from the spec's dataset when cnnc knows it, else "class N". When that run
trained on an image folder, image files are decoded as its training images were.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cnnc.commands.options import (
    add_backend_arguments,
    add_weights_arguments,
    positive_int,
    use_run_folder,
)

HELP = "classify images (PNG/JPEG/...), folders of images or IDX/.npy/.npz arrays"
MAX_RUN_JSON = 2**24


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files (converted to the input's shape), folders of them, "
                             "or IDX/.npy arrays of one image or a stack, or a .npz (its x_test "
                             "or x)")
    parser.add_argument("--top", type=positive_int, default=1, metavar="K",
                        help="show the K most likely classes (default 1)")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert image files (training images are light on dark; auto "
                             "inverts images with a light border, except for weights trained "
                             "on an image folder)")
    parser.add_argument("--json", action="store_true",
                        help="print the predictions as JSON: one object per input with its "
                             "top classes (index, name, probability)")
    add_backend_arguments(parser)


def run_record(weights: str | None) -> dict[str, Any]:
    """The run.json of the run folder holding `weights`, or {} when there is none (or it is
    not one cnnc wrote)."""
    if weights is None:
        return {}
    path = Path(weights).parent / "run.json"
    try:
        if not path.is_file() or path.stat().st_size > MAX_RUN_JSON:
            return {}
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def class_names(record: dict[str, Any], dataset: str) -> tuple[str, ...]:
    from cnnc.data.catalog import DATASETS

    names = record.get("class_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return tuple(names)
    info = DATASETS.get(dataset)
    return info.class_names if info else ()


def run(args: argparse.Namespace) -> int:
    from cnnc.data.dataset import raw_pixels
    from cnnc.data.images import load_inputs
    from cnnc.train.evaluation import load_trained, top_classes
    from cnnc.train.fit import input_shape
    from cnnc.train.session import DEFAULT_BACKEND

    use_run_folder(args)
    model = load_trained(args.spec, args.weights, args.backend or DEFAULT_BACKEND, args.device)
    record = run_record(args.weights)
    fit = None
    if record.get("dataset_kind") == "image folder":
        train = record.get("train") if isinstance(record.get("train"), dict) else {}
        fit = train.get("image_fit") if train.get("image_fit") in ("resize", "crop") \
            else "resize"
    # A model whose rescaling layer scales its pixels is given them unscaled (no double scaling).
    inputs = load_inputs(args.inputs, input_shape(model), invert=args.invert, fit=fit,
                         raw=raw_pixels(model.graph), name=model.graph.inputs[0])
    for note in inputs.notes:
        print(f"cnnc: {note}", file=sys.stderr)
    probs = model.predict(inputs.x)
    names = class_names(record, model.train_config.dataset)

    def label(c: int) -> str:
        return names[c] if c < len(names) else f"class {c}"

    tops = top_classes(probs, args.top)
    if args.json:
        rows = [{"input": name, "top": [{"class": c, "name": label(c), "probability": p}
                                        for c, p in top]}
                for name, top in zip(inputs.names, tops)]
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(n) for n in inputs.names)
    for name, top in zip(inputs.names, tops):
        shown = "  ".join(f"{label(c)} ({p:.1%})" for c, p in top)
        print(f"{name:<{width}}  {shown}")
    return 0
