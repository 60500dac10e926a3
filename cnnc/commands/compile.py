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

from cnnc.commands.options import add_graph_arguments, use_run_folder

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


def variant_words(backend, graph, batch: int) -> dict[str, str]:
    """Each tunable node's kernel variant in words: the tuning cache's ('tuned: winograd m=4')
    or the device's default ('default: direct 4x8x2')."""
    from cnnc.backends.opencl.launches import BindContext
    from cnnc.tune.space import default_variant, describe, tunable, tuning_graph

    tuned = backend.choose_variants(graph, batch)
    # a fused node tuned as the layer it runs (a convolution pooling as it stores) as that one
    graph = tuning_graph(graph)
    ctx = BindContext(graph, batch, backend.target)
    words = {}
    for node in graph.nodes:
        if not tunable(node):
            continue
        if node.name in tuned:
            words[node.name] = f"tuned: {describe(tuned[node.name])}"
        else:
            words[node.name] = f"default: {describe(default_variant(node, ctx))}"
    return words


def run(args: argparse.Namespace) -> int:
    from cnnc.backends.opencl.plan import mib
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.tune.tuner import install

    use_run_folder(args, weights=False)  # a run folder stands for its spec.yaml
    graph = build_graph(args)
    backend = OpenCLBackend(args.device)
    install(backend)  # the tuning cache's variants, as `cnnc run` and cnnc.compile use them
    what = "training step" if args.train else "forward pass"
    print(f"{graph.name}: {what} at batch {args.batch} on {backend.device.describe()}")
    plan = backend.plan(graph, args.batch)
    launches = sum(len(b.launches) for b in plan.bindings.values())
    once = sum(plan.hoists(lau) for _, lau in plan.launches())
    if args.plan:
        print(f"schedule: {len(plan.schedule)} nodes, {launches} kernel launches"
              + (f" ({once} of them once per change of the weights)" if once else ""))
        for line in plan.describe_launches(variant_words(backend, graph, args.batch)):
            print(line)
        print()
        for line in plan.describe_memory():
            print(line)
        return 0
    start = time.perf_counter()
    before = len(backend.programs.records)
    plan = backend.compile(graph, args.batch).plan  # within the built kernels' limits
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
