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
OPTIMIZERS = ("sgd", "adam", "nadam")
# What the network learns to output: `labels`, the dataset's class labels (classification), or
# `input`, the input image itself (reconstruction: an autoencoder's pixel-wise target, which
# needs a pixel-wise loss and an output shaped like the input).
TARGETS = ("labels", "input")
PIXEL_WISE_LOSSES = ("mean_squared_error",)
DEFAULT_LEARNING_RATE = {"sgd": 0.01, "adam": 0.001, "nadam": 0.001}  # Keras' defaults

# Learning-rate schedules, per epoch (fractional within an epoch where the schedule is smooth):
#   constant                       lr
#   step         factor, every     lr * factor ** floor(epoch / every)
#   exponential  factor            lr * factor ** epoch
#   cosine       min_factor, warmup_epochs
#                                  linear warm-up, then lr * (min + (1-min)(1+cos(pi*progress))/2)
SCHEDULES: dict[str, tuple[A.Arg, ...]] = {
    "constant": (),
    "step": (A.Arg("factor", A.positive_real, 0.5), A.Arg("every", A.positive_int, 5)),
    "exponential": (A.Arg("factor", A.positive_real, 0.9),),
    "cosine": (A.Arg("min_factor", A.unit_interval, 0.0),
               A.Arg("warmup_epochs", A.non_negative_int, 0)),
}
# Augmentation of training images (never of validation or test images):
#   shift: random translation by up to this many pixels each way, zero fill
#   flip:  random horizontal flip with probability 1/2
AUGMENT_ARGS = (A.Arg("shift", A.non_negative_int, 0), A.Arg("flip", A.boolean, False))


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "nadam"
    args: Attrs = field(default_factory=lambda: Attrs(learning_rate=0.001, beta_1=0.9,
                                                      beta_2=0.999, epsilon=1e-7))

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
    augment: Attrs = field(default_factory=lambda: Attrs(shift=0, flip=False))
    target: str = "labels"
    # With target input: the standard deviation of Gaussian noise added to the inputs (training,
    # validation and test), the target staying the clean image: a denoising autoencoder.
    noise: float = 0.0

    @property
    def reconstruction(self) -> bool:
        """True when the target is the input image (an autoencoder), not the class label."""
        return self.target == "input"

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for YAML output), with optimizer arguments flattened beside its name."""
        d = asdict(self)
        d["optimizer"] = {"name": self.optimizer.name, **dict(self.optimizer.args)}
        d["schedule"] = dict(self.schedule)
        d["augment"] = dict(self.augment)
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


def parse_optimizer(value: Any, path: str = "train.optimizer") -> OptimizerConfig:
    from cnnc.ir.ops import OPS

    name, given = _named(path, value, OPTIMIZERS, "optimizer")
    args = OPS[f"{name}_update"].args
    given.setdefault("learning_rate", DEFAULT_LEARNING_RATE[name])
    # Keras' base-optimizer options (global_clipnorm, ...): kept only where given.
    from cnnc.ir.optimizer_options import OPTIMIZER_OPTIONS, given_options

    checked = _check_args(path, (*args, *OPTIMIZER_OPTIONS), given)
    return OptimizerConfig(name, Attrs(given_options(checked, given)))


FIELDS = tuple(f.name for f in fields(TrainConfig))

# The settings that are one checked value each.
SCALARS: dict[str, Callable[[str, Any], Any]] = {
    "dataset": A.choice(*DATASETS),
    "epochs": A.positive_int,
    "batch_size": A.positive_int,
    "seed": A.non_negative_int,
    "validation_split": A.unit_interval,
    "validation_size": A.non_negative_int,
    "shuffle": A.boolean,
    "target": A.choice(*TARGETS),
    "noise": A.non_negative_real,
}


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
    config = TrainConfig().replace(**changes)
    check_target(config, path)
    return config


def check_target(config: TrainConfig, path: str = "train") -> None:
    """A reconstruction target needs a pixel-wise loss: cross-entropy has no class to score."""
    if config.reconstruction and config.loss not in PIXEL_WISE_LOSSES:
        raise _fail(f"{path}.target", f"target input (reconstruction) needs a pixel-wise loss; "
                    f"the loss is {config.loss}", "add `loss mse` (mean_squared_error)")
    if config.noise and not config.reconstruction:
        raise _fail(f"{path}.noise", "noise (a denoising autoencoder's) needs target input",
                    "add `target input`, or remove noise")
