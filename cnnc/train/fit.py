"""Model.fit and Model.evaluate: Keras-style training and evaluation from Python.

The Model's methods delegate here. With no arrays given, both use the dataset named in the
spec's `train` section (found as `cnnc run` finds it); validation follows the section's
validation_split / validation_size with Keras semantics (the last part of the training arrays).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnc.atomic import remove_stale_temporaries
from cnnc.data.dataset import Dataset, load_configured, raw_pixels, to_inputs
from cnnc.data.split import validation_split_point
from cnnc.errors import CnncError, DataError, InputError, OutputError
from cnnc.inputs import single_input
from cnnc.ir.train_config import TrainConfig, parse_train_config
from cnnc.train.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from cnnc.train.loop import EVAL_BATCH_SIZE, History, LabelledData, Trainer, evaluate_arrays
from cnnc.train.metrics import Evaluation, ReconstructionEvaluation
from cnnc.train.progress import ConsoleReporter, SilentReporter


def input_shape(model) -> tuple[int, ...]:
    g = model.graph
    return tuple(int(d) for d in g.shape_of(g.inputs[0])[1:])


def num_classes(model) -> int:
    g = model.graph
    return int(g.shape_of(g.outputs[0])[-1])


@dataclass
class PreparedData:
    train: LabelledData
    validation: LabelledData | None
    test: LabelledData
    class_names: tuple[str, ...]
    dataset: Dataset

    def sizes(self) -> dict[str, int]:
        """Examples in each part, as run.json and the run's header and summary state them."""
        return {"train": len(self.train),
                "validation": len(self.validation) if self.validation else 0,
                "test": len(self.test)}


def _parts(n: int, config: TrainConfig, limit: int | None) -> tuple[slice, slice | None]:
    """The training and validation parts of n examples: validation is split off first (Keras'
    semantics, before any shuffling), then `limit` caps the training part only."""
    point = validation_split_point(n, config.validation_split, config.validation_size)
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be a positive number of examples, got {limit}")
    train = slice(0, point if limit is None else min(point, limit))
    return train, (slice(point, n) if point < n else None)


def prepare_data(config: TrainConfig, dataset: Dataset, shape: tuple[int, ...],
                 limit: int | None = None, raw: bool = False) -> PreparedData:
    """The dataset as model inputs: training, validation (see `_parts`) and test.

    `limit` caps the examples trained on; the validation and test sets stay whole so that their
    figures stay comparable between runs. Only the parts used are converted to float32. raw:
    the model's own rescaling layer scales the pixels (cnnc.data.dataset.raw_pixels).
    """
    images, labels = dataset.train.images, dataset.train.labels
    if dataset.validation is not None:
        # An image folder's own val/: a split of train as well would be a second, silent one.
        if config.validation_split or config.validation_size:
            raise DataError(f"{dataset.source.folder if dataset.source else dataset.name} has "
                            "its own validation folder, and the spec sets validation_split or "
                            "validation_size too", hint="remove one of the two")
        train, _ = _parts(len(labels), config.replace(validation_size=None,
                                                      validation_split=0.0), limit)
        validation = LabelledData(to_inputs(dataset.validation.images, shape, raw),
                                  dataset.validation.labels)
    else:
        train, held = _parts(len(labels), config, limit)
        validation = None
        if held is not None:
            validation = LabelledData(to_inputs(images[held], shape, raw), labels[held])
    return PreparedData(
        train=LabelledData(to_inputs(images[train], shape, raw), labels[train]),
        validation=validation,
        test=LabelledData(to_inputs(dataset.test.images, shape, raw), dataset.test.labels),
        class_names=dataset.class_names,
        dataset=dataset,
    )


