"""The OpenCL backend: device selection, program building and caching, binding, and a runtime.

device.py finds and probes devices; program.py builds kernels/*.cl with -D options and caches
them; bind.py maps every op to kernel launches (bind_layers.py, bind_train.py, with the shared
pieces in launches.py, primitives.py and tiling.py); plan.py schedules, binds and plans memory
for a graph; runtime.py allocates buffers and enqueues launches; crosscheck.py compares a
device with the NumPy backend (`cnnc verify`). Importing this package loads pyopencl.
"""

from cnnc.backends.opencl.runtime import OpenCLBackend, OpenCLExecutable

__all__ = ["OpenCLBackend", "OpenCLExecutable"]
