"""The callbacks a spec's train section asks for (early_stopping, reduce_lr_on_plateau,
checkpoint best), built for fit and `cnnc run` from the checked settings (cnnc/ir/train_config)."""

from __future__ import annotations

from pathlib import Path

from cnnc.errors import InputError
from cnnc.ir.train_config import TrainConfig
from cnnc.train.callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau

BEST_WEIGHTS = "best.safetensors"  # `checkpoint best`'s file, in the run or checkpoint folder


def spec_callbacks(config: TrainConfig, folder: str | Path | None, verbose: int = 0
                   ) -> list[Callback]:
    """The callbacks of `config`, in the order early stopping, reduce-on-plateau, checkpoint;
    folder: where `checkpoint best` writes best.safetensors (fit's checkpoint_dir); verbose:
    they say when they stop training or change the rate (Keras' verbose=1)."""
    out: list[Callback] = []
    if config.early_stopping is not None:
        out.append(EarlyStopping(**dict(config.early_stopping), verbose=verbose))
    if config.reduce_lr_on_plateau is not None:
        out.append(ReduceLROnPlateau(**dict(config.reduce_lr_on_plateau), verbose=verbose))
    if config.checkpoint is not None:
        if folder is None:
            raise InputError("the spec's train section says `checkpoint best`, which writes "
                             f"{BEST_WEIGHTS} into the checkpoint folder",
                             hint="give fit a checkpoint_dir, or pass "
                                  "callbacks=[cnnc.ModelCheckpoint(path, save_best_only=True)]")
        args = {k: v for k, v in config.checkpoint.items() if k != "name"}
        out.append(ModelCheckpoint(Path(folder) / BEST_WEIGHTS, save_best_only=True, **args))
    return out


def early_stop(callbacks: list[Callback], epochs_run: int, planned: int) -> dict | None:
    """How an EarlyStopping ended training before the planned epochs, as run.json records it
    (epochs run and planned, the monitored value, its best epoch, whether its weights came
    back, and `text`, the sentence summary.txt, the report and the closing lines show); None
    when every planned epoch ran or no EarlyStopping stopped it."""
    stopper = next((c for c in callbacks if isinstance(c, EarlyStopping)
                    and c.stopped_epoch > 0), None)
    if stopper is None or epochs_run >= planned:
        return None
    waited = stopper.wait
    restored = stopper.restore_best_weights and stopper.best_weights is not None
    text = (f"after epoch {epochs_run} of {planned} by early_stopping: "
            f"{stopper.monitor} had not improved for {waited} epoch{'' if waited == 1 else 's'} "
            f"(best {stopper.best:.4f} at epoch {stopper.best_epoch + 1}"
            + ("; the weights are that epoch's)" if restored else ")"))
    return {"by": "early_stopping", "epochs_run": epochs_run, "epochs_planned": planned,
            "monitor": stopper.monitor, "best": stopper.best,
            "best_epoch": stopper.best_epoch + 1, "restored_best_weights": restored,
            "text": text}
