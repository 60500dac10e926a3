"""A run's inputs and outputs in memory the host and the device share (runtime.py's direct runs).

On a device whose memory is the host's (a CPU, an integrated GPU) with fine-grained buffer SVM,
a graph's inputs and outputs can live in SVM allocations that the host writes and reads in
place: the run then needs no copy command before its first launch nor after its last. Each copy
is a command like a launch (on pocl, Zen 3: the two took 25-35 us of a 100-170 us batch-1
forward pass, measured interleaved), so at small batches this is a fifth of the run. Coherence:
fine-grained buffer SVM is consistent at synchronization points, so host writes made before a
launch is enqueued are seen by it, and the device's writes are seen once the queue finished.

What is moved out of the arena: each graph input's storage, and each output's storage unless it
is an input's too or a hoisted launch (computed from the weights alone, run only when they
change) writes it. Every launch argument bound to such a storage is pointed at its allocation
for a direct run, and back at the arena for the other runs (queued steps, exchanges), whose
copies and kernels use the arena as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from cnnc.backends.opencl.device import Device, _cl


def shares_host_memory(device: Device) -> bool:
    """Whether the device runs on the host's memory with fine-grained buffer SVM."""
    cl = _cl()
    try:
        svm = int(device.cl_device.svm_capabilities)
    except (cl.Error, AttributeError):  # OpenCL 1.x devices, drivers without SVM queries
        return False
    if not svm & int(cl.device_svm_capabilities.FINE_GRAIN_BUFFER):
        return False
    # A discrete GPU's fine-grained SVM sits across the bus: kernels would read the input there
    # (several times, for a convolution), slower than one copy.
    try:
        unified = bool(device.cl_device.host_unified_memory)
    except (cl.Error, AttributeError):  # deprecated since OpenCL 2.0: a driver may refuse it
        unified = False
    return unified or device.kind == "cpu"


class SharedIO:
    """The SVM allocations of an executable's input and output storages, and the launch
    arguments bound to them. `args`: (kernel, argument index, storage) for every argument
    bound to a graph value, hoisted launches' included (hoisted: their storages)."""

    def __init__(self, device: Device, inputs: Mapping[str, int], outputs: Mapping[str, int],
                 args: Iterable[tuple[Any, int, str]], hoisted: Iterable[str]):
        cl = _cl()
        written_once = set(hoisted)
        sizes = dict(inputs)
        sizes.update({root: nbytes for root, nbytes in outputs.items()
                      if root not in inputs and root not in written_once})
        self.input_roots = frozenset(inputs)
        flags = cl.svm_mem_flags.READ_WRITE | cl.svm_mem_flags.SVM_FINE_GRAIN_BUFFER
        # aligned as the arena's sub-buffers are: kernels may load whole vectors
        self.memory = {root: cl.svm_empty(device.context, flags, max(nbytes, 4), np.uint8,
                                          alignment=max(device.base_alignment, 64))
                       for root, nbytes in sizes.items()}
        self.args = [(kernel, i, root) for kernel, i, root in args if root in self.memory]
        self.direct = False  # where the arguments point now (False: the arena)

    def point(self, direct: bool, arena: Any) -> None:
        """Point the arguments at the shared allocations (direct) or at `arena(storage)`."""
        if direct == self.direct:
            return
        cl = _cl()
        for kernel, i, root in self.args:
            kernel.set_arg(i, cl.SVM(self.memory[root]) if direct else arena(root))
        self.direct = direct

    def serves(self, fetch_roots: Sequence[str]) -> bool:
        """Whether a direct run can return these values: none lives in an input's storage,
        which the arena no longer receives (a fetched input, or a view of it)."""
        return not any(root in self.input_roots for root in fetch_roots)

    def views(self, values: Mapping[str, tuple[str, tuple[int, ...], Any]]
              ) -> dict[str, np.ndarray]:
        """The host's views of values (name: storage, shape, dtype) whose storage is shared,
        made once: a run writes and reads through them."""
        return {name: self.view(root, shape, dtype)
                for name, (root, shape, dtype) in values.items() if root in self.memory}

    def view(self, root: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """The host's view of the first bytes of a storage's allocation as an array."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        return self.memory[root][:nbytes].view(dtype).reshape(shape)
