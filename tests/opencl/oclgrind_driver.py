"""Run every kernel on tiny shapes, for `test_oclgrind.py` (run under the Oclgrind simulator).

Each op case's forward graph and training step runs on the default device (Oclgrind, when the
test points the ICD loader at it) with the device's own tiling and with the other kind's (a CPU's
register blocks, a GPU's local-memory tiles), and is compared with NumPy on its outputs.
Prints one line per run; the test reads Oclgrind's reports from stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cnnc.backends.opencl.bind import Target  # noqa: E402
from cnnc.backends.opencl.crosscheck import cross_check  # noqa: E402
from test_ops import CASES, forward_graph, train_graph  # noqa: E402


def main(names: list[str]) -> int:
    failed = 0
    cases = [c for c in CASES if not names or c.name in names]
    for case in cases:
        for kind in ("cpu", "gpu"):
            target = Target(kind, 1)
            for what, graph in (("forward", forward_graph(case)), ("train", train_graph(case))):
                report = cross_check(graph, 2, seed=3, step=1, local=False, target=target)
                ok = report.passed
                failed += not ok
                print(f"{case.name} {what} {kind}-tiling: {'ok' if ok else 'MISMATCH'}",
                      flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