def _labels(y: Any, n: int, what: str, classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype == object or y.dtype.kind in "SUV":
        raise InputError(f"{what}: labels must be class indices, got an array of {y.dtype}")
    if y.ndim == 2:
        y = np.argmax(y, axis=1)  # one-hot targets
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"{what}: expected {n} labels (class indices or one-hot rows), got "
                         f"an array of shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) and not np.all(np.equal(np.mod(y, 1), 0)):
        raise InputError(f"{what}: labels must be whole class indices")
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if bad.size:
        # A label of -1 would index the last class, and 10 of 10 classes nothing: never guess.
        raise InputError(f"{what}: label {y[bad[0]].item()!r} at index {int(bad[0])} is not a class "
                         f"index in 0..{classes - 1} ({bad.size} such labels)")
    return y.astype(np.int64)


def _arrays(model, x: Any, y: Any, what: str, classes: int, reconstruction: bool = False
            ) -> LabelledData:
    if y is None and not reconstruction:
        raise InputError(f"{what}: x was given without y")
    # The checks predict and train_step make, with their messages (cnnc/inputs.py): uint8
    # images are refused unless the network rescales them itself.
    x = single_input(model.spec_graph, x, what)
    x = x.astype(np.float64 if model.dtype == "float64" else np.float32, copy=False)
    if reconstruction:
        # The target is x itself; labels, when given, are kept but not trained on.
        labels = (np.zeros(x.shape[0], np.int64) if y is None
                  else np.asarray(y).reshape(x.shape[0], -1)[:, 0])
        return LabelledData(x, labels)
    return LabelledData(x, _labels(y, x.shape[0], what, classes))


def fit(model, x: Any = None, y: Any = None, *, epochs: int | None = None,
        batch_size: int | None = None, validation_split: float | None = None,
        validation_data: tuple[Any, Any] | None = None, shuffle: bool | None = None,
        verbose: int = 1, callbacks: list[Any] | None = None,
        data_dir: str | Path | None = None, limit: int | None = None,
        checkpoint_dir: str | Path | None = None, resume: bool = False) -> History:
    """Train `model` for the spec's (or the given) number of epochs; returns the History.

    x, y: inputs (N, H, W, C), floating point (uint8 only where the network rescales them
    itself), and class indices (or one-hot rows); None loads the spec's dataset.
    validation_split: hold out this last fraction of x (Keras: before shuffling); replaces the
    spec's validation_split / validation_size. validation_data: (x_val, y_val) to validate on
    instead: nothing is held out of x then. callbacks: cnnc.Callback objects (EarlyStopping,
    ModelCheckpoint, ReduceLROnPlateau, LambdaCallback, your own), after those of the spec's
    train section. checkpoint_dir: write checkpoint.safetensors there after every epoch (and
    on Ctrl-C); resume: continue from the checkpoint found there.
    """
    config: TrainConfig = model.train_config
    given = {"epochs": epochs, "batch_size": batch_size, "shuffle": shuffle,
             "validation_split": validation_split}
    changes = {k: v for k, v in given.items() if v is not None}
    if validation_split is not None:
        changes["validation_size"] = None  # a split given here replaces the spec's count
    if validation_data is not None:
        # Keras: validation_data replaces any split; no training example is held out.
        changes.update(validation_split=0.0, validation_size=None)
    config = apply_overrides(config, changes)
    classes = num_classes(model)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit <= 0):
        raise InputError(f"limit must be a positive number of examples, got {limit!r}")
    with _python_hints():
        if x is None:
            dataset = load_configured(config, data_dir, input_shape(model),
                                      raw=raw_pixels(model.graph))
            data = prepare_data(config, dataset, input_shape(model), limit,
                                raw=raw_pixels(model.graph))
            train, validation = data.train, data.validation
            if validation_data is not None:
                validation = None  # the dataset's own val/ folder gives way too
        else:
            every = _arrays(model, x, y, "fit", classes, config.reconstruction)
            train_part, held = _parts(len(every), config, limit)
            train = every.part(train_part)
            validation = every.part(held) if held is not None else None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise InputError("validation_data must be a pair (x, y)")
        validation = _arrays(model, *validation_data, "validation_data", classes,
                             config.reconstruction)
    if verbose:
        print(_examples_line(train, validation, config, validation_data is not None),
              flush=True)
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt_path is not None:
        try:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the checkpoint folder {ckpt_path.parent}: "
                              f"{err.strerror or err}") from None
        remove_stale_temporaries(ckpt_path.parent)  # what writers killed mid-write left
    settings = {"train": _resumable(config), "train_examples": len(train)}
    start = None
    if resume:
        if ckpt_path is None:
            raise InputError("resume=True needs the checkpoint_dir to resume from")
        start = load_checkpoint(ckpt_path)
        if start.settings and start.settings != settings:
            raise CheckpointError(
                f"{ckpt_path}: the checkpoint was written with other training settings or data "
                f"({start.settings}); now: {settings}",
                hint="resume with the settings it was written with (only epochs may change)")
    from cnnc.train.spec_callbacks import spec_callbacks

    trainer = Trainer(model, config, train, validation, classes=classes,
                      reporter=ConsoleReporter() if verbose else SilentReporter(),
                      checkpoint_path=ckpt_path, settings=settings,
                      callbacks=[*spec_callbacks(config, checkpoint_dir, verbose),
                                 *(callbacks or [])])
    with _python_hints():
        return trainer.run(start)


