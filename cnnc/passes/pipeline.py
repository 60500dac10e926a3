"""The pass pipelines: inference and training, each one list of small named graph->graph passes.

`run_pipeline` verifies the graph after every pass when asked (tests) or in debug mode
(CNNC_DEBUG=1), naming the pass that broke it, and can hand the graph after every pass to a
`dump` callback (`cnnc compile --dump-ir`). The final graph is always verified: it is cheap.

    inference:  remove_dropout -> fold_batchnorm -> fuse_residual -> fuse_activation
                -> fuse_merge_activation -> fold_gate -> fuse_shuffle -> fuse_depthwise_pointwise
                -> fuse_depthwise_layer_norm -> fuse_pointwise_depthwise -> fuse_squeeze_excite -> fuse_pointwise_avgpool -> fuse_avgpool_dense
                -> fuse_dense_pair -> fuse_conv_maxpool -> fuse_conv_concat -> fuse_pool_concat
                -> dead_code_elimination
    training:   training_mode -> attach_loss -> backward -> regularize -> optimizer
                -> fuse_batchnorm_activation -> share_batchnorm_sums -> share_layer_norm_sums
                -> fuse_batchnorm_act_grad -> fuse_activation_grad -> fuse_excite_grad
                -> dead_code_elimination
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from cnnc import settings
from cnnc.ir.graph import Graph, verify
from cnnc.ir.train_config import OptimizerConfig, TrainConfig, check_target
from cnnc.passes.autodiff import backward
from cnnc.passes.clip_gradients import clip_gradients
from cnnc.passes.ema import average_weights
from cnnc.passes.fold_batchnorm import fold_batchnorm
from cnnc.passes.fold_gate import fold_gate
from cnnc.passes.fuse_act_grad import fuse_activation_grad
from cnnc.passes.fuse_avgpool_dense import fuse_avgpool_dense
from cnnc.passes.fuse_bn_act_grad import fuse_batchnorm_act_grad
from cnnc.passes.fuse_conv_concat import fuse_conv_concat
from cnnc.passes.fuse_conv_maxpool import fuse_conv_maxpool
from cnnc.passes.fuse_dense_pair import fuse_dense_pair
from cnnc.passes.fuse_depthwise_layer_norm import fuse_depthwise_layer_norm
from cnnc.passes.fuse_depthwise_pointwise import fuse_depthwise_pointwise
from cnnc.passes.fuse_excite_grad import fuse_excite_grad
from cnnc.passes.fuse_merge import fuse_merge_activation
from cnnc.passes.fuse_pointwise_avgpool import fuse_pointwise_avgpool
from cnnc.passes.fuse_pointwise_depthwise import fuse_pointwise_depthwise
from cnnc.passes.fuse_pool_concat import fuse_pool_concat
from cnnc.passes.fuse_residual import fuse_residual
from cnnc.passes.fuse_shuffle import fuse_shuffle
from cnnc.passes.fuse_squeeze_excite import fuse_squeeze_excite
from cnnc.passes.fuse_training import fuse_batchnorm_activation
from cnnc.passes.loss import attach_loss, check_reconstruction
from cnnc.passes.optimizer import optimizer_updates
from cnnc.passes.regularize import add_penalties
from cnnc.passes.share_bn_sums import share_batchnorm_sums
from cnnc.passes.share_ln_sums import share_layer_norm_sums
from cnnc.passes.simplify import dead_code_elimination, fuse_activation, remove_dropout
from cnnc.passes.training_mode import training_mode

Dump = Callable[[str, Graph], None]


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph], Graph]
    why: str


def text_dump(stream: TextIO) -> Dump:
    """A `dump` that writes each graph as text (cnnc.ir.printer) under the pass's name."""
    def dump(pass_name: str, graph: Graph) -> None:
        from cnnc.ir.printer import format_graph

        stream.write(f"--- after {pass_name} ---\n{format_graph(graph, state=True)}\n")
    return dump


