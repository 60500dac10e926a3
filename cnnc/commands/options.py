"""Command-line options that several `cnnc` commands share: spec, backend, device, batch, data.

Each option is declared here once, with its help text, so that `--device` (say) reads the same in
every command that takes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnnc.backends.base import BACKENDS
from cnnc.errors import CnncError

SPEC_HELP = ("a .cnn or .yaml spec file, an .onnx model, or a bundled spec's name (fashion, "
             "lenet5, ...)")
SELECTORS = "gpu, cpu, P:D (platform:device) or part of a name"  # see device.select_device


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_spec_argument(parser: argparse.ArgumentParser, help: str = SPEC_HELP,
                      **options) -> None:
    """The spec positional; `options` go to argparse (run's is optional: nargs='?')."""
    parser.add_argument("spec", metavar="SPEC", help=help, **options)


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """SPEC and --weights: a trained network, for eval and predict."""
    add_spec_argument(parser, help="the spec the weights belong to (a .cnn or .yaml file, an "
                                   ".onnx model, or a bundled spec's name)")
    parser.add_argument("--weights", metavar="FILE",
                        help="a weights.safetensors file (e.g. from a run folder); needed unless "
                             "SPEC is an .onnx model, which holds its own")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", metavar="SELECTOR",
                        help=f"OpenCL device: {SELECTORS} (default: $CNNC_DEVICE, else the first "
                             "usable GPU, then CPU)")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend and --device: where run, eval and predict compute."""
    parser.add_argument("--backend", choices=tuple(BACKENDS),
                        help="where to run: opencl (the default) or numpy (the reference "
                             "interpreter)")
    add_device_argument(parser)


def add_graph_arguments(parser: argparse.ArgumentParser, *, verb: str, batch: int) -> None:
    """SPEC, --device, --batch and --train: the graph that compile, verify and bench act on.

    verb: what the command does with the graph ('compile', 'compare', 'time'); batch: the
    default batch size.
    """
    add_spec_argument(parser)
    add_device_argument(parser)
    parser.add_argument("--batch", type=positive_int, default=batch, metavar="N",
                        help=f"batch size (default {batch})")
    parser.add_argument("--train", action="store_true",
                        help=f"{verb} the training step (loss, gradients, optimizer updates) "
                             "instead of the forward pass")


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="PATH",
                        help="the dataset: a folder holding the named dataset's IDX files "
                             "(default: $CNNC_DATA, the user cache, "
                             "/usr/share/datasets/fashion-mnist, then download), or your own: "
                             "an image folder (a subfolder per class), a .npz or .npy folder "
                             "(x_train, y_train, x_test, y_test), a CIFAR-10/100 .tar.gz or "
                             "folder")


def use_run_folder(args: argparse.Namespace, *, weights: bool = True) -> None:
    """A run folder (what `cnnc run` made) given as SPEC stands for its spec.yaml and, unless
    --weights names others, the best epoch's weights where the spec said `checkpoint best`
    (best.safetensors), else the weights at the run's end (weights.safetensors); where the
    command reads data and --data is not given, the data the run trained on. Says so once."""
    folder = Path(args.spec)
    if not folder.is_dir():
        return
    spec, record_file = folder / "spec.yaml", folder / "run.json"
    if not spec.is_file() or not record_file.is_file():
        raise CnncError(f"{folder} is a folder, not a run folder (it holds no run.json and "
                        "spec.yaml)", hint="give a spec file, or a folder `cnnc run` made")
    args.spec = str(spec)
    used = [str(spec)]
    best = folder / "best.safetensors"  # a spec's `checkpoint best` (train/spec_callbacks.py)
    if weights and getattr(args, "weights", None) is None and best.is_file():
        args.weights = str(best)
        used.append(f"{best} (the best epoch's weights, `checkpoint best`; --weights "
                    f"{folder / 'weights.safetensors'} for the last)")
    if weights and getattr(args, "weights", None) is None:
        final = folder / "weights.safetensors"
        if not final.is_file():
            raise CnncError(f"the run {folder} has no final weights (weights.safetensors): it "
                            "stopped before its end", hint=f"cnnc run --resume {folder}")
        args.weights = str(final)
        used.append(f"{final} (the weights at the run's end)")
    if hasattr(args, "data") and args.data is None:
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            record = {}
        data = record.get("data") if isinstance(record, dict) else None
        if isinstance(data, str) and data:
            args.data = data
            used.append(f"the run's data {data}")
    print(f"cnnc: the run folder {folder}: {', '.join(used)}", file=sys.stderr)
