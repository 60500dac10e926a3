"""Metrics of training and evaluation: loss from predictions, accuracy, the confusion matrix.

Training losses come from the training graph (Model.train_step). Evaluation runs the inference
graph and computes the loss here from its outputs, with Keras' formulas: cross-entropy on
probabilities normalised to sum 1 and clipped to [CLIP_EPSILON, 1 - CLIP_EPSILON] (the
`cross_entropy` op's contract in cnnc/ir/losses.py), mean squared error on one-hot targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnnc.errors import InputError
from cnnc.ir.losses import CLIP_EPSILON


def targets_for(loss: str, labels: np.ndarray, classes: int) -> np.ndarray:
    """What train_step takes as y for class-index `labels` under `loss`."""
    labels = np.asarray(labels)
    if loss == "sparse_categorical_crossentropy":
        return labels.astype(np.int32)
    return one_hot(labels, classes)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((labels.shape[0], classes), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def per_example_loss(loss: str, pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The loss of each example (float64) from the model's outputs and class-index labels."""
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim != 2:
        raise InputError(f"expected predictions of shape (N, classes), got {pred.shape}")
    labels = np.asarray(labels)
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        total = pred.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = pred / total
        p = np.clip(p, CLIP_EPSILON, 1.0 - CLIP_EPSILON)
        return -np.log(p[np.arange(pred.shape[0]), labels])
    if loss == "mean_squared_error":
        return ((pred - one_hot(labels, pred.shape[1])) ** 2).mean(axis=1)
    raise InputError(f"no evaluation formula for loss '{loss}'")


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts (classes, classes): row = true class, column = predicted class."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(predicted)), 1)
    return m


def count_correct(pred: np.ndarray, labels: np.ndarray) -> int:
    """How many rows of `pred` have their largest value at the label's class."""
    return int(np.count_nonzero(np.argmax(pred, axis=1) == np.asarray(labels)))


@dataclass
class RunningMetrics:
    """Loss and accuracy accumulated over batches, each batch weighted by its size (Keras)."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, loss: float, pred: np.ndarray, labels: np.ndarray) -> None:
        self.add_counts(loss, count_correct(pred, labels), int(labels.shape[0]))

    def add_counts(self, loss: float, correct: int, n: int) -> None:
        """A batch of n examples with mean loss `loss`, `correct` of them predicted right."""
        self.loss_sum += float(loss) * n
        self.correct += int(correct)
        self.count += int(n)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    def state(self) -> dict[str, float]:
        return {"loss_sum": self.loss_sum, "correct": self.correct, "count": self.count}

    @classmethod
    def from_state(cls, state: dict) -> RunningMetrics:
        return cls(float(state["loss_sum"]), int(state["correct"]), int(state["count"]))


@dataclass(frozen=True)
class Evaluation:
    """Loss, accuracy and confusion matrix of a model on one labelled set."""

    loss: float
    accuracy: float
    correct: int
    count: int
    confusion: np.ndarray
    class_names: tuple[str, ...] = ()
    # The test-time augmentation the outputs were averaged over (cnnc/train/tta.py).
    tta: str = "none"

    def per_class_accuracy(self) -> list[float]:
        rows = self.confusion.sum(axis=1)
        return [float(self.confusion[i, i] / rows[i]) if rows[i] else float("nan")
                for i in range(self.confusion.shape[0])]

    def show_confusion(self, title: str = "Confusion matrix"):
        """The confusion matrix with counts and row-normalised colour: a matplotlib Figure."""
        from cnnc.viz.confusion import confusion_figure

        return confusion_figure(self.confusion, self.class_names, title=title)

    def to_dict(self) -> dict:
        names = list(self.class_names) or [str(i) for i in range(self.confusion.shape[0])]
        out = {
            "loss": self.loss, "accuracy": self.accuracy, "correct": self.correct,
            "count": self.count, "class_names": names,
            "confusion_matrix": self.confusion.tolist(),
            # None where a class has no examples (NaN is not JSON).
            "per_class_accuracy": {n: (None if math.isnan(a) else a)
                                   for n, a in zip(names, self.per_class_accuracy())},
        }
        if self.tta != "none":
            out["tta"] = self.tta
        return out


def evaluation_from_predictions(loss: str, pred: np.ndarray, labels: np.ndarray,
                                class_names: tuple[str, ...] = (), tta: str = "none"
                                ) -> Evaluation:
    """tta: the test-time augmentation `pred` was averaged over, recorded with the figures."""
    labels = np.asarray(labels)
    classes = max(pred.shape[1], len(class_names))
    predicted = np.argmax(pred, axis=1)
    correct = int(np.count_nonzero(predicted == labels))
    count = int(labels.shape[0])
    return Evaluation(
        loss=float(per_example_loss(loss, pred, labels).mean()),
        accuracy=correct / count, correct=correct, count=count,
        confusion=confusion_matrix(labels, predicted, classes),
        class_names=tuple(class_names), tta=tta,
    )


def format_confusion(confusion: np.ndarray, class_names: tuple[str, ...] = ()) -> str:
    """A text table: one row per true class, one column per predicted class."""
    k = confusion.shape[0]
    names = list(class_names) or [str(i) for i in range(k)]
    corner = "true \\ predicted"
    label_w = max(len(corner), *(len(n) for n in names))
    cell_w = max(5, len(str(int(confusion.max()))) + 1)
    lines = [f"{corner:<{label_w}}" + "".join(f"{i:>{cell_w}}" for i in range(k))]
    for i in range(k):
        cells = "".join(f"{int(v):>{cell_w}}" for v in confusion[i])
        lines.append(f"{names[i]:<{label_w}}{cells}")
    lines.append("columns: " + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    return "\n".join(lines)


# ---------------------------------------------------------------- reconstruction (target input)


def psnr(mse: float, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of a mean squared error on images in [0, peak]."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


@dataclass(frozen=True)
class ReconstructionEvaluation:
    """An autoencoder's figures on one set: the mean squared error over every pixel (the loss)
    and the PSNR of that error; no accuracy, since there is no class to get right."""

    loss: float
    count: int

    @property
    def mse(self) -> float:
        return self.loss

    @property
    def psnr(self) -> float:
        return psnr(self.loss)

    def text(self) -> str:
        """One line, as `cnnc run` and `cnnc eval` print it."""
        return f"mse {self.loss:.5f}  psnr {self.psnr:.2f} dB ({self.count} images)"

    def to_dict(self) -> dict:
        return {"loss": self.loss, "mse": self.loss,
                "psnr_db": None if math.isinf(self.psnr) else self.psnr, "count": self.count}


def reconstruction_from_predictions(pred: np.ndarray, x: np.ndarray) -> ReconstructionEvaluation:
    """The figures of reconstructions `pred` of the images `x` (same shape), in float64."""
    pred, x = np.asarray(pred, dtype=np.float64), np.asarray(x, dtype=np.float64)
    if pred.shape != x.shape:
        raise InputError(f"expected reconstructions of shape {x.shape}, got {pred.shape}")
    return ReconstructionEvaluation(loss=float(((pred - x) ** 2).mean()), count=int(x.shape[0]))
