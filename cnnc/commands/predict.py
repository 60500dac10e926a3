"""`cnnc predict SPEC --weights FILE IMAGE...`: classify images or arrays with saved weights."""

from __future__ import annotations

import argparse
import sys

from cnnc.commands.options import add_backend_arguments, add_weights_arguments, positive_int

HELP = "classify images (PNG/JPEG) or IDX/.npy arrays with saved weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_weights_arguments(parser)
    parser.add_argument("inputs", nargs="+", metavar="IMAGE",
                        help="PNG/JPEG files (converted to the input's shape), or IDX/.npy "
                             "arrays of one image or a stack")
    parser.add_argument("--top", type=positive_int, default=1, metavar="K",
                        help="show the K most likely classes (default 1)")
    parser.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                        help="invert image files (training images are light on dark; auto "
                             "inverts images with a light border)")
    add_backend_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnnc.data.catalog import DATASETS
    from cnnc.data.images import load_inputs
    from cnnc.train.evaluation import load_trained, top_classes
    from cnnc.train.fit import input_shape
    from cnnc.train.session import DEFAULT_BACKEND

    model = load_trained(args.spec, args.weights, args.backend or DEFAULT_BACKEND, args.device)
    inputs = load_inputs(args.inputs, input_shape(model), invert=args.invert)
    for note in inputs.notes:
        print(f"cnnc: {note}", file=sys.stderr)
    probs = model.predict(inputs.x)
    info = DATASETS.get(model.train_config.dataset)
    names = info.class_names if info else ()

    def label(c: int) -> str:
        return names[c] if c < len(names) else f"class {c}"

    width = max(len(n) for n in inputs.names)
    for name, top in zip(inputs.names, top_classes(probs, args.top)):
        shown = "  ".join(f"{label(c)} ({p:.1%})" for c, p in top)
        print(f"{name:<{width}}  {shown}")
    return 0
