"""`cnnc eval` and `cnnc predict` underneath: a spec compiled with saved weights, then inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnc.errors import InputError, WeightsError
from cnnc.ir.train_config import TrainConfig, check_target, parse_train_config
from cnnc.train.fit import input_shape
from cnnc.train.loop import EVAL_BATCH_SIZE, LabelledData, evaluate_arrays
from cnnc.train.metrics import Evaluation, ReconstructionEvaluation, format_confusion
from cnnc.train.session import DEFAULT_BACKEND


def load_trained(spec: str, weights: str | None, backend: str, device: str | None):
    """The spec compiled for `backend` with `weights` loaded (None: the weights the spec holds,
    as an .onnx model does)."""
    from cnnc.frontend.spec import load_spec
    from cnnc.model import compile_model

    if weights is not None and not Path(weights).is_file():
        raise WeightsError(f"{weights}: no such weights file",
                           hint="pass the weights.safetensors of a run folder")
    graph = load_spec(spec)
    if weights is None and graph.given_weights is None:
        raise WeightsError(f"{spec} holds no weights: give --weights FILE",
                           hint="pass the weights.safetensors of a run folder")
    model = compile_model(graph, backend=backend, device=device)
    if weights is not None:
        model.load_weights(weights)
    return model


SPLITS = ("test", "validation")


@dataclass
class EvalResult:
    spec: str
    weights: str | None
    dataset: str
    evaluation: Evaluation | ReconstructionEvaluation
    split: str = "test"

    def report(self) -> str:
        ev = self.evaluation
        label = f"{self.split:<9} "  # "test      " as before; "validation " keeps a space
        if isinstance(ev, ReconstructionEvaluation):
            return "\n".join([f"spec      {self.spec}",
                              f"weights   {self.weights or 'those in ' + self.spec}",
                              f"{label}{self.dataset}: {ev.text()}"])
        tta = f"  (test-time augmentation {ev.tta})" if ev.tta != "none" else ""
        return "\n".join([
            f"spec      {self.spec}",
            f"weights   {self.weights or 'those in ' + self.spec}",
            (f"{label}{self.dataset}: accuracy {ev.accuracy:.4f} ({ev.correct}/{ev.count})  "
             f"loss {ev.loss:.4f}{tta}"),
            format_confusion(ev.confusion, ev.class_names),
        ])


def evaluate_spec(spec: str, weights: str | None, *, backend: str = DEFAULT_BACKEND,
                  device: str | None = None, data_dir: str | None = None,
                  batch_size: int = EVAL_BATCH_SIZE, limit: int | None = None,
                  tta: str | None = None, split: str = "test") -> EvalResult:
    """tta: the test-time augmentation (None: the spec's train.tta); split: `test`, or the
    `validation` examples the spec's run held out (the split that may choose between settings
    such as tta without looking at the test figures)."""
    from cnnc.data.dataset import load_configured, raw_pixels, to_inputs
    from cnnc.train.fit import prepare_data

    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    model = load_trained(spec, weights, backend, device)
    config: TrainConfig = model.train_config
    if tta is not None:
        config = config.replace(tta=parse_train_config({"tta": tta}).tta)
    check_target(config)
    raw = raw_pixels(model.graph)
    dataset = load_configured(config, data_dir, input_shape(model), raw=raw)
    if split == "validation":
        # limit=1: the training part is not wanted, only the held-out part, which stays whole.
        held = prepare_data(config, dataset, input_shape(model), limit=1, raw=raw).validation
        if held is None:
            raise InputError(f"{spec} holds out no validation examples",
                             hint="its train section sets no validation_size or "
                                  "validation_split, and the dataset has no val/ folder")
        images, labels = held.x, held.labels
    else:
        images, labels = dataset.test.images, dataset.test.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = images if split == "validation" else to_inputs(images, input_shape(model), raw)
    ev = evaluate_arrays(model, LabelledData(x, labels), config.loss, dataset.class_names,
                         batch_size=batch_size, target=config.target, noise=config.noise,
                         seed=config.seed, tta=config.tta)
    return EvalResult(spec, weights, config.dataset, ev, split)


def top_classes(probs: np.ndarray, k: int = 3) -> list[list[tuple[int, float]]]:
    """For each row, the k most likely (class, probability) pairs, most likely first."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(int(c), float(p[c])) for c in row] for p, row in zip(probs, order)]
