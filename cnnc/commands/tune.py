"""`cnnc tune SPEC`: time the kernel variants of a spec's launches on a device and cache the
fastest that pass the correctness gate; `--show`, `--export FILE`, `--import FILE` manage the
tuning cache (cnnc/tune/)."""

from __future__ import annotations

import argparse
import time

from cnnc.commands.options import (
    add_device_argument,
    add_spec_argument,
    positive_int,
    use_run_folder,
)
from cnnc.errors import CnncError

HELP = "tune a spec's kernel launches for a device (the fastest variants the gate admits)"
DEFAULT_BUDGET = 60.0
EXIT_SECONDS = 1.0
# Left in the budget for running the graph once more at the end, with what was tuned: the
# programs it binds were built by the warm-up before the searches or by the searches (their
# winners go to the disk cache), so this run mostly loads them (0.4-2 s for the seed model).
WARM_UP_SECONDS = 3.0


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value > 86400:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 86400, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser, nargs="?")
    add_device_argument(parser)
    parser.add_argument("--batch", type=positive_int, default=32, metavar="N",
                        help="batch size (default 32)")
    parser.add_argument("--train", action="store_true",
                        help="tune the training step's launches (gradients included)")
    parser.add_argument("--budget", type=_budget, default=DEFAULT_BUDGET, metavar="SECONDS",
                        help=f"time to spend at most (default {DEFAULT_BUDGET:.0f})")
    parser.add_argument("--force", action="store_true",
                        help="tune again launches the cache already holds")
    parser.add_argument("--show", action="store_true",
                        help="list the cached tunings with their speedup over the default")
    parser.add_argument("--export", metavar="FILE", help="write the cached tunings to FILE")
    parser.add_argument("--import", dest="import_file", metavar="FILE",
                        help="add the valid tunings of FILE (from `--export`) to the cache")


def _attrs_text(attrs: dict) -> str:
    """The attributes that tell two launches of one op and shape apart, briefly."""
    def pair(v) -> str:
        return "x".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    parts = []
    if "kernel_size" in attrs:
        parts.append(f"k{pair(attrs['kernel_size'])}")
    if attrs.get("strides") not in (None, [1, 1], 1):
        parts.append(f"s{pair(attrs['strides'])}")
    if attrs.get("dilation_rate") not in (None, [1, 1], 1):
        parts.append(f"d{pair(attrs['dilation_rate'])}")
    if attrs.get("groups", 1) != 1:
        parts.append(f"g{attrs['groups']}")
    if "padding" in attrs:
        parts.append(str(attrs["padding"]))
    shown = {"kernel_size", "strides", "dilation_rate", "groups", "padding", "input_shape",
             "filters", "units"}  # the last three are in the shapes
    parts += [f"{name}={pair(value)}" for name, value in sorted(attrs.items())
              if name not in shown]
    return " ".join(parts) or "-"


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


def show(cache) -> None:
    """The cached tunings, grouped by device (named in full), one row per launch with every
    shape and the attributes that tell launches apart, and the variant's whole name."""
    from cnnc.commands.table import format_table
    from cnnc.tune import chunking
    from cnnc.tune.cache import DEVICE_OP, kernel_source_hash
    from cnnc.tune.space import describe

    entries = sorted(cache.entries.values(), key=lambda e: (
        e["key"]["device"], e["key"]["driver"], e["key"]["op"], str(e["key"]["shapes"]),
        e["key"]["batch"]))
    print(f"tuning cache {cache.path}: {_entries(len(entries))}")
    if not entries:
        return
    current = kernel_source_hash()
    earlier = sum(e["key"]["kernels"] != current for e in entries)
    if earlier:
        print(f"({earlier} of them for earlier versions of the kernel sources, never used "
              "again, are not listed)")
    rows: dict[tuple[str, str], list[list[str]]] = {}
    for e in entries:
        k = e["key"]
        if k["kernels"] != current:
            continue
        shapes = " ".join("x".join(str(d) for d in shape) for shape in k["shapes"])
        if k["op"] == chunking.OP:  # a forward pass's chunks, not a launch
            attrs = f"graph {str(k['attrs'].get('graph'))[:12]}"
            chunk = e["variant"]["chunk"]
            variant = "one pass" if chunk == k["batch"] else f"chunks of {chunk}"
        elif k["op"] == DEVICE_OP:  # which device runs a small forward pass (latency.py)
            attrs = f"graph {str(k['attrs'].get('graph'))[:12]}"
            variant = ("on the one-thread companion" if e["variant"].get("companion")
                       else "on the device")
        else:
            attrs, variant = _attrs_text(k["attrs"]), describe(e["variant"])
        rows.setdefault((k["device"], k["driver"]), []).append([
            k["op"], shapes, attrs, str(k["batch"]),
            variant + (" (search cut short)" if e.get("cut") else ""),
            f"{e['default_seconds'] * 1e3:.2f}", f"{e['seconds'] * 1e3:.2f}",
            f"{e['default_seconds'] / e['seconds']:.2f}x"])
    head = ["op", "shapes (inputs, output)", "attributes", "batch", "variant", "default ms",
            "tuned ms", "speedup"]
    for (device, driver), table in rows.items():
        print(f"\ndevice {device!r}, driver {driver}: {_entries(len(table))}")
        print("\n".join(format_table(head, table, right={3, 5, 6, 7})))


