"""`cnnc compile SPEC`: compile a spec for an OpenCL device and show what a run will do.

Without options: runs the pass pipeline, binds every node, plans memory and builds every kernel
(filling the program cache, so later runs start at once), then prints a summary. --plan prints
the schedule (one line per kernel launch: node, kernel, global/local sizes, buffers) and the
memory plan (every tensor's offset and lifetime, the planned peak beside one buffer per tensor).
--dump-ir prints the graph after every pass.
"""

from __future__ import annotations

import argparse
import time

from cnnc.commands.options import add_graph_arguments

HELP = "compile a spec for an OpenCL device; --plan shows the launches and the memory plan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_graph_arguments(parser, verb="compile", batch=32)
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the schedule of kernel launches and the memory plan (builds nothing)",
    )
    parser.add_argument(
        "--dump-ir", action="store_true", help="print the graph after every pass of the pipeline"
    )


def build_graph(args: argparse.Namespace):
    from cnnc.frontend.spec import load_spec
    from cnnc.ir.printer import format_graph
    from cnnc.passes.pipeline import inference_graph, training_graph

    def dump(name: str, graph) -> None:
        print(f"== after {name} ==" if name != "input" else "== as loaded ==")
        print(format_graph(graph))
        print()

    graph = load_spec(args.spec)
    hook = dump if args.dump_ir else None
    return training_graph(graph, dump=hook) if args.train else inference_graph(graph, dump=hook)


def run(args: argparse.Namespace) -> int:
    from cnnc.backends.opencl.plan import mib
    from cnnc.backends.opencl.runtime import OpenCLBackend, OpenCLExecutable

    graph = build_graph(args)
    backend = OpenCLBackend(args.device)
    what = "training step" if args.train else "forward pass"
    print(f"{graph.name}: {what} at batch {args.batch} on {backend.device.describe()}")
    plan = backend.plan(graph, args.batch)
    launches = sum(len(b.launches) for b in plan.bindings.values())
    if args.plan:
        print(f"schedule: {len(plan.schedule)} nodes, {launches} kernel launches")
        for line in plan.describe_launches():
            print(line)
        print()
        for line in plan.describe_memory():
            print(line)
        return 0
    start = time.perf_counter()
    before = len(backend.programs.records)
    OpenCLExecutable(backend, plan)
    records = backend.programs.records[before:]
    cached = sum(r.from_disk for r in records)
    print(
        f"{len(plan.schedule)} nodes, {launches} kernel launches, {len(records)} programs "
        f"({cached} from the disk cache, {len(records) - cached} built) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    print(
        f"planned device memory: {mib(plan.memory.peak)} "
        f"(one buffer per tensor: {mib(plan.memory.naive)})"
    )
    return 0
