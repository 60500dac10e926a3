"""Names of the values the training passes add: the one place they are spelled.

Layer names cannot contain '/', and parameters are '<layer>/<suffix>'; every value the training
passes add contains a '/' and a word no parameter ends with, so none can collide with the
spec's names.

    train/target            the target input (int32 class ids for sparse losses)
    train/loss              the scalar loss (an output of the training graph)
    train/loss/data         the loss before kernel regularizers' penalties, when there are any
    train/loss/l2/<param>   the loss so far plus that kernel's L2 penalty (the last is train/loss)
    <layer>                 forward values in training mode keep their layer names
    <layer>/logits          the pre-softmax value when the output layer's softmax is split off
    <layer>/preact          a layer's linear part, when its activation's gradient reads its input
    <layer>/stats           batch-norm batch statistics: row 0 mean, row 1 biased variance
    grad/<value>            d loss / d value, for a layer output (or an input, if asked)
    grad/<param>            d loss / d parameter, e.g. grad/dense/kernel
    grad/<value>/preact     d loss / d the pre-activation of a conv2d or dense with activation
    grad/<value>/rows       zero_padding2d's output gradient with the padded rows cut off
    grad/<name>/<k>         the k-th contribution when several consumers add up to grad/<name>
    <grad value>/sums       batch norm's gradient sums, exchanged by data-parallel ranks
    slot/<param>/velocity   SGD momentum slot
    slot/<param>/m, /v      Adam and Nadam moment slots
    update/<state>          the update op writing a parameter or moving statistic
"""

from __future__ import annotations

TARGET = "train/target"
LOSS = "train/loss"
DATA_LOSS = "train/loss/data"  # the loss before kernel regularizers' penalties (regularize.py)
GRAD_PREFIX = "grad/"
SLOT_PREFIX = "slot/"
UPDATE_PREFIX = "update/"


def grad(name: str) -> str:
    """The gradient of a value or parameter, as fetched by the cross-backend verifier."""
    return f"{GRAD_PREFIX}{name}"


def grad_part(name: str, k: int) -> str:
    return f"{grad(name)}/{k}"


def preact_grad(layer: str) -> str:
    return f"{grad(layer)}/preact"


def preactivation(layer: str) -> str:
    """The linear part of a layer split from its activation (training_mode.py); its gradient
    is then grad/<layer>/preact, as `preact_grad` names it for a fused layer."""
    return f"{layer}/preact"


def logits(layer: str) -> str:
    return f"{layer}/logits"


def stats(layer: str) -> str:
    return f"{layer}/stats"


def batch_sums(grad_value: str) -> str:
    return f"{grad_value}/sums"


def slot(param: str, kind: str) -> str:
    return f"{SLOT_PREFIX}{param}/{kind}"


def update(state: str) -> str:
    return f"{UPDATE_PREFIX}{state}"


def is_gradient(name: str) -> bool:
    return name.startswith(GRAD_PREFIX)


def penalty(param: str) -> str:
    """The loss with the L2 penalties up to `param`'s added (the last one is LOSS)."""
    return f"{LOSS}/l2/{param}"
