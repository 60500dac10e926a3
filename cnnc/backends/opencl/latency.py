"""The latency path: small forward passes on pocl's one-thread 'basic' device.

pocl's CPU device ('pthread-...') hands every launch to worker threads that sleep between
launches and wakes the host when the last one is done. At batch 1 a launch computes for a few
microseconds, and those wake-ups are most of a pass: on a 2-core Intel Xeon VM (pocl 3.1) two
work-groups of 20 us took 37 us in one launch and four 69 us (the second worker hardly
helped: woken late, or handed no share of a launch that short), and a steady batch-1 pass
paid about 4-5 us a launch and 14 us from its last launch to the host, where onnxruntime's
threads spin. pocl's 'basic' device runs a launch's work-groups
in the thread that waits for them: one core, but nothing to wake. The same passes there (the
same kernels, untuned): mobilenet_mini 71 -> 21 us, mobilenetv3_mini 100 -> 33 us,
resnet_mini 109 -> 70 us, unet_mini 163 -> 139 us; the seed model, whose 179 MFLOP keep two
cores busy, 529 -> 983 us.

On the CPU device itself a small pass runs in chains (chain.py): its launches as one, taken
by the device's cores in turn, with no wake-up between layers. The networks whose arithmetic
keeps two cores busy gained most from that (the Intel Xeon, batch 1, benchmarks/chains.py:
fashion-best 1.26x, fashion-plus 1.23x, the seed model 1.22x faster than a launch a layer);
for most small ones the companion stays faster (`cnnc tune --batch 1`'s timing: convnext_mini
0.052 ms there, 0.063 ms in a chain on the device), unet_mini moved to the device (0.134 ms
against 0.185).

Which is faster is measured where it can be: `cnnc tune` and Model.tune of a forward pass
tune the launches of the device it runs on, then time the whole pass on both devices side by
side and keep the faster in the tuning cache (cnnc/tune/device_choice.py), as chunking.py
keeps a chunk size. Untimed, the rule: the companion where one core does the pass's
arithmetic within ONE_CORE_SECONDS at the device's measured peak (peak.py). On the Xeon the
rule agreed with the timings of all 12 example specs at batch 1 (9 on the companion, the seed
model, fashion-plus and fashion-best not); LeNet-5 at batch 2-8 (1-channel maps that keep one
core at a few percent of its peak: the companion 1.2-1.9x slower) is what only the timing
catches.

Training steps and passes that write state stay on the device itself. The weights are the
device's: an executable on the companion copies them over before a run whenever they may have
changed (OpenCLBackend.weights_version). CNNC_LATENCY_DEVICE=0 turns the path off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cnnc import settings
from cnnc.backends.opencl.device import Device, companion_of
from cnnc.ir.cost import total_flops
from cnnc.ir.graph import Graph

# One core's arithmetic time below which a forward pass runs on the companion. Measured on the
# 2-core Intel Xeon (peak 495 GFLOP/s, 248 a core): unet_mini's 31 MFLOP (126 us of one core
# at the peak) 1.17x faster there, fashion-plus's 45 MFLOP (180 us) 0.83x.
ONE_CORE_SECONDS = 150e-6
# A tuning times passes up to this many times ONE_CORE_SECONDS; heavier ones keep the device
TIMED_UP_TO = 8


def one_core_seconds(device: Device, graph: Graph, batch: int) -> float:
    """The arithmetic of one forward pass of `graph` at `batch` over one of the device's cores
    at its measured peak (a lower bound of the time it takes there)."""
    from cnnc.backends.opencl.peak import measured_peak

    per_core = measured_peak(device) * 1e9 / max(1, device.compute_units)
    return batch * total_flops(graph) / per_core


def usable_companion(device: Device) -> Device | None:
    """The device's companion where the latency path may use it: the path on, a device of
    more than one core (a one-core device has nothing to gain), a usable companion."""
    if not settings.latency_device() or device.compute_units < 2:
        return None
    companion = companion_of(device)
    return companion if companion is not None and companion.usable else None


def runs_on(device: Device, graph: Graph, batch: int, timed: bool | None = None) -> Device:
    """The device a forward pass of `graph` at `batch` runs on: the device's companion (pocl's
    'basic' device beside its CPU device) where a timing found it faster there (`timed`, the
    tuning cache's: cnnc/tune/device_choice.py), or without one where one core computes it
    within ONE_CORE_SECONDS; else the device itself."""
    companion = usable_companion(device)
    if companion is None:
        return device
    if timed is not None:
        return companion if timed else device
    if one_core_seconds(device, graph, batch) > ONE_CORE_SECONDS:
        return device
    return companion


def worth_timing(device: Device, graph: Graph, batch: int) -> bool:
    """Whether a tuning times the pass on both devices: there is a companion, and one core's
    share of the pass is within TIMED_UP_TO times ONE_CORE_SECONDS."""
    return (usable_companion(device) is not None
            and one_core_seconds(device, graph, batch) <= TIMED_UP_TO * ONE_CORE_SECONDS)


class CompanionExecutable:
    """An executable compiled for the companion device, run with the device's weights: copied
    over before a run whenever they may have changed since the last copy. Everything else is
    the executable's own (its plan, launches, graph)."""

    def __init__(self, exe: Any, main: Any, companion: Any, state: Sequence[Any]):
        self.executable = exe
        self.main = main
        self.companion = companion
        self._state = list(state)
        self._version: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.executable, name)

    def run(self, feeds: Mapping[str, np.ndarray], fetch: Sequence[str],
            **options: Any) -> dict[str, np.ndarray]:
        if self._version != self.main.weights_version:
            self._copy_weights()
        return self.executable.run(feeds, fetch, **options)

    def _copy_weights(self) -> None:
        version = self.main.weights_version  # before the read: a later change copies again
        if self._state:
            values = self.main.read_state([s.name for s in self._state])
            self.companion.init_state(self._state, values)
        self._version = version
