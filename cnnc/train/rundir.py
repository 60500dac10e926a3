"""The run folder `cnnc run` leaves behind, and the files in it.

    runs/<spec>-<YYYYmmdd-HHMMSS>/
      run.json                 how the run was started (spec, settings, backend, data) for --resume
      spec.yaml                the resolved spec: the spec with command-line overrides applied
      checkpoint.safetensors   the last checkpoint (end of each epoch, or Ctrl-C)
      metrics.csv, metrics.json   one row per epoch
      weights.safetensors      the trained weights (after the last epoch)
      test_metrics.json        test loss, accuracy, per-class accuracy, confusion matrix
                               (an autoencoder's: test mse and psnr)
      confusion_matrix.csv     the same matrix, rows = true class, columns = predicted
      summary.txt              a page a person reads first
      curves.png, confusion.png, mistakes.png, filters.png, report.html
                               pictures and a page for a browser (cnnc/viz/report.py)

Every file is written atomically (cnnc.atomic.atomic_write). A run stopped before its first
checkpoint leaves run.json and spec.yaml; `--resume` starts such a run over in its folder.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from cnnc.atomic import atomic_write, remove_stale_temporaries
from cnnc.errors import CnncError, OutputError
from cnnc.train.checkpoint import CHECKPOINT_NAME
from cnnc.train.metrics import Evaluation, ReconstructionEvaluation

RUN_JSON = "run.json"
SPEC_YAML = "spec.yaml"
WEIGHTS = "weights.safetensors"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
TEST_JSON = "test_metrics.json"
CONFUSION_CSV = "confusion_matrix.csv"
SUMMARY = "summary.txt"
METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                  "step", "train_time_s", "time_s", "examples_per_s")


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    # NumPy scalars and tuples inside configs; anything else is a bug worth seeing.
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, spec_name: str, out: str | Path | None = None,
               base: str | Path = "runs") -> RunFolder:
        """A new folder: `out` if given (created; must be empty), else base/<spec>-<time>.

        Temporary files that writers killed mid-write left count as nothing (and are removed).
        """
        if out is not None:
            path = Path(out)
            if not str(out).strip():
                raise CnncError("--out needs a folder name", hint="e.g. --out runs/first")
            if path.exists() and not path.is_dir():
                raise OutputError(f"--out {path}: it is a file, not a folder",
                                  hint="choose a new folder name")
            if path.is_dir():
                try:
                    entries = [p for p in path.iterdir() if not _temporary(p)]
                except OSError as err:
                    raise OutputError(f"--out {path}: cannot list the folder "
                                      f"({err.strerror or err})") from None
                if entries:
                    raise CnncError(f"--out {path}: the folder is not empty",
                                    hint="choose a new folder, or continue that run with "
                                         "--resume")
                remove_stale_temporaries(path)
            _mkdir(path, exist_ok=True)
            return cls(path)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in spec_name) or "run"
        for i in range(1, 1000):
            path = Path(base) / (f"{safe}-{stamp}" if i == 1 else f"{safe}-{stamp}-{i}")
            try:
                _mkdir(path, exist_ok=False)
                return cls(path)
            except FileExistsError:
                continue
        raise OutputError(f"no free run folder name under {base}",
                          hint="name one with --out")

    # ------------------------------------------------------------ paths

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    def file(self, name: str) -> Path:
        return self.path / name

    # ------------------------------------------------------------ writers

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write(self.path / name, _json(data))

    def read_json(self, name: str) -> Any:
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise CnncError(f"{path}: cannot read this run record ({err})") from None

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write(self.path / name, text)

    def write_metrics(self, history: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for rec in history:
            writer.writerow({k: _csv_value(rec.get(k)) for k in METRIC_COLUMNS})
        self.write_text(METRICS_CSV, buf.getvalue())
        self.write_json(METRICS_JSON, history)

    def write_test(self, ev: Evaluation | ReconstructionEvaluation) -> None:
        self.write_json(TEST_JSON, ev.to_dict())
        if isinstance(ev, ReconstructionEvaluation):
            return  # no classes, so no confusion matrix
        names = list(ev.class_names) or [str(i) for i in range(ev.confusion.shape[0])]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, ev.confusion.tolist()):
            writer.writerow([name, *row])
        self.write_text(CONFUSION_CSV, buf.getvalue())


def _temporary(entry: Path) -> bool:
    """A temporary file of cnnc.atomic's (a user's spec.yaml, say, is never taken for one)."""
    return entry.name.startswith(".") and entry.name.endswith(".tmp")


def _mkdir(path: Path, *, exist_ok: bool) -> None:
    """Create a run folder (and its parents); OutputError, naming the reason, if that fails."""
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        if not exist_ok:
            raise
        raise OutputError(f"cannot create the run folder {path}: a file has that name") \
            from None
    except OSError as err:
        reason = err.strerror or str(err)
        if isinstance(err, (NotADirectoryError, FileExistsError)):
            reason = "a file stands where a folder of that path should be"
        raise OutputError(f"cannot create the run folder {path}: {reason}",
                          hint="choose another place with --out") from None


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