def _examples_line(train: LabelledData, validation: LabelledData | None, config: TrainConfig,
                   given: bool) -> str:
    """What fit says before its first epoch: how many examples train and validate, and where
    the validation examples come from."""
    if validation is None:
        return f"training on {len(train):,} examples, no validation"
    if given:
        source = "validation_data"
    elif config.validation_size:
        source = f"the last {config.validation_size:,} of x, validation_size"
    elif config.validation_split:
        source = f"the last {config.validation_split:g} of x, validation_split"
    else:
        source = "the dataset's validation part"
    return (f"training on {len(train):,} examples, validating on {len(validation):,} "
            f"({source})")


# What the shared data and training code's messages say to `cnnc run`'s user, and what fit's
# user is told instead: Python's arguments, not the command line's flags.
PYTHON_WORDS = (
    ("use more data (--limit)", "use more data (x, y)"),
    ("--limit", "limit"),
    ("the learning rate (--lr)", "the learning rate (cnnc.compile(..., learning_rate=))"),
    ("the folder given with --data", "the folder given as data_dir"),
    ("--data FOLDER", "data_dir=FOLDER"),
    ("(--data)", "(data_dir)"),
    (" (--bad-images skip)", ""),
)


def _in_python(text: str | None) -> str | None:
    for flag, words in PYTHON_WORDS:
        text = text.replace(flag, words) if text else text
    return text


@contextmanager
def _python_hints() -> Iterator[None]:
    """Errors of the data and training code, with hints that name fit's arguments rather than
    cnnc run's flags."""
    try:
        yield
    except CnncError as err:
        err.message, err.hint = _in_python(err.message), _in_python(err.hint)
        if err.args:
            err.args = (err.message, *err.args[1:])
        raise


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """The settings as plain data, unset ones left out: what a resumed run must match."""
    return {k: v for k, v in config.to_dict().items() if v is not None}


def _resumable(config: TrainConfig) -> dict[str, Any]:
    """The settings a resumed fit must share with the checkpoint's (all but epochs)."""
    d = config_dict(config)
    d.pop("epochs")
    d.pop("prefetch", None)  # how the batches are prepared changes none of them
    return d


def apply_overrides(config: TrainConfig, changes: dict[str, Any], path: str = "train"
                    ) -> TrainConfig:
    """`config` with `changes` applied, each checked as the spec's value would be.

    A change to None unsets that setting (validation_size when a validation_split is given).
    """
    checked = {k: v for k, v in changes.items() if v is not None}
    parsed = parse_train_config(checked, path)
    return config.replace(**{k: (getattr(parsed, k) if k in checked else None)
                             for k in changes})


def evaluate(model, x: Any = None, y: Any = None, *, batch_size: int | None = None,
             verbose: int = 1, data_dir: str | Path | None = None
             ) -> Evaluation | ReconstructionEvaluation:
    """Loss, accuracy and confusion matrix on (x, y), or on the spec's dataset's test set; an
    autoencoder's (train target input) reconstruction error, y not needed."""
    config: TrainConfig = model.train_config
    class_names: tuple[str, ...] = ()
    if x is None:
        with _python_hints():
            dataset = load_configured(config, data_dir, input_shape(model),
                                      raw=raw_pixels(model.graph))
        data = LabelledData(to_inputs(dataset.test.images, input_shape(model),
                                      raw_pixels(model.graph)), dataset.test.labels)
        class_names = dataset.class_names
    else:
        classes = num_classes(model)
        data = _arrays(model, x, y, "evaluate", classes, config.reconstruction)
        # The model's own names (its dataset's, or set on it) label the confusion matrix.
        names = model.class_names
        if names and len(names) == classes:
            class_names = names
    ev = evaluate_arrays(model, data, config.loss, class_names,
                         batch_size=batch_size or EVAL_BATCH_SIZE, target=config.target,
                         noise=config.noise, seed=config.seed, tta=config.tta)
    if verbose:
        print(f"test {ev.text()}" if isinstance(ev, ReconstructionEvaluation) else
              f"test loss {ev.loss:.4f}  accuracy {ev.accuracy:.4f} ({ev.correct}/{ev.count})")
    return ev
