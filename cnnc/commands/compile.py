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


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.2f} MiB"


def _dims(sizes: tuple[int, ...] | None) -> str:
    return "auto" if sizes is None else "x".join(str(s) for s in sizes)


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


def _place(memory, tensor: str) -> str:
    """'@0x1000', or '@1:0x1000' (arena 1) when the plan has several buffers."""
    arena = f"{memory.arena_of(tensor)}:" if len(memory.sizes) > 1 else ""
    return f"@{arena}{memory.offsets[tensor]:#x}"


def _buffer(plan, node: str, arg) -> str | None:
    """Where a launch argument lives, for --plan ('conv2d @0x1000'); None for scalars."""
    from cnnc.backends.opencl.launches import Value, Workspace, Zeros
    from cnnc.passes.memplan import workspace_name

    memory = plan.memory
    if isinstance(arg, Value):
        if arg.name in plan.graph.state_map:
            return f"{arg.name} state"
        return f"{arg.name} {_place(memory, memory.storage.get(arg.name, arg.name))}"
    if isinstance(arg, Workspace):
        name = workspace_name(node, arg.index)
        return f"{name} {_place(memory, name)}"
    if isinstance(arg, Zeros):
        return "zeros"
    return None


def format_schedule(plan) -> list[str]:
    """One line per launch: step, node, kernel, global/local sizes, buffers."""
    lines = []
    for i, name in enumerate(plan.schedule):
        binding = plan.bindings[name]
        if binding.fed:
            where = _place(plan.memory, plan.memory.storage.get(name, name))
            lines.append(f"{i:4d}  {name}  <- written by the host {where}")
        elif binding.view_of is not None:
            op = plan.graph.node(name).op
            lines.append(f"{i:4d}  {name}  = view of {binding.view_of} ({op}, no launch)")
        for lau in binding.launches:
            buffers = [_buffer(plan, name, arg) for arg in lau.args]
            lines.append(
                f"{i:4d}  {name}  {lau.file}:{lau.kernel}  global={_dims(lau.global_size)}"
                f" local={_dims(lau.local_size)}  [{', '.join(b for b in buffers if b)}]"
            )
    return lines


def format_memory(plan) -> list[str]:
    memory = plan.memory
    lines = ["tensor                                          bytes      offset   live steps"]
    ordered = sorted(
        memory.tensors, key=lambda t: (memory.arena_of(t.name), memory.offsets[t.name], t.start)
    )
    for t in ordered:
        off = memory.offsets[t.name]
        # Earlier tensors whose bytes this one takes over; name the one that died last.
        shared = sorted(
            (
                o
                for o in memory.tensors
                if o is not t
                and memory.arena_of(o.name) == memory.arena_of(t.name)
                and not o.overlaps(t)
                and memory.offsets[o.name] < off + t.nbytes
                and off < memory.offsets[o.name] + o.nbytes
                and o.start < t.start
            ),
            key=lambda o: -o.end,
        )
        reuse = f"  reuses {shared[0].name}" if shared else ""
        end = "end" if t.end >= len(plan.schedule) else str(t.end)
        start = "host" if t.start < 0 else str(t.start)
        place = _place(memory, t.name)[1:]
        lines.append(f"{t.name:44s} {t.nbytes:>10,d}  {place:>10s}   {start}..{end}{reuse}")
    state = sum(s.size * 4 for s in plan.graph.state)
    lines.append("")
    lines.append(
        f"planned peak device memory: {_mib(memory.peak)} for {len(memory.tensors)} "
        f"tensors; one buffer per tensor would take {_mib(memory.naive)} "
        f"({100 * (1 - memory.peak / max(memory.naive, 1)):.0f}% saved)"
    )
    if len(memory.sizes) > 1:
        parts = ", ".join(_mib(size) for size in memory.sizes)
        lines.append(
            f"in {len(memory.sizes)} buffers (each within the device's largest allocation): "
            f"{parts}"
        )
    lines.append(
        f"state (parameters, statistics, optimizer slots): {_mib(state)}, kept across runs"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    from cnnc.backends.opencl.runtime import OpenCLBackend

    graph = build_graph(args)
    backend = OpenCLBackend(args.device)
    what = "training step" if args.train else "forward pass"
    print(f"{graph.name}: {what} at batch {args.batch} on {backend.device.describe()}")
    plan = backend.plan(graph, args.batch)
    launches = sum(len(b.launches) for b in plan.bindings.values())
    if args.plan:
        print(f"schedule: {len(plan.schedule)} nodes, {launches} kernel launches")
        for line in format_schedule(plan):
            print(line)
        print()
        for line in format_memory(plan):
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
        f"planned device memory: {_mib(plan.memory.peak)} "
        f"(one buffer per tensor: {_mib(plan.memory.naive)})"
    )
    return 0
