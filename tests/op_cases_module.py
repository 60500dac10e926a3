"""tests/opencl/op_cases.py (small networks that together hold every op and, in their inference
graphs, every fused op) as a module, for the table tests outside tests/opencl: loaded by path,
once, under the name tests/opencl imports it by."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def op_cases():
    if "op_cases" in sys.modules:  # tests/opencl imports it under this name too
        return sys.modules["op_cases"]
    path = Path(__file__).parent / "opencl" / "op_cases.py"
    spec = importlib.util.spec_from_file_location("op_cases", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["op_cases"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