def inference_pipeline() -> list[Pass]:
    return [
        Pass("remove_dropout", remove_dropout, "dropout is the identity at inference"),
        Pass("fold_batchnorm", fold_batchnorm,
             "conv2d/dense + batchnorm as one node: batch norm folded into its weights"),
        Pass("fuse_residual", fuse_residual,
             "conv2d/dense + add as one node: the residual added as the layer stores"),
        Pass("fuse_activation", fuse_activation,
             "conv2d/dense + activation as one node: no intermediate tensor"),
        Pass("fuse_merge_activation", fuse_merge_activation,
             "merge (x * gate, add, ...) + activation as one node: one pass over memory"),
        Pass("fold_gate", fold_gate,
             "x * gate + the convolution reading it as one node: the scale as it loads"),
        Pass("fuse_shuffle", fuse_shuffle,
             "concatenate + channel_shuffle (+ channel_slice) as one gather: nothing copied "
             "twice"),
        Pass("fuse_depthwise_pointwise", fuse_depthwise_pointwise,
             "depthwise conv + the 1x1 conv reading it as one node: the depthwise map never "
             "written"),
        Pass("fuse_depthwise_layer_norm", fuse_depthwise_layer_norm,
             "depthwise conv + the layer norm over its channels as one node: the depthwise "
             "map never written"),
        Pass("fuse_pointwise_depthwise", fuse_pointwise_depthwise,
             "1x1 conv + the depthwise conv reading it as one node: the expanded map never "
             "written"),
        Pass("fuse_squeeze_excite", fuse_squeeze_excite,
             "global pooling + the two layers on its pooled vector as one node: a "
             "squeeze-excite gate in one launch"),
        Pass("fuse_pointwise_avgpool", fuse_pointwise_avgpool,
             "1x1 conv + the global average pooling reading it as one node: the map never "
             "written"),
        Pass("fuse_avgpool_dense", fuse_avgpool_dense,
             "global average pooling + the dense layer reading it as one node: a classifier's "
             "head in one launch"),
        Pass("fuse_dense_pair", fuse_dense_pair,
             "dense layer + the softmax head reading it as one node: a classifier's last two "
             "layers in one launch"),
        Pass("fuse_conv_maxpool", fuse_conv_maxpool,
             "conv + the 2x2 max pooling reading it as one node: only the pooled map written"),
        Pass("fuse_conv_concat", fuse_conv_concat,
             "conv + the concatenation (and nearest upsampling) it alone reads as one node: "
             "the parts read where they lie"),
        Pass("fuse_pool_concat", fuse_pool_concat,
             "max pooling + the channel concatenation it alone reads as one node: the "
             "concatenated map never written"),
        Pass("dead_code_elimination", dead_code_elimination,
             "nothing computed that no output needs"),
    ]


def training_pipeline(
    *, loss: str, optimizer: OptimizerConfig | None, seed: int, wrt_inputs: bool = False,
    label_smoothing: float = 0.0, soft_targets: bool = False,
) -> list[Pass]:
    """optimizer None: loss and gradients only (gradient checks, cross-backend comparisons);
    label_smoothing and soft_targets: attach_loss's (TrainConfig's)."""
    passes = [
        Pass("training_mode", partial(training_mode, seed=seed),
             "dropout masks and batch statistics, moving-average updates"),
        Pass("attach_loss", partial(attach_loss, loss=loss, label_smoothing=label_smoothing,
                                    soft_targets=soft_targets),
             "the loss on the output, fused with a final softmax"),
        Pass("backward", partial(backward, wrt_inputs=wrt_inputs),
             "gradients of the loss by vector-Jacobian rules"),
    ]
    if optimizer is not None:
        passes.append(Pass("regularize", add_penalties,
                           "kernel regularizers' L2 penalties added to the reported loss"))
        passes.append(Pass("optimizer", partial(optimizer_updates, optimizer=optimizer),
                           "one optimizer update per trainable parameter"))
        passes.append(Pass("clip_gradients", partial(
            clip_gradients, max_norm=optimizer.args.get("global_clipnorm")),
            "global_clipnorm: the updates read gradients scaled to a global norm at most that"))
        ema = optimizer.args.get("ema_momentum", 0.99) if optimizer.args.get("use_ema") else None
        passes.append(Pass("average_weights", partial(average_weights, momentum=ema),
                           "use_ema: a moving average of each parameter after its update"))
    passes.append(Pass("fuse_batchnorm_activation", fuse_batchnorm_activation,
                       "batch norm and the activation after it in one pass over memory"))
    passes.append(Pass("share_batchnorm_sums", share_batchnorm_sums,
                       "batch norm's batch sums once for its input's, gamma's and beta's "
                       "gradients"))
    passes.append(Pass("share_layer_norm_sums", share_layer_norm_sums,
                       "layer norm's gamma and beta gradients from one pass over x and dy"))
    passes.append(Pass("fuse_batchnorm_act_grad", fuse_batchnorm_act_grad,
                       "batch norm and its activation one node: the activation's derivative "
                       "inside batch norm's gradient"))
    passes.append(Pass("fuse_activation_grad", fuse_activation_grad,
                       "an activation's derivative applied as its dy is stored"))
    passes.append(Pass("fuse_excite_grad", fuse_excite_grad,
                       "squeeze-excite's input gradient (product and pooling) in one pass"))
    passes.append(Pass("dead_code_elimination", dead_code_elimination,
                       "nothing computed that neither the loss nor an update needs"))
    return passes


