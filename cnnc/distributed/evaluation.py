"""Evaluation split over ranks: each predicts its share of the examples, the counts are summed.

The loss sum, the example count and the confusion matrix travel in one float64 buffer (counts
stay exact far beyond any dataset), so every rank ends with the Evaluation one device computes,
up to the order in which the per-example losses are added.
"""

from __future__ import annotations

import numpy as np

from cnnc.distributed.comm import Comm
from cnnc.distributed.shares import shares
from cnnc.train.loop import EVAL_BATCH_SIZE, LabelledData
from cnnc.train.metrics import Evaluation, confusion_matrix, per_example_loss
from cnnc.train.tta import predict_averaged


def evaluate_sharded(model, data: LabelledData, loss: str, comm: Comm,
                     class_names: tuple[str, ...] = (),
                     batch_size: int = EVAL_BATCH_SIZE, tta: str = "none") -> Evaluation:
    """Loss, accuracy and confusion matrix of `model` on `data`, every rank computing a share
    (of outputs averaged over the `tta` views of each example, cnnc/train/tta.py)."""
    g = model.graph
    classes = max(int(g.shape_of(g.outputs[0])[-1]), len(class_names))
    lo, hi = shares(len(data), comm.size)[comm.rank]
    buf = np.zeros(2 + classes * classes, np.float64)
    if hi > lo:
        pred = predict_averaged(model, data.x[lo:hi], tta, batch_size)
        labels = np.asarray(data.labels[lo:hi])
        buf[0] = per_example_loss(loss, pred, labels).sum()
        buf[1] = hi - lo
        buf[2:] = confusion_matrix(labels, np.argmax(pred, axis=1), classes).ravel()
    comm.allreduce_sum(buf)
    count = round(float(buf[1]))
    confusion = np.rint(buf[2:]).astype(np.int64).reshape(classes, classes)
    correct = int(np.trace(confusion))
    return Evaluation(loss=float(buf[0] / count) if count else float("nan"),
                      accuracy=correct / count if count else float("nan"), correct=correct,
                      count=count, confusion=confusion, class_names=tuple(class_names), tta=tta)
