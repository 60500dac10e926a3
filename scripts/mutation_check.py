"""The mutation check from the command line: how many tests each planted bug fails (issue 25).

    .venv/bin/python scripts/mutation_check.py [MUTANT ...] [--fast] [--baseline] [-n N]
        [--only PATH ...] [--root CHECKOUT --python ITS_PYTHON] [--failures FILE.json]

Each mutant (tests/mutation/mutants.py: a pytest plugin that changes cnnc from outside) runs its
broader set of test files in a child pytest (--fast: the handful the default suite runs), and a
table gives the failed and run counts and the time; --baseline first runs the union of those
files once with no mutant, so that every failure counted is the mutant's. --root runs another
checkout's tests (an older commit's, for a before-and-after count) against the same mutants,
with --python the interpreter of a virtual environment that imports that checkout's cnnc; the
set's files that checkout lacks are left out and named. The exit status is 1 if some mutant
failed no test or a test failed without a mutant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "mutation"))

from mutants import MUTANTS, Outcome, covers, run, split_present  # tests/mutation: no package


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def _commit(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %ad",
                           "--date=format:%Y-%m-%d %H:%M"],
                          capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return (done.stdout.strip() or "not a git checkout") + (" (with local changes)" if dirty
                                                            else "")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _only(selection: tuple[str, ...], only: list[str]) -> tuple[str, ...]:
    """The selection narrowed to `only`: a path of the set at or under one of them stays, a
    folder of the set holding one of them gives way to it; options are kept."""
    if not only:
        return selection
    narrow = [o.rstrip("/") for o in only]
    kept: list[str] = []
    takes_value = False
    for arg in selection:
        if takes_value or arg.startswith("-"):
            kept.append(arg)
            takes_value = arg in ("-k", "-m")
        elif any(arg == o or arg.startswith(o + "/") for o in narrow):
            kept.append(arg)
        else:
            kept += [o for o in narrow if o.startswith(arg.rstrip("/") + "/") and o not in kept]
    return tuple(kept)


def _count(results: dict[str, str]) -> tuple[int, int, int]:
    """(failed or errors, run, skipped) of a set of test results."""
    failed = sum(1 for r in results.values() if r in ("failed", "error"))
    skipped = sum(1 for r in results.values() if r == "skipped")
    return failed, len(results) - skipped, skipped


def _by_file(results: dict[str, str]) -> dict[str, list[int]]:
    """[failed, run, skipped] for each test file of a run."""
    files: dict[str, dict[str, str]] = {}
    for node, outcome in results.items():
        files.setdefault(node.split("::")[0], {})[node] = outcome
    return {file: list(_count(r)) for file, r in sorted(files.items())}


def _baseline(selections: dict[str, tuple[str, ...]], args) -> dict[str, dict[str, str]]:
    """Each mutant's selection run with no mutant: the paths-only selections as one run (their
    union: a file in two sets runs once), those with options on their own."""
    union: list[str] = []
    results: dict[str, dict[str, str]] = {}
    for name, selection in selections.items():
        if any(a.startswith("-") for a in selection):
            results[name] = _run("", selection, args).results
        else:
            union += [a for a in selection if a not in union]
    if union:
        together = _run("", tuple(union), args)
        for name, selection in selections.items():
            if name not in results:
                results[name] = {node: r for node, r in together.results.items()
                                 if covers(selection, node)}
    return results


def _run(name: str, selection: tuple[str, ...], args) -> Outcome:
    started = time.strftime("%H:%M:%S", time.gmtime())
    got = run(name, selection, root=args.root, python=args.python, workers=args.workers)
    if not got.results:
        print(f"{name or 'no mutant'}: pytest exited {got.status} without results; "
              f"its output ends:\n{got.output[-3000:]}", file=sys.stderr)
    print(f"  {name or 'no mutant'}: {started} UTC, {got.seconds:.0f} s, load {_load()}",
          file=sys.stderr, flush=True)
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", metavar="MUTANT",
                        help=f"default: all of {', '.join(sorted(MUTANTS))}")
    parser.add_argument("--fast", action="store_true", help="only the default suite's handful")
    parser.add_argument("--baseline", action="store_true",
                        help="first run the selections once without a mutant")
    parser.add_argument("--recheck", action="store_true",
                        help="afterwards rerun, without a mutant, every test a mutant failed "
                             "(cheaper than --baseline: only those failures are attributed)")
    parser.add_argument("-n", "--workers", type=int, default=0, metavar="N",
                        help="pytest-xdist worker processes per run (default 0: serial)")
    parser.add_argument("--only", action="append", default=[], metavar="PATH",
                        help="run only the set's files at or under PATH (repeatable)")
    parser.add_argument("--root", type=Path, default=None, metavar="CHECKOUT",
                        help="the checkout whose tests run (default: this one)")
    parser.add_argument("--python", default=None, metavar="EXE",
                        help="an interpreter importing --root's cnnc (default: this one)")
    parser.add_argument("--failures", type=Path, default=None, metavar="FILE",
                        help="write each run's failing tests and left-out files as JSON")
    args = parser.parse_args()
    unknown = [m for m in args.mutants if m not in MUTANTS]
    if unknown:
        parser.error(f"not a mutant: {', '.join(unknown)}; known: {', '.join(sorted(MUTANTS))}")
    if args.workers < 0:
        parser.error(f"--workers must be 0 or more, got {args.workers}")
    root = (args.root or Path(__file__).resolve().parents[1]).resolve()
    if not (root / "tests").is_dir():
        parser.error(f"--root {root}: no tests folder there")
    args.root = root
    names = args.mutants or sorted(MUTANTS)
    selections: dict[str, tuple[str, ...]] = {}
    absent: dict[str, tuple[str, ...]] = {}
    for name in names:
        chosen = _only(MUTANTS[name].fast if args.fast else MUTANTS[name].full, args.only)
        selections[name], absent[name] = split_present(chosen, root)
    empty = [n for n, s in selections.items() if not any(not a.startswith("-") for a in s)]
    if empty:
        parser.error(f"nothing left to run for {', '.join(empty)} (--only, or files {root} "
                     f"lacks: {', '.join(a for n in empty for a in absent[n])})")

    print(f"checkout {root}: {_commit(root)}; {_cpu()}; "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load {_load()}; "
          f"pytest -n {args.workers}")
    base = _baseline(selections, args) if args.baseline else {}
    print("| mutant | test files | failed/run | skipped | seconds | no mutant failed/run |")
    print("|---|---|---:|---:|---:|---:|")
    missed, record = [], {}
    for name in names:
        got = _run(name, selections[name], args)
        failed, ran, skipped = _count(got.results)
        if failed == 0:
            missed.append(name)
        files = " ".join(selections[name]) + (f" (absent: {' '.join(absent[name])})"
                                              if absent[name] else "")
        b = "{}/{}".format(*_count(base[name])[:2]) if name in base else ""
        print(f"| {name} | {files} | {failed}/{ran} | {skipped} | {got.seconds:.0f} | {b} |",
              flush=True)
        record[name] = {
            "selection": selections[name], "absent": absent[name], "failed": failed, "run": ran,
            "skipped": skipped, "seconds": round(got.seconds), "status": got.status,
            "failing": sorted(n for n, r in got.results.items() if r in ("failed", "error")),
            "by_file": _by_file(got.results),
            "baseline_failing": sorted(n for n, r in base.get(name, {}).items()
                                       if r in ("failed", "error")),
            "baseline_by_file": _by_file(base.get(name, {}))}
        if args.failures:
            args.failures.write_text(json.dumps(
                {"root": str(root), "commit": _commit(root), "mutants": record}, indent=1))
    if args.recheck:
        failing = sorted({n for r in record.values() for n in r["failing"]})
        again = _run("", tuple(failing), args).results if failing else {}
        for name, r in record.items():
            r["recheck_failing"] = sorted(n for n in r["failing"]
                                          if again.get(n, "error") in ("failed", "error"))
            print(f"{name}: {len(r['recheck_failing'])} of its {len(r['failing'])} failing "
                  "tests fail without a mutant too")
        if args.failures:
            args.failures.write_text(json.dumps(
                {"root": str(root), "commit": _commit(root), "mutants": record}, indent=1))
        broken_again = [n for n, r in record.items() if r["recheck_failing"]]
    else:
        broken_again = []
    print(f"load at the end {_load()}")
    broken = [n for n, b in base.items() if _count(b)[0]] + broken_again
    if broken:
        print(f"tests failed without a mutant in the sets of: {', '.join(broken)}")
    if missed:
        print(f"no test failed under: {', '.join(missed)}")
    return 1 if missed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