def spent_before(age: float, qualifying: float) -> float:
    """What the budget has spent when tuning starts: the process's age but the seconds it
    waited for the device's qualification, and EXIT_SECONDS kept for the end."""
    return max(0.0, age - qualifying) + EXIT_SECONDS


def run(args: argparse.Namespace) -> int:
    from cnnc.tune.cache import TuningCache, export_entries, import_entries

    cache = TuningCache.default()
    acted = False
    if args.import_file:
        n = import_entries(cache, args.import_file)
        print(f"imported {n} tunings from {args.import_file} into {cache.path}")
        acted = True
    if args.spec:
        use_run_folder(args, weights=False)  # a run folder stands for its spec.yaml
        _tune(args, cache)
        acted = True
    if args.export:
        n = export_entries(cache, args.export)
        print(f"exported {n} tunings to {args.export}")
        acted = True
    if args.show:
        show(cache)
        acted = True
    if not acted:
        raise CnncError("nothing to do", hint="give a SPEC to tune, or --show, --export FILE or "
                                              "--import FILE")
    return 0


def _tune(args: argparse.Namespace, cache) -> None:
    from cnnc import settings
    from cnnc.backends.opencl.device import select_device
    from cnnc.backends.opencl.qualification import seconds_waited
    from cnnc.frontend.spec import load_spec
    from cnnc.passes.pipeline import inference_graph, training_graph
    from cnnc.tune import chunking
    from cnnc.tune.space import describe
    from cnnc.tune.tuner import Tuner, process_age

    if not settings.tune():
        raise CnncError("tuning is turned off (CNNC_TUNE=0)", hint="unset CNNC_TUNE")
    spec = load_spec(args.spec)
    graph = training_graph(spec) if args.train else inference_graph(spec)
    device = asked = select_device(args.device)
    if not args.train:  # the device that runs it: a small pass's may be the companion
        from cnnc.backends.opencl.latency import runs_on
        from cnnc.tune.tuner import companion_choice

        device = runs_on(asked, graph, args.batch,
                         companion_choice(cache, asked, graph, args.batch))
    what = "training step" if args.train else "forward pass"
    print(f"tuning {spec.name}'s {what} at batch {args.batch} on {device.describe()} "
          f"(at most {args.budget:.0f} s)")
    start = time.perf_counter()
    # First the graph as a run binds it now (the defaults and the cache's variants), built and
    # run once: a cold machine's compiles then count in the budget, as the searches' do, and
    # leave every program the first `cnnc run` needs built; a warm-up only after the searches
    # found no budget left on a cold machine, and that run then built the rest before its first
    # step (32 s for the seed model under load: its forward b256 26 s from empty caches).
    _warm_up(device, cache, graph, args.batch)
    print(f"the graph as it binds now built and run once in {time.perf_counter() - start:.1f} s")
    # The budget bounds the whole command: the process's start and the graph's building too
    # (not a qualification of the device: once per driver and kernel version, not tuning),
    # and EXIT_SECONDS are left for the table and the process's exit (the device's teardown).
    # What the searches leave of the budget goes on extending them, but for the time the
    # chunk sizes' timing and the warm-up below take.
    keep = WARM_UP_SECONDS + (0.0 if args.train else chunking.seconds_kept(args.batch))
    # the budget's last seconds time which device runs a small pass (latency.py)
    from cnnc.tune.device_choice import split_budget

    searches, timing = split_budget(args.budget, asked, graph, args.batch, args.train)
    tuner = Tuner(device, cache, searches, spent=spent_before(process_age(), seconds_waited()),
                  extend=keep)
    results = tuner.tune_graph(graph, args.batch, force=args.force)
    print(f"{'node':28s} {'op':20s} {'variant':24s} {'default ms':>10s} {'tuned ms':>9s} "
          f"{'speedup':>7s}  source")
    for r in results:
        variant = describe(r.variant) if r.variant else "default"
        times = (f"{r.default_seconds * 1e3:10.2f} {r.seconds * 1e3:9.2f} {r.speedup:6.2f}x"
                 if r.seconds else f"{'-':>10s} {'-':>9s} {'-':>7s}")
        tried = f", {r.tried} variants timed" if r.source == "tuned" else ""
        print(f"{r.node[:28]:28s} {r.op:20s} {variant[:24]:24s} {times}  {r.source}{tried}")
        for name, why in r.rejected:
            print(f"    rejected {name}: {why}")
    print(f"tuned in {time.perf_counter() - start:.1f} s; cache: {cache.path}")
    cut = {r.node for r in results if r.cut}
    if cut:
        print(f"{len(cut)} of the searches ({', '.join(sorted(cut)[:4])}"
              f"{', ...' if len(cut) > 4 else ''}) stopped at the budget with variants left to "
              f"time: their best so far is cached and used; tune again (a larger --budget) to "
              f"resume them")
    if not args.train and tuner.left() > WARM_UP_SECONDS:
        # Last: it times the whole pass with what was tuned above (the chunk sizes' compiles,
        # then ROUNDS interleaved rounds of each: about 4 x 8 passes at the batch).
        chunks = chunking.tune_chunks(device, cache, graph, args.batch)
        if chunks is not None:
            print(chunking.describe(chunks))
    if timing:
        # A small pass: which device runs it, timed (latency.py); None: nothing to choose
        from cnnc.tune.device_choice import describe as describe_choice
        from cnnc.tune.device_choice import tune_device

        choice = tune_device(asked, cache, graph, args.batch)
        if choice is not None:
            print(describe_choice(choice))
            if (device is asked) == choice.companion:
                print("(the other device than the one tuned above: tune again to tune its "
                      "launches)")
    # The graph with what was tuned, run once: its new winners' programs (on the disk since
    # their searches) loaded, pocl's kernels for their work-group sizes built, so the first
    # run after tuning starts as fast as later ones.
    if tuner.left() > 0:
        begun = time.perf_counter()
        _warm_up(device, cache, graph, args.batch)
        print(f"the graph's programs built and run once in "
              f"{time.perf_counter() - begun:.1f} s (a run's first step need not build them)")


def _warm_up(device, cache, graph, batch: int) -> None:
    """Build and run the whole graph once with the tuned variants, so that all its programs are
    in the program cache (and pocl's kernels for their work-group sizes in pocl's): the first
    `cnnc run` after tuning then starts as fast as later ones (measured: its first step 3.8 s
    after start without this, 1.9 s with warm caches)."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.initializers import initial_values
    from cnnc.tune.tuner import CachedVariants

    backend = OpenCLBackend(device)
    backend.choose_variants = CachedVariants(backend, cache)
    backend.init_state(graph.state, initial_values(graph.state, 0))
    # its programs built several at once first (cold, one after another took 42 s for the
    # seed model's training step on a loaded 2-core Xeon)
    plan = backend.plan(graph, batch)
    backend.programs.prebuild([(lau.file, lau.kernel, lau.define_map)
                               for _, lau in plan.launches()])
    exe = backend.compile(graph, batch)
    exe.run(random_feeds(graph, batch, 0), [], step=1)
    backend.queue.finish()
