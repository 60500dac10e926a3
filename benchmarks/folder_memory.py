"""The memory `cnnc run` takes for a large image folder, read whole and streamed (issue 21).

    python benchmarks/folder_memory.py [--images 100000] [--size 32] [--classes 10]
        [--folder DIR] [--device 0:0] [--epochs 1]

Writes `--images` random RGB PNGs of size x size in `--classes` class folders (once: an existing
folder with that many images is reused), then runs `cnnc run` on a small convolutional network
for that input, once with the folder read into memory and once with `stream: true`, each in its
own process, and prints each run's peak resident memory (the child's ru_maxrss, as the kernel
counts it), its wall time and the header lines in which the run states what it read. The same
figures with `/usr/bin/time -v cnnc run ...`; this script only saves typing them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = """network: folder_memory
input: [{size}, {size}, 3]
layers:
  - {{conv2d: [16, 3], padding: same, activation: relu}}
  - {{maxpool2d: 2}}
  - {{conv2d: [32, 3], padding: same, activation: relu}}
  - GlobalAveragePooling2D
  - {{dense: {classes}, activation: softmax}}
train:
  epochs: {epochs}
  batch_size: 256
  optimizer: {{name: adam, learning_rate: 0.001}}
  loss: sparse_categorical_crossentropy
  validation_split: 0.1
  stream: {stream}
"""


def make_folder(folder: Path, images: int, size: int, classes: int) -> float:
    """Random PNGs, `images` of them spread over `classes` folders; seconds spent (0: reused)."""
    from PIL import Image

    names = [f"class_{c:02d}" for c in range(classes)]
    if sum(len(list((folder / n).glob("*.png"))) for n in names if (folder / n).is_dir()) \
            == images:
        return 0.0
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for c, name in enumerate(names):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(c, images, classes):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / name / f"{i:06d}.png", compress_level=1)
    return time.perf_counter() - start


def run(folder: Path, spec_text: str, device: str | None) -> tuple[float, float, list[str]]:
    """(peak RSS in MiB, wall seconds, header lines) of one `cnnc run` in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "folder_memory.yaml"
        spec.write_text(spec_text)
        cmd = [sys.executable, "-c", "from cnnc.cli import main; main()", "run", str(spec),
               "--data", str(folder),
               "--out", str(Path(tmp) / "run"), "--progress", "off"]
        if device:
            cmd += ["--device", device]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out = proc.stdout.read()
        # wait4, not communicate(): only it returns the child's own peak resident memory.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"cnnc run failed ({code}):\n{out}")
    peak_kib = usage.ru_maxrss
    lines = [ln for ln in out.splitlines() if ln.split(" ", 1)[0] in ("data", "examples")]
    return peak_kib / 1024, wall, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--folder", type=Path, default=None,
                        help="where the images are written (default: a folder in $TMPDIR, kept)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.gettempdir()) / (
        f"cnnc-folder-{args.images}-{args.size}-{args.classes}")
    made = make_folder(folder, args.images, args.size, args.classes)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.images:,} "
          f"PNGs of {args.size}x{args.size} RGB in {folder}"
          + (f" (written in {made:.0f} s)" if made else " (reused)"))
    values = args.images * args.size * args.size * 3
    print(f"as uint8 {values / 2**20:,.0f} MiB, as float32 {4 * values / 2**20:,.0f} MiB")
    for stream in ("false", "true"):
        text = SPEC.format(size=args.size, classes=args.classes, epochs=args.epochs,
                           stream=stream)
        peak, wall, lines = run(folder, text, args.device)
        print(f"stream: {stream:5}  peak RSS {peak:,.0f} MiB  wall {wall:.0f} s "
              f"({args.epochs} epoch{'s' if args.epochs != 1 else ''})")
        for line in lines:
            print(f"    {line}")


if __name__ == "__main__":
    main()
