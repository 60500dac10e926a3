"""The smooth activations' cost in a spec's forward pass: every kernel launch timed under two
kernel folders (an older checkout's kernels/ and this one's: e.g. pocl's built-in exp against
kernels/expmath.h's polynomial) and, with --linear, with the spec's smooth activations replaced by
`linear` (what the layers cost without them), in one process, alternately, with the same tuned
variants for all, so the load of a shared machine hits all alike.

    .venv/bin/python benchmarks/activations.py specs/efficientnet_mini.yaml --batch 256 \\
        --old ../main/kernels --linear
    .venv/bin/python benchmarks/activations.py specs/efficientnet_mini.yaml --train --batch 128 \
        --old ../main/kernels

Prints each node's best ms under each (nodes over --min-ms only) and the whole pass's (every
launch one after another, without the host's transfers), and the median over the rounds of the
new's time over the old's in the same round (steadier than the ratio of the bests on a loaded
machine).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from depthwise import _time  # the launches one after another, then one wait

SMOOTH = ("silu", "swish", "sigmoid", "gelu_tanh", "gelu", "softplus", "mish", "elu", "tanh")


def _linear_spec(path: str) -> str:
    """A copy of the spec with every smooth activation's name replaced by `linear`."""
    text = Path(path).read_text()
    names = "|".join(sorted(SMOOTH, key=len, reverse=True))
    text = re.sub(rf"\b({names})\b", "linear", text)
    out = Path(tempfile.mkdtemp()) / Path(path).name
    out.write_text(text)
    return str(out)


def _use_kernels(folder: Path) -> None:
    """Build programs from `folder` from now on (a fresh in-memory program cache)."""
    from cnnc.backends.opencl import kernel_files, program

    program.kernel_dir = kernel_files.kernel_dir = lambda: folder
    program.forget_programs()


def _compile(spec_path: str, batch: int, variants: dict | None,
             train: bool) -> tuple[Any, Any, dict]:
    """An executable of the spec's inference (or training) graph, run once; the variants it
    used."""
    from cnnc.backends.opencl.runtime import OpenCLBackend
    from cnnc.crosscheck import random_feeds
    from cnnc.frontend.spec import load_spec
    from cnnc.initializers import initial_values
    from cnnc.passes.pipeline import inference_graph, training_graph
    from cnnc.tune.tuner import install

    spec = load_spec(spec_path)
    graph = training_graph(spec) if train else inference_graph(spec)
    backend = OpenCLBackend(None)
    if variants is None:
        chooser = install(backend)  # the tuning cache's choices for the old kernels' source
        variants = chooser(graph, batch) if chooser else {}
    backend.choose_variants = lambda g, b, v=dict(variants): v
    backend.init_state(graph.state, initial_values(graph.state, 0))
    exe = backend.compile(graph, batch)
    exe.run(random_feeds(graph, batch, 0), list(graph.outputs[:1]), step=0)
    return exe, backend, variants


def _median_ratio(times: list[list[float]]) -> float:
    """The median over the rounds of the new's time over the old's."""
    return statistics.median(new / old for old, new in zip(times[0], times[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--old", required=True, help="the kernels/ folder to compare with")
    parser.add_argument("--linear", action="store_true",
                        help="also time the spec with its smooth activations made linear")
    parser.add_argument("--train", action="store_true", help="the training graph (gradients)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-ms", type=float, default=0.2)
    args = parser.parse_args()

    from cnnc.backends.opencl import kernel_files

    new_dir = kernel_files.kernel_dir()
    runs: list[tuple[str, Any, Any]] = []
    _use_kernels(Path(args.old).resolve())
    exe, backend, variants = _compile(args.spec, args.batch, None, args.train)
    runs.append(("old", exe, backend))
    _use_kernels(new_dir)
    exe, backend, _ = _compile(args.spec, args.batch, variants, args.train)
    runs.append(("new", exe, backend))
    if args.linear:  # the same variants: the kernels' tiling does not depend on the activation
        exe, backend, _ = _compile(_linear_spec(args.spec), args.batch, variants, args.train)
        runs.append(("linear", exe, backend))

    by_node: list[dict[str, list[Any]]] = []
    for _, exe, _ in runs:
        nodes: dict[str, list[Any]] = {}
        for b in exe.bound:
            if not b.launch.once:
                nodes.setdefault(b.node, []).append(b)
        by_node.append(nodes)
    print(f"{Path(args.spec).stem}, {'training' if args.train else 'forward'}, batch "
          f"{args.batch}, load {os.getloadavg()[0]:.1f}: best of "
          f"{args.repeat}, alternating; old = {args.old}")
    print(f"  {'node':28s}" + "".join(f"{name:>10s}" for name, _, _ in runs) + "   new/old (median of rounds)")
    for node in by_node[0]:
        times = [[] for _ in runs]
        for _ in range(args.repeat):
            for i, (_, _, backend) in enumerate(runs):
                times[i].append(_time(by_node[i].get(node, []), backend.queue))
        best = [min(t) * 1e3 for t in times]
        if best[0] >= args.min_ms:
            print(f"  {node:28s}" + "".join(f"{t:10.3f}" for t in best) +
                  f"   {_median_ratio(times):6.2f}")
    whole = [[] for _ in runs]
    for _ in range(args.repeat):
        for i, (_, exe, backend) in enumerate(runs):
            whole[i].append(_time([b for b in exe.bound if not b.launch.once], backend.queue))
    best = [min(t) * 1e3 for t in whole]
    print(f"  {'every launch of the pass':28s}" + "".join(f"{t:10.3f}" for t in best) +
          f"   {_median_ratio(whole):6.2f}   (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
