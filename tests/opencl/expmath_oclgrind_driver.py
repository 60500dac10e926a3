"""Run under Oclgrind by tests/opencl/test_expmath_oclgrind.py: kernels/expmath.h's functions
on float and float8 over the inputs in argv[1] (a .npy file), each result saved beside it as
<name>_<width>.npy. The test compares them with float64 NumPy: a simulator that computes a
built-in differently from pocl (Oclgrind 21.10's clamp(intN, int, int)) shows here first."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyopencl as cl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_expmath import SOURCE

from cnnc.backends.opencl.kernel_files import kernel_dir


def main(path: str) -> int:
    x = np.load(path)
    device = next(d for p in cl.get_platforms() for d in p.get_devices()
                  if "Oclgrind" in d.name)
    ctx = cl.Context([device])
    queue = cl.CommandQueue(ctx)
    program = cl.Program(ctx, SOURCE).build(options=["-I", str(kernel_dir()),
                                                     "-cl-mad-enable"])
    mf = cl.mem_flags
    xb = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
    yb = cl.Buffer(ctx, mf.WRITE_ONLY, x.nbytes)
    for name in ("exp", "exp_normal", "expm1", "tanh", "log1p"):
        for width in (1, 8):
            kernel = cl.Kernel(program, f"{name}_{width}")
            kernel(queue, (x.size // width,), None, xb, yb)
            y = np.empty_like(x)
            cl.enqueue_copy(queue, y, yb)
            np.save(Path(path).with_name(f"{name}_{width}.npy"), y)
    queue.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
