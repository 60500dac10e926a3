"""`cnnc summary SPEC`: the network as a table, like Keras' model.summary(), plus FLOPs.

One row per layer: name and Keras class, output shape with the batch left open (None),
parameters, and forward FLOPs per example (a multiply-add counts two, as the op table counts).
Totals below: parameters (trainable and not: batch norm's moving statistics are not) and FLOPs.
With --rf, three more columns give each layer's receptive field on the input
(cnnc/ir/receptive_field.py): its size, the jump between neighbouring outputs' fields, and
where the first output's field starts (negative: it reaches into the zero padding). The table
is cnnc/ir/summary.py's, which a run's report.html shows too.
"""

from __future__ import annotations

import argparse

from cnnc.commands.options import add_spec_argument, use_run_folder
from cnnc.ir.summary import summary_text

HELP = "show a network's layers, output shapes, parameters and FLOPs (like Keras' summary)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    parser.add_argument("--ir", action="store_true",
                        help="also print the graph as IR text, one line per node")
    parser.add_argument("--rf", action="store_true",
                        help="add each layer's receptive field on the input: size (height x "
                             "width), jump between neighbouring outputs, and start (first input "
                             "pixel; negative inside the padding)")


def run(args: argparse.Namespace) -> int:
    from cnnc.frontend.spec import load_spec

    use_run_folder(args, weights=False)  # a run folder stands for its spec.yaml
    graph = load_spec(args.spec)
    print(summary_text(graph, rf=args.rf))
    if args.ir:
        from cnnc.ir.printer import format_graph

        print()
        print(format_graph(graph, location=True))
    return 0
