"""The OpenCL backend: device selection, program building and caching, binding, and a runtime.

device.py finds and probes devices; program.py builds kernels/*.cl with -D options and caches
them; bind.py merges the binders of the op groups (bind_layers.py, bind_gradients.py,
bind_losses.py, bind_updates.py, algorithms.py for the ops with several algorithms, with the
shared pieces in launches.py, primitives.py and tiling.py); plan.py schedules, binds and plans
memory for a graph; runtime.py allocates buffers and enqueues launches. cnnc/crosscheck.py,
above the backends, compares a device with the NumPy backend. Importing this package loads pyopencl.
"""

from cnnc.backends.opencl.runtime import OpenCLBackend, OpenCLExecutable

__all__ = ["OpenCLBackend", "OpenCLExecutable"]
