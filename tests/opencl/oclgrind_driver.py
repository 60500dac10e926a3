"""Run every kernel on tiny shapes, for `test_oclgrind.py` (run under the Oclgrind simulator).

Each op case's forward graph and training step runs on the default device (Oclgrind, when the
test points the ICD loader at it) with a CPU's tiling (register blocks) and a GPU's (local-memory
tiles), and is compared with NumPy on its outputs. Every tensor gets its own allocation, so an
access past a tensor's end is outside any buffer, where Oclgrind reports it.
Prints one line per run; the test reads Oclgrind's reports from stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_ops import CASES, forward_graph, train_graph

from cnnc.backends.opencl.tiling import Target
from cnnc.verify import cross_check


def main(names: list[str]) -> int:
    failed = 0
    cases = [c for c in CASES if not names or c.name in names]
    for case in cases:
        for kind in ("cpu", "gpu"):
            target = Target(kind, 1)
            for what, graph in (("forward", forward_graph(case)), ("train", train_graph(case))):
                report = cross_check(
                    graph, 2, seed=3, step=1, local=False, target=target, isolate=True
                )
                ok = report.passed
                failed += not ok
                print(f"{case.name} {what} {kind}-tiling: {'ok' if ok else 'MISMATCH'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