def loss_pipeline(*, loss: str, seed: int, label_smoothing: float = 0.0,
                  soft_targets: bool = False) -> list[Pass]:
    """The training forward pass and its loss, without gradients or updates."""
    return [p for p in training_pipeline(loss=loss, optimizer=None, seed=seed,
                                         label_smoothing=label_smoothing,
                                         soft_targets=soft_targets)
            if p.name != "backward"]


def run_pipeline(graph: Graph, passes: Sequence[Pass], *, check: bool | None = None,
                 dump: Dump | None = None) -> Graph:
    check = settings.debug() if check is None else check
    if check:
        verify(graph)
    if dump is not None:
        dump("input", graph)
    for p in passes:
        graph = p.run(graph)
        if check:
            verify(graph, after=p.name)
        if dump is not None:
            dump(p.name, graph)
    if not check and passes:
        verify(graph, after=passes[-1].name)
    return graph


def inference_graph(graph: Graph, *, check: bool | None = None,
                    dump: Dump | None = None) -> Graph:
    return run_pipeline(graph, inference_pipeline(), check=check, dump=dump)


def _check_target(graph: Graph, config: TrainConfig) -> None:
    """A reconstruction's loss and output shape, checked before any pass runs."""
    if config.reconstruction:
        check_target(config)
        check_reconstruction(graph)


def training_graph(
    graph: Graph,
    config: TrainConfig | None = None,
    *,
    seed: int | None = None,
    optimizer: bool = True,
    wrt_inputs: bool = False,
    check: bool | None = None,
    dump: Dump | None = None,
) -> Graph:
    """The training graph of a forward graph. config: loss and optimizer (default: the graph's
    train section, else TrainConfig()); seed: dropout seeds (default config.seed);
    optimizer=False leaves out the updates of trainable parameters."""
    config = config or graph.train or TrainConfig()
    _check_target(graph, config)
    passes = training_pipeline(
        loss=config.loss, optimizer=config.optimizer if optimizer else None,
        seed=config.seed if seed is None else seed, wrt_inputs=wrt_inputs,
        label_smoothing=config.label_smoothing, soft_targets=config.soft_targets)
    return run_pipeline(graph, passes, check=check, dump=dump)


def loss_graph(graph: Graph, config: TrainConfig | None = None, *, seed: int | None = None,
               check: bool | None = None) -> Graph:
    """The training graph's forward part and loss only (finite differences need no more)."""
    config = config or graph.train or TrainConfig()
    _check_target(graph, config)
    passes = loss_pipeline(loss=config.loss, seed=config.seed if seed is None else seed,
                           label_smoothing=config.label_smoothing,
                           soft_targets=config.soft_targets)
    return run_pipeline(graph, passes, check=check)
