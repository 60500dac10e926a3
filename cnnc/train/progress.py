"""What a person sees while training: a tqdm bar per epoch and one summary line per epoch.

The bar (on stderr) shows the running loss, accuracy and examples per second; the epoch line (on
stdout, so it survives in logs and pipes) gives train and validation loss and accuracy, the
learning rate and the time taken.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Protocol, TextIO


class Reporter(Protocol):
    def epoch_start(self, epoch: int, epochs: int, batches: int, first_batch: int) -> None: ...

    def batch_end(self, batch: int, loss: float, accuracy: float, rate: float) -> None: ...

    def epoch_end(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class SilentReporter:
    def epoch_start(self, epoch: int, epochs: int, batches: int, first_batch: int) -> None:
        pass

    def batch_end(self, batch: int, loss: float, accuracy: float, rate: float) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    width = len(str(epochs))
    # A reconstruction's records have no accuracy: its losses get more digits instead.
    digits = 4 if "accuracy" in record else 5
    parts = [f"epoch {record['epoch']:>{width}}/{epochs}", f"loss {record['loss']:.{digits}f}"]
    if "accuracy" in record:
        parts.append(f"accuracy {record['accuracy']:.4f}")
    if "val_loss" in record:
        parts.append(f"val_loss {record['val_loss']:.{digits}f}")
    if "val_accuracy" in record:
        parts.append(f"val_accuracy {record['val_accuracy']:.4f}")
    parts += [f"lr {record['learning_rate']:.3g}",
              f"{record['time_s']:.1f} s ({record['examples_per_s']:.0f} examples/s)"]
    return "  ".join(parts)


class ConsoleReporter:
    """tqdm bars on `bar_file` (hidden when it is not a terminal unless `bars` is True)."""

    def __init__(self, out: TextIO | None = None, bar_file: TextIO | None = None,
                 bars: bool | None = None):
        self.out = out or sys.stdout
        self.bar_file = bar_file or sys.stderr
        # tqdm's disable=None hides the bar when its stream is not a terminal.
        self.disable = None if bars is None else not bars
        self._bar = None
        self._epochs = 0

    def epoch_start(self, epoch: int, epochs: int, batches: int, first_batch: int) -> None:
        from tqdm import tqdm

        self._epochs = epochs
        self._bar = tqdm(total=batches, initial=first_batch, file=self.bar_file,
                         desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
                         disable=self.disable, dynamic_ncols=True)

    def batch_end(self, batch: int, loss: float, accuracy: float, rate: float) -> None:
        if self._bar is not None:
            # NaN: a reconstruction, which has no accuracy.
            shown = (f"loss {loss:.5f}" if math.isnan(accuracy)
                     else f"loss {loss:.4f}, accuracy {accuracy:.4f}")
            self._bar.set_postfix_str(f"{shown}, {rate:.0f} examples/s", refresh=False)
            self._bar.update(1)

    def epoch_end(self, record: dict[str, Any]) -> None:
        self.close()
        print(epoch_line(record, self._epochs), file=self.out, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
