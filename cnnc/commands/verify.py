"""`cnnc verify SPEC`: check an OpenCL device against the NumPy reference, node by node.

The same random inputs and initial weights go through both backends: the forward pass, or with
--train one whole training step (loss, every gradient, the updated parameters). For each node in
schedule order it prints the error of the kernel run alone on the reference's operands (judged
against a float32 tolerance scaled by the square root of the number of terms the node sums) and
the error after the whole run (judged for the graph's outputs), then names the first node over
its tolerance with the kernels that computed it. Exit status 1 when any tolerance is exceeded.
See cnnc/crosscheck.py for the tolerances.
"""

from __future__ import annotations

import argparse
import math

from cnnc.commands.options import add_graph_arguments, use_run_folder

HELP = "run a spec on NumPy and on an OpenCL device and compare every node's result"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_graph_arguments(parser, verb="compare", batch=4)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the random inputs and initial weights (default 0)",
    )


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2e}"  # NaN: not compared


def run(args: argparse.Namespace) -> int:
    from cnnc.crosscheck import OUTPUT_TOLERANCE, cross_check
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph, training_graph

    use_run_folder(args, weights=False)  # a run folder stands for its spec.yaml
    spec = load_spec(args.spec)
    graph = training_graph(spec, seed=args.seed) if args.train else inference_graph(spec)
    report = cross_check(graph, args.batch, device=args.device, seed=args.seed)
    what = "one training step" if args.train else "the forward pass"
    print(f"{graph.name}: {what} at batch {args.batch}, seed {args.seed}, NumPy vs {report.device}")
    print(
        "errors relative to max|reference|; 'alone' = the node on the reference's operands,"
        " 'run' = after the whole run"
    )
    header = (
        f"{'step':>4}  {'node':30s} {'op':26s} {'alone':>9} {'tolerance':>9} "
        f"{'run abs':>9} {'run rel':>9}  kernels"
    )
    print(header)
    for i, c in enumerate(report.checks):
        mark = "" if c.passed else "  << FAIL"
        judged = "*" if c.judged_e2e else " "
        print(
            f"{i:4d}  {c.node:30s} {c.op:26s} {_num(c.local_rel):>9} {c.tolerance:9.1e} "
            f"{_num(c.e2e_abs):>9} {_num(c.e2e_rel):>8}{judged}  {c.kernels}{mark}"
        )
    print(f"* graph outputs: the whole run is judged too (tolerance {OUTPUT_TOLERANCE:g})")
    failed = report.first_failure
    if failed is None:
        print(f"OK: every node within its tolerance on {report.device}")
        return 0
    count = sum(not c.passed for c in report.checks)
    print(
        f"FAILED: {count} node(s) over tolerance; the first in schedule order is "
        f"'{failed.node}' ({failed.op}), computed by {failed.kernels}"
    )
    return 1
