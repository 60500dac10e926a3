"""Every ```python block of README.md and docs/*.md runs, so that the examples cannot drift from
the API they show.

Each file's blocks run in order in one namespace (a later block may use an earlier one's model),
in a folder that stands in for the files they name: tiny specs under the names of the bundled
ones (specs/fashion.yaml, ...), a synthetic Fashion-MNIST as $CNNC_DATA, a `model.onnx`, the
run folder's weights. cnnc.compile runs on NumPy whatever the block asks: what drifts is the
API, and the OpenCL backend has its own tests; pictures draw with matplotlib's Agg.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import cnnc

ROOT = Path(__file__).resolve().parents[2]
FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
# A stand-in for every bundled spec a block names: Fashion-MNIST's shape, a few weights.
TINY = """network: {name}
input: [28, 28, 1]
layers:
  - {{conv2d: [4, 3], activation: relu}}
  - {{maxpool2d: 2}}
  - flatten
  - {{dense: 10, activation: softmax}}
train: {{epochs: 1, batch_size: 32, validation_split: 0.25}}
"""


def python_blocks(name: str) -> list[str]:
    text = (ROOT / name).read_text()
    found = re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    return [m.group(1) for m in found]


WITH_BLOCKS = [f for f in FILES if python_blocks(f)]


def test_the_docs_have_python_examples():
    assert {"README.md", "docs/training.md", "docs/pictures.md"} <= set(WITH_BLOCKS)


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    from cnnc.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "data", train=64, test=128)
    monkeypatch.setenv("CNNC_DATA", str(data))
    for name in ("fashion", "fashion-plus", "lenet5"):
        path = tmp_path / "specs" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(TINY.format(name=name.replace("-", "_")))
    model = cnnc.compile(str(tmp_path / "specs" / "fashion.yaml"), backend="numpy")
    model.export_onnx(str(tmp_path / "model.onnx"))
    weights = tmp_path / "runs" / "fashion-..." / "weights.safetensors"
    weights.parent.mkdir(parents=True)
    model.save_weights(str(weights))
    monkeypatch.chdir(tmp_path)
    real = cnnc.compile

    def on_numpy(spec, backend=None, device=None, **options):
        return real(spec, backend="numpy", **options)

    monkeypatch.setattr(cnnc, "compile", on_numpy)
    import matplotlib

    matplotlib.use("Agg")
    return tmp_path


@pytest.mark.parametrize("name", WITH_BLOCKS)
def test_python_examples_run(name, stand_ins, capsys):
    import matplotlib.pyplot as plt

    namespace = {"cnnc": cnnc, "np": np, "__name__": "__doc_example__"}
    for i, block in enumerate(python_blocks(name)):
        try:
            code = compile(block, f"{name} python block {i + 1}", "exec")
            exec(code, namespace)  # noqa: S102 (the repository's own documentation)
        except Exception as err:  # noqa: BLE001 (say which block, then fail)
            pytest.fail(f"{name}, python block {i + 1} raised {type(err).__name__}: {err}")
        finally:
            plt.close("all")
