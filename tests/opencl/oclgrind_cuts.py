"""Which tilings ("cuts") an Oclgrind driver runs: every one it has, or only those the test
names in OCLGRIND_CUTS (comma-separated), so the default suite runs one cut of a driver and
`-m slow` the others (Oclgrind simulates every work-item: these drivers are the suite's
slowest minutes)."""

from __future__ import annotations

import os


def chosen(runs: dict) -> dict:
    """The entries of `runs` (cut name -> what the driver needs for it) the environment asks
    for; all of them when it names none."""
    named = os.environ.get("OCLGRIND_CUTS", "")
    if not named:
        return runs
    wanted = named.split(",")
    unknown = sorted(set(wanted) - set(runs))
    if unknown:
        raise SystemExit(f"OCLGRIND_CUTS names {unknown}; this driver's cuts are {sorted(runs)}")
    return {name: run for name, run in runs.items() if name in wanted}
