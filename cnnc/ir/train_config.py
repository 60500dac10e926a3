"""The `train` section of a spec: checked once here for every front end.

YAML gives a mapping, the DSL's `train { ... }` block gives the same mapping, Python gives a dict
or a TrainConfig. Errors carry the key path (``train.optimizer.beta_1``). Optimizer arguments are
checked against the optimizer's update op in the op table, so there is one list of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from cnnc.errors import SpecError, did_you_mean
from cnnc.ir import args as A
from cnnc.ir.args import ArgError, Attrs

# The names in cnnc.data.catalog.DATASETS, spelled here so that checking a spec does not import
# the data package (and NumPy); tests/train/test_config.py checks that the two agree.
DATASETS = ("fashion_mnist", "mnist")
LOSSES = {
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "mean_squared_error": "mean_squared_error",
    "mse": "mean_squared_error",
}
OPTIMIZERS = ("sgd", "adam", "nadam", "adamw")
# What the network learns to output: `labels`, the dataset's class labels (classification), or
# `input`, the input image itself (reconstruction: an autoencoder's pixel-wise target, which
# needs a pixel-wise loss and an output shaped like the input).
TARGETS = ("labels", "input")
PIXEL_WISE_LOSSES = ("mean_squared_error",)
DEFAULT_LEARNING_RATE = {"sgd": 0.01, "adam": 0.001, "nadam": 0.001,  # Keras' defaults
                         "adamw": 0.001}

def _optional_rate(name: str, value: Any) -> float | None:
    """A finite positive learning rate, or None (the optimizer's)."""
    if value is None:
        return None
    v = A.finite_real(name, value)
    if not v > 0:
        raise ArgError(f"Expected a strictly positive number. Received {name}={value!r}")
    return v


def _open_fraction(name: str, value: Any) -> float:
    """A number in (0, 1): a share of the run's steps that leaves some to each phase."""
    v = A.real(name, value)
    if not 0.0 < v < 1.0:
        raise ArgError(f"Expected a number in (0, 1). Received {name}={value!r}")
    return v


# Learning-rate schedules, per epoch (fractional within an epoch where the schedule is smooth):
#   constant                       lr
#   step         factor, every     lr * factor ** floor(epoch / every)
#   exponential  factor            lr * factor ** epoch
#   cosine       min_factor, warmup_epochs
#                                  linear warm-up, then lr * (min + (1-min)(1+cos(pi*progress))/2)
#   one_cycle    max_lr, pct_start, div_factor, final_div_factor, three_phase
#                                  per step, torch.optim.lr_scheduler.OneCycleLR's cosine form:
#                                  max_lr/div_factor up to max_lr over pct_start of the steps,
#                                  then down to max_lr/div_factor/final_div_factor
#                                  (cnnc/train/lr_schedule.py); max_lr defaults to lr;
#                                  cycle_momentum: momentum/beta_1 from max_momentum down to
#                                  base_momentum and back, inversely to the rate
SCHEDULES: dict[str, tuple[A.Arg, ...]] = {
    "constant": (),
    "step": (A.Arg("factor", A.positive_real, 0.5), A.Arg("every", A.positive_int, 5)),
    "exponential": (A.Arg("factor", A.positive_real, 0.9),),
    "cosine": (A.Arg("min_factor", A.unit_interval, 0.0),
               A.Arg("warmup_epochs", A.non_negative_int, 0)),
    "one_cycle": (A.Arg("max_lr", _optional_rate, None),
                  A.Arg("pct_start", _open_fraction, 0.3),
                  A.Arg("div_factor", A.positive_real, 25.0),
                  A.Arg("final_div_factor", A.positive_real, 1e4),
                  A.Arg("three_phase", A.boolean, False),
                  # Smith's momentum cycling, as OneCycleLR's cycle_momentum: sgd's momentum or
                  # adam/adamw's beta_1 runs inversely to the rate between these two.
                  A.Arg("cycle_momentum", A.boolean, True),
                  A.Arg("base_momentum", A.unit_interval, 0.85),
                  A.Arg("max_momentum", A.unit_interval, 0.95)),
}
# Augmentation of training images (never of validation or test images), in this order
# (cnnc/data/augment.py and cnnc/train/augmentation.py):
#   crop:    random crop back to the input size after padding `crop` pixels on every side
#            (torchvision's RandomCrop(size, padding=crop)); crop_padding zero or reflect
#   shift:   random translation by up to this many pixels each way, zero fill
#   flip:    random horizontal flip with probability 1/2; vflip: vertical, likewise
#   rotate, translate: a random rotation by up to `rotate` degrees either way and a shift by up
#            to `translate` of the width/height, bilinear, zero fill (torchvision RandomAffine)
#   erase:   probability of erasing one random rectangle (torchvision RandomErasing: area 2-33%,
#            aspect 0.3-3.3, value 0); cutout: a square of this side erased always (DeVries)
#   mixup, cutmix: Beta(alpha, alpha) mixing of each example with another of its batch, and of
#            their targets (both given: each example uses one of the two at random)
MAX_ROTATION = 180.0
# Test-time augmentation (cnnc/train/tta.py): validation and test outputs averaged over fixed
# views of each image; `flip` the image and its mirror, `flip_shift` those two each also shifted
# by one pixel each way (ten views). Never used in training.
TTA_MODES = ("none", "flip", "flip_shift")


def _probability(name: str, value: Any) -> float:
    v = A.real(name, value)
    if not 0.0 <= v <= 1.0:
        raise ArgError(f"Expected a probability in [0, 1]. Received {name}={value!r}")
    return v


def _degrees(name: str, value: Any) -> float:
    v = A.non_negative_real(name, value)
    if v > MAX_ROTATION:
        raise ArgError(f"Expected degrees in [0, {MAX_ROTATION:g}]. Received {name}={value!r}")
    return v


AUGMENT_ARGS = (
    A.Arg("shift", A.non_negative_int, 0), A.Arg("flip", A.boolean, False),
    A.Arg("vflip", A.boolean, False),
    A.Arg("crop", A.non_negative_int, 0),
    A.Arg("crop_padding", A.choice("zero", "reflect"), "zero"),
    A.Arg("rotate", _degrees, 0.0), A.Arg("translate", A.unit_interval, 0.0),
    A.Arg("erase", _probability, 0.0), A.Arg("cutout", A.non_negative_int, 0),
    A.Arg("mixup", A.non_negative_real, 0.0), A.Arg("cutmix", A.non_negative_real, 0.0),
)
DEFAULT_AUGMENT = {a.name: a.default for a in AUGMENT_ARGS}

# Datasets from the user's own files (cnnc/data/sources.py): `dataset` is then a path, and
#   image_fit:  how an image folder's images meet the input's size: resize (stretch, Keras'
#               default) or crop (centred crop to the input's aspect ratio, then resize)
#   bad_images: an image that cannot be read: refuse (stop, naming it) or skip (list it)
#   stream:     an image folder's training images kept in a temporary file, read per batch
IMAGE_FITS = ("resize", "crop")
BAD_IMAGES = ("refuse", "skip")
DATASET_SUFFIXES = (".npz", ".tar.gz", ".tgz", ".tar")


def is_dataset_path(value: str) -> bool:
    """True when a train.dataset value names a path rather than a dataset cnnc knows."""
    return ("/" in value or "\\" in value or value.startswith(("~", "."))
            or value.lower().endswith(DATASET_SUFFIXES))


def dataset_name_or_path(key: str, value: Any) -> str:
    """A dataset cnnc knows by name, or the path of the user's own (a folder or file): a value
    with a path separator, or a dataset file's suffix, is a path."""
    if isinstance(value, str) and value.lower() in DATASETS:
        return value.lower()
    if isinstance(value, str) and value.strip() and is_dataset_path(value):
        return value
    hint = did_you_mean(value, DATASETS) if isinstance(value, str) else None
    raise ArgError(f"Expected one of {', '.join(repr(d) for d in DATASETS)}, or the path of "
                   f"your own data (./images, data.npz, ...). Received {key}={value!r}."
                   + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "nadam"
    args: Attrs = field(default_factory=lambda: Attrs(learning_rate=0.001, beta_1=0.9,
                                                      beta_2=0.999, epsilon=1e-7,
                                                      weight_decay=0.0,
                                                      decay_bias_and_norm=False))

    @property
    def learning_rate(self) -> float:
        return self.args["learning_rate"]


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "fashion_mnist"
    epochs: int = 10
    batch_size: int = 32
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: str = "sparse_categorical_crossentropy"
    seed: int = 0
    validation_split: float = 0.0
    # A count of training examples held out instead of a fraction (the seed recipe's 5,000 of
    # 60,000 images, exactly); None: use validation_split. Giving both is an error.
    validation_size: int | None = None
    shuffle: bool = True
    schedule: Attrs = field(default_factory=lambda: Attrs(name="constant"))
    augment: Attrs = field(default_factory=lambda: Attrs(DEFAULT_AUGMENT))
    # The cross-entropies' label smoothing e: targets (1 - e) * one_hot + e / classes.
    label_smoothing: float = 0.0
    target: str = "labels"
    # With target input: the standard deviation of Gaussian noise added to the inputs (training,
    # validation and test), the target staying the clean image: a denoising autoencoder.
    noise: float = 0.0
    image_fit: str = "resize"
    bad_images: str = "refuse"
    stream: bool = False
    # Batches prepared ahead of the step on a worker thread (cnnc/train/prefetch.py); 0: none,
    # the loop prepares each itself; None: the default depth (2). Changes no result.
    prefetch: int | None = None
    # Keras' callbacks from the spec (cnnc/train/callbacks.py, built by spec_callbacks.py):
    # the checked arguments of CALLBACK_ARGS, None when the spec has none.
    early_stopping: Attrs | None = None
    reduce_lr_on_plateau: Attrs | None = None
    checkpoint: Attrs | None = None
    # Test-time augmentation of validation and test figures: one of TTA_MODES.
    tta: str = "none"

    @property
    def reconstruction(self) -> bool:
        """True when the target is the input image (an autoencoder), not the class label."""
        return self.target == "input"

    @property
    def soft_targets(self) -> bool:
        """True when training feeds rows of class weights (mixup, cutmix), not class ids."""
        return (self.loss in ("sparse_categorical_crossentropy", "categorical_crossentropy")
                and bool(self.augment.get("mixup") or self.augment.get("cutmix")))

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for YAML output), with optimizer arguments flattened beside its name."""
        d = asdict(self)
        d["optimizer"] = {"name": self.optimizer.name, **dict(self.optimizer.args)}
        d["schedule"] = dict(self.schedule)
        d["augment"] = dict(self.augment)
        for key in CALLBACK_ARGS:
            d[key] = None if getattr(self, key) is None else dict(getattr(self, key))
        return d


def _fail(path: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError(message, path=path, hint=hint)


def _check(path: str, check, key: str, value: Any) -> Any:
    try:
        return check(key, value)
    except ArgError as err:
        raise _fail(f"{path}.{key}", str(err)) from None


def _mapping(path: str, value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected {what}, got {value!r}")
    return value


def _named(path: str, value: Any, names, what: str) -> tuple[str, dict[str, Any]]:
    """`value` is a name or a mapping with `name`; returns (name, other keys)."""
    if isinstance(value, str):
        value = {"name": value}
    m = dict(_mapping(path, value, f"a {what} name or a mapping with 'name'"))
    name = m.pop("name", None)
    if not isinstance(name, str) or name.lower() not in names:
        raise _fail(f"{path}.name" if "name" in dict(value) else path,
                    f"unknown {what} {name!r}; expected one of {', '.join(names)}",
                    did_you_mean(str(name), names))
    return name.lower(), m


def _check_args(path: str, args: tuple[A.Arg, ...], given: Mapping[str, Any]) -> dict[str, Any]:
    known = {a.name: a for a in args}
    out = {}
    for key, value in given.items():
        if key not in known:
            raise _fail(f"{path}.{key}", f"unknown key '{key}'", did_you_mean(str(key), known)
                        or (f"expected one of {', '.join(known)}" if known else "it takes none"))
        out[key] = _check(path, known[key].check, key, value)
    for a in args:
        if a.name not in out and not a.required:
            out[a.name] = a.default
    return out


# Update-op arguments that a training pass sets per parameter, not the optimizer settings: l2,
# a layer's kernel_regularizer (cnnc/passes/regularize.py).
PASS_ARGS = ("l2",)


def parse_optimizer(value: Any, path: str = "train.optimizer") -> OptimizerConfig:
    from cnnc.ir.ops import OPS

    name, given = _named(path, value, OPTIMIZERS, "optimizer")
    args = tuple(a for a in OPS[f"{name}_update"].args if a.name not in PASS_ARGS)
    given.setdefault("learning_rate", DEFAULT_LEARNING_RATE[name])
    # Keras' base-optimizer options (global_clipnorm, ...): kept only where given.
    from cnnc.ir.optimizer_options import OPTIMIZER_OPTIONS, given_options

    checked = _check_args(path, (*args, *OPTIMIZER_OPTIONS), given)
    return OptimizerConfig(name, Attrs(given_options(checked, given)))


FIELDS = tuple(f.name for f in fields(TrainConfig))

MAX_PREFETCH = 8  # batches prepared ahead at most: each costs a batch of memory


def _tta_mode(name: str, value: Any) -> str:
    """A TTA_MODES name; `false` is none, and `true` asks which views it means."""
    if value is False or value is None:
        return "none"
    if isinstance(value, str) and value.lower() in TTA_MODES:
        return value.lower()
    hint = (did_you_mean(value, TTA_MODES) if isinstance(value, str)
            else "write tta: flip" if value is True else None)
    raise ArgError(f"Expected one of {', '.join(repr(m) for m in TTA_MODES)}. "
                   f"Received {name}={value!r}" + (f" ({hint})" if hint else ""))


def _prefetch_depth(name: str, value: Any) -> int:
    v = A.non_negative_int(name, value)
    if v > MAX_PREFETCH:
        raise ArgError(f"Expected at most {MAX_PREFETCH} batches prepared ahead (0: none). "
                       f"Received {name}={value!r}")
    return v

# The settings that are one checked value each.
SCALARS: dict[str, Callable[[str, Any], Any]] = {
    "dataset": dataset_name_or_path,
    "epochs": A.positive_int,
    "batch_size": A.positive_int,
    "seed": A.non_negative_int,
    "validation_split": A.unit_interval,
    "validation_size": A.non_negative_int,
    "shuffle": A.boolean,
    "target": A.choice(*TARGETS),
    "noise": A.non_negative_real,
    "image_fit": A.choice(*IMAGE_FITS),
    "bad_images": A.choice(*BAD_IMAGES),
    "stream": A.boolean,
    "label_smoothing": A.unit_interval,
    "prefetch": _prefetch_depth,
    "tta": _tta_mode,
}


# Keras' callbacks as training settings (cnnc/train/callbacks.py has their semantics):
#   early_stopping patience=3            EarlyStopping, monitor val_loss by default
#   reduce_lr_on_plateau factor=0.5      ReduceLROnPlateau
#   checkpoint best                      ModelCheckpoint(save_best_only) to best.safetensors
# Each is a mapping of these arguments (YAML `early_stopping: {patience: 3}`), `true` for the
# defaults; `checkpoint` is the name `best`, or a mapping with `name: best`.
_MONITOR = A.Arg("monitor", A.text, "val_loss")
_MODE = A.Arg("mode", A.choice("auto", "min", "max"), "auto")
CALLBACK_ARGS: dict[str, tuple[A.Arg, ...]] = {
    "early_stopping": (_MONITOR, _MODE, A.Arg("patience", A.non_negative_int, 0),
                       A.Arg("min_delta", A.non_negative_real, 0.0),
                       A.Arg("baseline", lambda k, v: None if v is None else A.finite_real(k, v),
                             None),
                       A.Arg("restore_best_weights", A.boolean, False)),
    "reduce_lr_on_plateau": (_MONITOR, _MODE, A.Arg("factor", _open_fraction, 0.1),
                             A.Arg("patience", A.non_negative_int, 10),
                             A.Arg("min_delta", A.non_negative_real, 1e-4),
                             A.Arg("cooldown", A.non_negative_int, 0),
                             A.Arg("min_lr", A.non_negative_real, 0.0)),
    "checkpoint": (_MONITOR, _MODE),
}
CHECKPOINTS = ("best",)


def parse_callback(key: str, value: Any, path: str) -> Attrs | None:
    """A callback setting's checked arguments; None for `false` (none)."""
    if value is False or value is None:
        return None
    if key == "checkpoint":
        name, given = _named(path, value, CHECKPOINTS, "checkpoint")
        return Attrs(name=name, **_check_args(path, CALLBACK_ARGS[key], given))
    if value is True:
        value = {}
    given = _mapping(path, value, f"a mapping of {key}'s arguments, such as "
                                  f"{{patience: 3}}, or true")
    return Attrs(_check_args(path, CALLBACK_ARGS[key], given))


def optimizer_keywords(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Python's flat form, `net.train(optimizer="adam", learning_rate=0.01)`: the keywords that
    are the optimizer's arguments (not training settings) moved into its mapping, as Keras'
    `Adam(learning_rate=0.01)` holds them. Other keys are left for the usual checks."""
    from cnnc.ir.ops import OPS
    from cnnc.ir.optimizer_options import OPTION_NAMES

    out = dict(settings)
    every = {a.name for name in OPTIMIZERS for a in OPS[f"{name}_update"].args} | OPTION_NAMES
    flat = {k: out.pop(k) for k in list(out) if k not in FIELDS and k in every}
    if not flat:
        return out
    optimizer = out.get("optimizer", OptimizerConfig().name)
    if isinstance(optimizer, OptimizerConfig):  # a compiled spec's: the keywords change it
        out["optimizer"] = {"name": optimizer.name, **dict(optimizer.args), **flat}
        return out
    optimizer = {"name": optimizer} if isinstance(optimizer, str) else dict(
        _mapping("train.optimizer", optimizer, "an optimizer name or a mapping with 'name'"))
    twice = sorted(set(flat) & set(optimizer))
    if twice:
        raise _fail(f"train.optimizer.{twice[0]}", f"'{twice[0]}' is given twice: as a keyword "
                    "and in the optimizer's mapping", "give it once")
    out["optimizer"] = {**optimizer, **flat}
    return out


def parse_loss(value: Any, path: str | None = "train.loss") -> str:
    """A loss's canonical name (mse is mean_squared_error); SpecError naming the choices."""
    if not isinstance(value, str) or value.lower() not in LOSSES:
        raise SpecError(f"unknown loss {value!r}; expected one of {', '.join(LOSSES)}",
                        path=path, hint=did_you_mean(str(value), LOSSES))
    return LOSSES[value.lower()]


def parse_train_config(value: Any, path: str = "train") -> TrainConfig:
    """Check a `train` mapping; unknown keys and bad values raise SpecError with the key path."""
    if isinstance(value, TrainConfig):
        return value
    m = _mapping(path, value, "a mapping of training settings")
    for key in m:
        if key not in FIELDS:
            raise _fail(f"{path}.{key}", f"unknown key '{key}'", did_you_mean(str(key), FIELDS)
                        or f"expected one of {', '.join(sorted(FIELDS))}")
    if "validation_size" in m and m.get("validation_split"):
        raise _fail(f"{path}.validation_size", "give validation_split or validation_size, "
                    "not both")
    changes: dict[str, Any] = {key: _check(path, check, key, m[key])
                               for key, check in SCALARS.items() if key in m}
    if "loss" in m:
        changes["loss"] = parse_loss(m["loss"], f"{path}.loss")
    if "optimizer" in m:
        changes["optimizer"] = parse_optimizer(m["optimizer"], f"{path}.optimizer")
    if "schedule" in m:
        name, given = _named(f"{path}.schedule", m["schedule"], tuple(SCHEDULES), "schedule")
        changes["schedule"] = Attrs(
            name=name, **_check_args(f"{path}.schedule", SCHEDULES[name], given))
    if "augment" in m:
        given = _mapping(f"{path}.augment", m["augment"],
                         "a mapping such as {shift: 2, flip: true}")
        changes["augment"] = Attrs(_check_args(f"{path}.augment", AUGMENT_ARGS, given))
    changes.update({key: parse_callback(key, m[key], f"{path}.{key}")
                    for key in CALLBACK_ARGS if key in m})
    config = TrainConfig().replace(**changes)
    check_target(config, path)
    if isinstance(m.get("schedule"), Mapping) and m["schedule"].get("cycle_momentum") is True:
        check_cycled_momentum(config, path)  # asked for, not only the default
    else:
        check_cycled_momentum(config, path, needed=False)
    return config


# The optimizer argument a one-cycle schedule's momentum cycling sets each step.
CYCLED_MOMENTUM = {"sgd": "momentum", "adam": "beta_1", "adamw": "beta_1"}


def cycles_momentum(config: TrainConfig) -> bool:
    """Whether the run cycles its optimizer's momentum: one_cycle with cycle_momentum (the
    default) and an optimizer with a momentum to cycle (sgd with momentum, adam, adamw)."""
    s, opt = config.schedule, config.optimizer
    return (s["name"] == "one_cycle" and s["cycle_momentum"] and opt.name in CYCLED_MOMENTUM
            and not (opt.name == "sgd" and not opt.args["momentum"]))


def check_cycled_momentum(config: TrainConfig, path: str = "train", needed: bool = True
                          ) -> None:
    """one_cycle's cycle_momentum needs an optimizer with a momentum to cycle: sgd with
    momentum (without, it keeps no velocity), adam or adamw (beta_1). Nadam's momentum schedule
    is a product over every step's beta_1, which a per-step value cannot follow. needed: the
    spec asks for cycling in so many words (the default leaves such optimizers uncycled)."""
    s, opt = config.schedule, config.optimizer
    if s["name"] != "one_cycle" or not s["cycle_momentum"]:
        return
    name = opt.name
    if needed and not cycles_momentum(config):
        what = "sgd without momentum" if name == "sgd" else name
        raise _fail(f"{path}.schedule.cycle_momentum",
                    f"cycle_momentum cycles the optimizer's momentum, and {what} has none "
                    "that cnnc can cycle",
                    "set cycle_momentum: false, or use sgd with momentum, adam or adamw")
    if s["base_momentum"] > s["max_momentum"]:
        raise _fail(f"{path}.schedule.base_momentum",
                    f"base_momentum {s['base_momentum']:g} is above max_momentum "
                    f"{s['max_momentum']:g}", "momentum runs from max_momentum down to "
                    "base_momentum while the rate rises")


def check_target(config: TrainConfig, path: str = "train") -> None:
    """A reconstruction target needs a pixel-wise loss: cross-entropy has no class to score."""
    if config.reconstruction and config.loss not in PIXEL_WISE_LOSSES:
        raise _fail(f"{path}.target", f"target input (reconstruction) needs a pixel-wise loss; "
                    f"the loss is {config.loss}", "add `loss mse` (mean_squared_error)")
    if config.label_smoothing and config.loss not in ("sparse_categorical_crossentropy",
                                                      "categorical_crossentropy"):
        raise _fail(f"{path}.label_smoothing", f"label smoothing applies to the cross-entropy "
                    f"losses; the loss is {config.loss}", "remove label_smoothing")
    mixing = [k for k in ("mixup", "cutmix") if config.augment.get(k)]
    if mixing and config.reconstruction:
        raise _fail(f"{path}.augment.{mixing[0]}", f"{mixing[0]} mixes class targets; target "
                    "input (reconstruction) has none", f"remove {mixing[0]}")
    if config.tta != "none" and config.reconstruction:
        raise _fail(f"{path}.tta", f"tta {config.tta} averages class outputs over mirrored and "
                    "shifted views; target input (reconstruction) outputs images, which would "
                    "need mapping back", "remove tta")
    if config.noise and not config.reconstruction:
        raise _fail(f"{path}.noise", "noise (a denoising autoencoder's) needs target input",
                    "add `target input`, or remove noise")
