"""Checkpoints: the whole training state in one safetensors file, always written atomically.

A checkpoint holds Model.get_training_state() (weights, moving statistics, optimizer slots and
the step counter) as tensors, and the loop's position as JSON in the safetensors metadata: the
epoch and batch to continue from, the partial epoch's running metrics, the history so far, and
the settings that must not change on resume. Shuffling and augmentation derive from (seed,
epoch) and dropout masks from (seed, step), so this is all the random state exact resumption
needs.

The file is written like a weights file (cnnc.weights.save_arrays, atomic through cnnc.atomic):
a kill at any moment leaves either the old checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.errors import CnncError
from cnnc.weights import save_arrays

CHECKPOINT_NAME = "checkpoint.safetensors"
FORMAT = 1
_META_KEY = "cnnc_checkpoint"
CALLBACK_PREFIX = "callback/"


class CheckpointError(CnncError):
    """A checkpoint that is missing, corrupt, or from a different run's settings."""


@dataclass
class Checkpoint:
    """The training state plus where the loop stood (continue at `epoch`, batch `batch`)."""

    state: dict[str, np.ndarray]
    epoch: int
    batch: int = 0
    partial: dict[str, float] = field(default_factory=dict)  # RunningMetrics.state()
    history: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # what resuming must match
    elapsed_s: float = 0.0
    # The training callbacks' state (cnnc/train/callbacks.py) and their arrays, kept as tensors
    # named 'callback/<index>/<name>' beside the training state.
    callbacks: dict[str, Any] = field(default_factory=dict)
    callback_arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(np.asarray(self.state.get("step", 0)))

    def position(self) -> str:
        """Where the loop stood, in words: 'after epoch 2' or 'in epoch 3 at batch 5'."""
        if self.batch == 0:
            return f"after epoch {self.epoch}"
        return f"in epoch {self.epoch + 1} at batch {self.batch}"

    def meta(self) -> dict[str, Any]:
        return {"format": FORMAT, "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "partial": self.partial, "history": self.history, "settings": self.settings,
                "elapsed_s": self.elapsed_s, "callbacks": self.callbacks}


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    save_arrays(path, {**ckpt.state, **ckpt.callback_arrays},
                {_META_KEY: json.dumps(ckpt.meta())})
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    from cnnc.errors import WeightsError
    from cnnc.weights import load_arrays

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint there")
    if path.is_file() and path.stat().st_size < 8:
        raise CheckpointError(f"{path}: not a checkpoint (file too short)")
    try:
        tensors, header = load_arrays(path)
    except WeightsError as err:
        raise CheckpointError(f"{path}: corrupt checkpoint ({err.message})",
                              hint=err.hint) from None
    try:
        meta = json.loads(header[_META_KEY])
        if not isinstance(meta, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path}: not a cnnc checkpoint (no training metadata)") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, this cnnc "
                              f"reads format {FORMAT}")
    try:
        state = {k: v for k, v in tensors.items() if not k.startswith(CALLBACK_PREFIX)}
        ckpt = Checkpoint(
            state=state, epoch=int(meta["epoch"]), batch=int(meta["batch"]),
            partial=dict(meta.get("partial") or {}), history=list(meta.get("history") or []),
            settings=dict(meta.get("settings") or {}),
            elapsed_s=float(meta.get("elapsed_s", 0.0)),
            callbacks=dict(meta.get("callbacks") or {}),
            callback_arrays={k: v for k, v in tensors.items() if k.startswith(CALLBACK_PREFIX)},
        )
        if ckpt.epoch < 0 or ckpt.batch < 0 or not all(isinstance(r, dict)
                                                      for r in ckpt.history):
            raise ValueError("a negative position, or a history that is not a list of records")
        step = np.asarray(ckpt.state["step"])
        if step.shape != () or not np.issubdtype(step.dtype, np.integer) or step < 0:
            raise ValueError(f"the step is {step!r}, not a count")
        if ckpt.batch:
            from cnnc.train.metrics import RunningMetrics

            RunningMetrics.from_state(ckpt.partial)  # what resuming mid-epoch will read
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({err!r})") from None
    return ckpt
