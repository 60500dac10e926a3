"""The mutation check from the command line: how many tests each planted bug fails (issue 25).

    .venv/bin/python scripts/mutation_check.py [MUTANT ...] [--fast] [--baseline]

Each mutant (tests/mutation/mutants.py: a pytest plugin that changes cnnc from outside) runs its
broader set of test files in a child pytest (--fast: the handful the default suite runs), and a
table gives the failed and passed counts and the time; --baseline first runs the same files
with no mutant. The exit status is 1 if some mutant failed no test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "mutation"))

from mutants import MUTANTS, run  # tests/mutation is not a package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", metavar="MUTANT",
                        help=f"default: all of {', '.join(sorted(MUTANTS))}")
    parser.add_argument("--fast", action="store_true", help="only the default suite's handful")
    parser.add_argument("--baseline", action="store_true",
                        help="also run each selection without the mutant")
    args = parser.parse_args()
    unknown = [m for m in args.mutants if m not in MUTANTS]
    if unknown:
        parser.error(f"not a mutant: {', '.join(unknown)}; known: {', '.join(sorted(MUTANTS))}")
    print("| mutant | tests run | failed | passed | seconds | baseline failed/passed |")
    print("|---|---|---:|---:|---:|---|")
    missed = []
    for name in args.mutants or sorted(MUTANTS):
        selection = MUTANTS[name].fast if args.fast else MUTANTS[name].full
        base = ""
        if args.baseline:
            b = run("", selection)
            base = f"{b.failed}/{b.passed}"
        got = run(name, selection)
        if got.failed == 0:
            missed.append(name)
        print(f"| {name} | {' '.join(selection)} | {got.failed} | {got.passed} | "
              f"{got.seconds:.0f} | {base} |", flush=True)
    if missed:
        print(f"no test failed under: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
