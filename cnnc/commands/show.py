"""`cnnc show SPEC ...`: pictures of a network: its graph, its learned filters, its feature maps.

    cnnc show SPEC --graph                          the layer graph: .dot, and .svg/.png with
                                                    Graphviz
    cnnc show SPEC --weights FILE filters [LAYER]   a convolution's kernels (default: the first)
    cnnc show SPEC --weights FILE maps IMAGE        every convolution's and pooling layer's
                                                    feature maps for IMAGE (a PNG/JPEG file, or
                                                    test:N, image N of the spec's test set)

Files go to the current folder, named after the network (or to --out); each is printed.
Feature maps are computed with the NumPy backend unless --backend says otherwise: one image
needs no device.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cnnc.commands.options import (
    SELECTORS,
    add_data_argument,
    add_spec_argument,
    use_run_folder,
)
from cnnc.errors import CnncError

HELP = "draw a network: its graph (--graph), learned filters, or feature maps for an image"
DEFAULT_BACKEND = "numpy"  # one image at a time: the reference backend needs no device


def _channel(text: str) -> int | str:
    if text == "norm":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an input channel number or 'norm', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a channel number >= 0, got {value}")
    return value


def _common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """Options accepted before and after the picture's name (`filters`, `maps`)."""
    # In a subparser the default is SUPPRESS, so that it does not undo what came before.
    default = argparse.SUPPRESS if sub else None
    parser.add_argument("--weights", metavar="FILE", default=default,
                        help="trained weights (a run folder's weights.safetensors); needed by "
                             "filters and maps")
    parser.add_argument("--out", metavar="PATH", default=default,
                        help="where to write: the PNG for filters and maps; for --graph, the "
                             "name before .dot/.svg/.png (default: <network>-<picture> in the "
                             "current folder)")
    parser.add_argument("--backend", choices=("numpy", "opencl"), default=default,
                        help=f"where maps computes (default {DEFAULT_BACKEND})")
    parser.add_argument("--device", metavar="SELECTOR", default=default,
                        help=f"OpenCL device for --backend opencl: {SELECTORS}")


EXAMPLES = """\
examples:
  cnnc show specs/fashion.yaml --graph
  cnnc show specs/fashion.yaml --weights RUN/weights.safetensors filters [LAYER]
  cnnc show specs/fashion.yaml --weights RUN/weights.safetensors maps test:123
  cnnc show specs/fashion.yaml --weights RUN/weights.safetensors maps shirt.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keeps the examples' lines
    add_spec_argument(parser)
    parser.add_argument("--graph", action="store_true",
                        help="draw the layer graph (DOT text; SVG and PNG when Graphviz's dot "
                             "is installed)")
    _common(parser, sub=False)
    add_data_argument(parser)
    pictures = parser.add_subparsers(dest="picture", metavar="{filters,maps}",
                                     title="pictures (besides --graph)")
    filters = pictures.add_parser("filters", help="a convolution's learned kernels as a grid",
                                  description="A convolution's learned kernels as a grid.")
    filters.add_argument("layer", nargs="?", metavar="LAYER",
                         help="the convolution layer's name (default: the first)")
    filters.add_argument("--channel", type=_channel, metavar="C",
                         help="for layers with several input channels: draw input channel C of "
                              "every filter, or 'norm' for the norm over the channels "
                              "(default: each filter's strongest input channel)")
    _common(filters, sub=True)
    maps = pictures.add_parser("maps", help="the feature maps of every convolution and pooling "
                                            "layer for one image",
                               description="The feature maps of every convolution and pooling "
                                           "layer for one image.")
    maps.add_argument("image", metavar="IMAGE",
                      help="a PNG/JPEG (or .npy/IDX) file, or test:N for image N of the spec's "
                           "test set")
    maps.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                      help="invert an image file (training images are light on dark; auto "
                           "inverts images with a light border)")
    _common(maps, sub=True)
    add_data_argument(maps)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "image"


def _say_written(path: Path, fig=None) -> None:
    if fig is not None:
        from cnnc.viz.canvas import pixel_size

        w, h = pixel_size(fig)
        print(f"wrote {path} ({w}x{h} pixels)")
    else:
        print(f"wrote {path}")


def _graph(graph, out: str | None) -> None:
    from cnnc.viz.graph_dot import write_graph

    base = Path(out) if out else Path(f"{_safe(graph.name)}-graph")
    if base.suffix in (".dot", ".svg", ".png"):
        base = base.with_suffix("")
    written, missing = write_graph(graph, base)
    for path in written:
        _say_written(path)
    if missing is not None:
        hint = f" ({missing.hint})" if missing.hint else ""
        print(f"cnnc: {missing.message}{hint}", file=sys.stderr)


def _load_weights(graph, path: str):
    from cnnc import weights as wfile

    if not Path(path).is_file():
        raise CnncError(f"{path}: no such weights file",
                        hint="pass the weights.safetensors of a run folder")
    return wfile.load_weights(path, {s.name: s.shape for s in graph.weights}, graph.name)


def run(args: argparse.Namespace) -> int:
    from cnnc.frontend.spec import load_spec

    picture = getattr(args, "picture", None)
    if not args.graph and picture is None:
        raise CnncError("nothing to show", hint="cnnc show SPEC --graph, or cnnc show SPEC "
                                                "--weights FILE filters [LAYER] | maps IMAGE")
    if args.graph and picture is not None and args.out:
        raise CnncError("--out names one picture; ask for --graph and for "
                        f"{picture} in two commands")
    use_run_folder(args, weights=picture is not None)
    graph = load_spec(args.spec)
    if args.graph:
        _graph(graph, None if picture else args.out)
    if picture is None:
        return 0
    if not args.weights:
        raise CnncError(f"{picture} draws trained weights: give --weights FILE",
                        hint="a run folder's weights.safetensors, from cnnc run")
    from cnnc.viz.canvas import save_png

    if picture == "filters":
        from cnnc.viz.filters import filters_of, pick_layer

        layer = pick_layer(graph, args.layer).name  # a bad name fails before the file is read
        fig = filters_of(graph, _load_weights(graph, args.weights), layer, channel=args.channel)
        out = Path(args.out or f"{_safe(graph.name)}-filters-{_safe(layer)}.png")
    else:
        from cnnc.train.evaluation import load_trained
        from cnnc.viz.maps import resolve_image, show_maps

        model = load_trained(args.spec, args.weights, args.backend or DEFAULT_BACKEND,
                             args.device)
        image = resolve_image(model, args.image, data_dir=args.data, invert=args.invert)
        for note in image.notes:
            print(f"cnnc: {note}", file=sys.stderr)
        fig = show_maps(model, image)
        stem = args.image.replace(":", "") if args.image.startswith("test:") else \
            Path(args.image).stem
        out = Path(args.out or f"{_safe(graph.name)}-maps-{_safe(stem)}.png")
    save_png(fig, out)
    _say_written(out, fig)
    return 0
