"""`cnnc export SPEC -o model.onnx`: a network and its weights as an ONNX model."""

from __future__ import annotations

import argparse

from cnnc.commands.options import add_spec_argument, positive_int, use_run_folder

HELP = "write a network and its weights as an ONNX model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cnnc.export.onnx_export import DEFAULT_OPSET, LAYOUTS

    add_spec_argument(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="the .onnx file to write")
    parser.add_argument("--weights", metavar="FILE",
                        help="a weights.safetensors file (e.g. from a run folder); default: the "
                             "weights an .onnx SPEC holds, else the initial weights from --seed")
    parser.add_argument("--layout", choices=LAYOUTS, default="nchw",
                        help="layout of 4-D inputs and outputs (default nchw, as ONNX models "
                             "usually have; nhwc puts a transpose behind the input)")
    parser.add_argument("--fold-bn", action="store_true",
                        help="fold each batch norm into the convolution or dense layer before it")
    parser.add_argument("--opset", type=positive_int, default=DEFAULT_OPSET, metavar="N",
                        help=f"ONNX opset version (default {DEFAULT_OPSET})")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the initial weights when there are no others (default: "
                             "the spec's train.seed, else 0)")


def run(args: argparse.Namespace) -> int:
    from cnnc import weights as wfile
    from cnnc.export.onnx_export import export_onnx
    from cnnc.frontend.spec import load_spec
    from cnnc.initializers import initial_values

    use_run_folder(args)
    graph = load_spec(args.spec)
    shapes = {s.name: s.shape for s in graph.weights}
    if args.weights:
        weights = wfile.load_weights(args.weights, shapes, graph.name)
        source = args.weights
    elif graph.given_weights is not None:
        weights, source = dict(graph.given_weights), f"{args.spec}"
    else:
        seed = args.seed if args.seed is not None else (graph.train.seed if graph.train else 0)
        weights = initial_values(graph.weights, seed)
        source = f"initial weights (seed {seed}; no --weights given)"
    model = export_onnx(graph, weights, args.output, layout=args.layout, fold_bn=args.fold_bn,
                        opset=args.opset)
    inputs = ", ".join(_declared(vi) for vi in model.graph.input)
    print(f"wrote {args.output}: {graph.name}, opset {args.opset}, {len(model.graph.node)} "
          f"ONNX nodes, {graph.param_count():,} parameters from {source}; input {inputs}")
    return 0


def _declared(value_info) -> str:
    """'x (batch, 1, 28, 28)': an input as the ONNX model declares it."""
    dims = value_info.type.tensor_type.shape.dim
    return f"{value_info.name} ({', '.join(d.dim_param or str(d.dim_value) for d in dims)})"
