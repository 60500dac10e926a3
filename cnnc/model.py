"""The compiled model: what users hold after cnnc.compile, the same for every backend.

The Model owns everything that is not backend-specific: the pass pipelines, initialisation,
input checks, batching, the step counter, weights files. A backend only stores state tensors and
runs graphs compiled for one batch size (cnnc/backends/base.py); executables are cached per
(graph, batch size), so the last partial batch of `predict` compiles its own once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from cnnc import weights as wfile
from cnnc.backends.base import Backend, Executable, get_backend
from cnnc.backends.step_figures import Record, StepFigures
from cnnc.errors import CnncError, InputError, TrainingDiverged
from cnnc.initializers import initial_values
from cnnc.input_limits import size_text
from cnnc.inputs import FeedChecks, all_finite, check_targets
from cnnc.ir.graph import Graph
from cnnc.ir.train_config import (
    OptimizerConfig,
    TrainConfig,
    parse_loss,
    parse_optimizer,
    parse_train_config,
)
from cnnc.passes import names
from cnnc.passes.pipeline import inference_graph, training_graph

DTYPES = ("float32", "float64")
COMPILE_OPTIONS = ("seed", "dtype", "loss", "optimizer", "learning_rate", "tune")  # compile_model's keyword arguments
STEP = "step"  # the step counter's key in get_training_state()


class Model:
    """A network compiled for a backend. Build it with `cnnc.compile` (compile_model).

    Attributes: `graph` (inference graph after the inference pipeline), `spec_graph` (the graph
    as loaded), `train_config`, `backend`, `step` (training steps taken), `seed`, `dtype`.
    Inputs to `fit`, `evaluate`, `predict` and `train_step` pass the same checks
    (cnnc/inputs.py): floating point (uint8 images are rejected, not silently scaled; unless
    only `rescaling` layers read the input, which scale it themselves), shape
    (N, *input shape), finite values; sparse labels are integer class ids.
    """

    def __init__(self, spec_graph: Graph, backend: Backend, *, seed: int, dtype: str,
                 train_config: TrainConfig):
        self.spec_graph = spec_graph
        self.graph = inference_graph(spec_graph)
        self.train_config = train_config
        self.backend = backend
        self.seed = seed
        self.dtype = dtype
        self._host_dtype = np.dtype(dtype)  # predict's outputs' (compared per call)
        self.step = 0
        self.stop_training = False  # Keras' flag: a callback sets it to end fit after the epoch
        self._training_graph: Graph | None = None
        self._class_names: tuple[str, ...] | None = None
        self._executables: dict[tuple[str, int], Executable] = {}
        self._feed_checks: dict[int, FeedChecks] = {}  # by id(graph): Model._feeds
        self._chunks: dict[int, int] = {}  # by batch: the size predict runs it in (_chunk)
        # predict's quick way, for a network of one float input and one output: (the input's
        # name, its example shape, the output's name, the list of names a run fetches).
        checks = self._feed_checks[id(self.graph)] = FeedChecks(self.graph)
        self._plain_predict = (None if checks.plain is None or len(self.graph.outputs) != 1
                               else (*checks.plain, self.graph.outputs[0],
                                     list(self.graph.outputs)))
        self._weight_shapes = {s.name: s.shape for s in spec_graph.weights}
        try:
            backend.init_state(spec_graph.state, initial_values(spec_graph.state, seed, dtype))
        except MemoryError:
            values = sum(math.prod(s.shape) for s in spec_graph.state)
            raise CnncError(
                f"out of memory allocating the network's {values:,} weights "
                f"({size_text(values * np.dtype(dtype).itemsize)} as {dtype})",
                hint="the network is too large for this machine") from None
        if spec_graph.given_weights is not None:  # an imported model's trained weights
            self.set_weights(spec_graph.given_weights)

    # ------------------------------------------------------------ as Keras shows it

    def summary(self, *, rf: bool = False, print_fn: Any = print) -> None:
        """Print the layer table `cnnc summary` prints (Keras' model.summary()): layers, output
        shapes, parameters, FLOPs; rf=True adds each layer's receptive field. print_fn takes
        the text instead of print (one call)."""
        from cnnc.ir.summary import summary_text

        print_fn(summary_text(self.spec_graph, rf=rf))

    def count_params(self) -> int:
        """Parameters in all (trainable and not), as the summary's total (Keras' name)."""
        return sum(s.size for s in self.spec_graph.weights)

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The names of the output classes: those set on the model (a run's data, or by
        assignment), else those of the spec's dataset when cnnc knows it; None for a model
        whose classes have no names (an autoencoder, an imported model)."""
        if self._class_names is not None:
            return self._class_names
        config = self.spec_graph.train
        if config is None or getattr(config, "target", "labels") != "labels":
            return None
        from cnnc.data.catalog import DATASETS

        known = DATASETS.get(config.dataset)
        return tuple(known.class_names) if known is not None else None

    @class_names.setter
    def class_names(self, names: Any) -> None:
        if names is not None:
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise CnncError(f"class_names must be a sequence of strings, got {names!r}")
            names = tuple(names)
        self._class_names = names

    def _device_text(self) -> str:
        device = getattr(self.backend, "device", None)
        if device is None:
            return type(self.backend).__name__.removesuffix("Backend").lower() or "backend"
        return f"opencl {device.index} {device.name!r}"

    def _steps_text(self) -> str:
        return f"{self.step} training step{'' if self.step == 1 else 's'}"

    def __repr__(self) -> str:
        return (f"<cnnc.Model {self.spec_graph.name!r} on {self._device_text()}: "
                f"{self.count_params():,} parameters, {self._steps_text()}>")

    def _repr_html_(self) -> str:
        """A notebook's view: the name, backend and device over the summary table."""
        import html

        from cnnc.ir.summary import summary_text

        head = html.escape(f"cnnc.Model {self.spec_graph.name!r} on {self._device_text()}, "
                           f"{self._steps_text()}")
        return (f"<div><b>{head}</b><pre>{html.escape(summary_text(self.spec_graph))}</pre>"
                "</div>")

    # ------------------------------------------------------------ names

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.graph.inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.graph.outputs

    # ------------------------------------------------------------ graphs

    def training_graph(self) -> Graph:
        """The graph train_step runs (built on first use; optimizer slots start at zero)."""
        if self._training_graph is None:
            graph = training_graph(self.spec_graph, self.train_config, seed=self.seed)
            slots = [s for s in graph.state if s.role == "slot"]
            self.backend.init_state(slots, initial_values(slots, self.seed, self.dtype))
            self._training_graph = graph
        return self._training_graph

    def _executable(self, kind: str, graph: Graph, batch: int) -> Executable:
        key = (kind, batch)
        exe = self._executables.get(key)
        if exe is None:
            # A queued step's record reads the target after the run (cnnc/backends/step_figures)
            options = {"keep": (names.TARGET,)} if kind == "train" else {}
            # A forward pass may run on another device of the backend's (latency.py)
            compile = self.backend.compile
            if kind == "predict":
                compile = getattr(self.backend, "compile_inference", compile)
            with _memory_named(batch):
                exe = compile(graph, batch, **options)
            self._executables[key] = exe
        return exe

    def prepare(self, batch: int, *, train: bool = False) -> Executable:
        """Compile (tuning first where the backend's tuning says so) the forward pass, or with
        train=True the training step, at `batch`, as the first predict or step would: what
        `cnnc run` does before its first epoch, so that no epoch pays for it."""
        if train:
            return self._executable("train", self.training_graph(), batch)
        return self._executable("predict", self.graph, batch)

    def _run(self, kind: str, graph: Graph, feeds: dict[str, np.ndarray], fetch: Any,
             **options: Any) -> dict[str, np.ndarray]:
        count = len(next(iter(feeds.values())))
        exe = self._executables.get((kind, count))
        if exe is None:
            exe = self._executable(kind, graph, count)
        try:  # _memory_named's rule, without a context manager's cost on every batch
            return exe.run(feeds, fetch, **options)
        except MemoryError:
            raise _out_of_memory(count) from None

    def _chunk(self, batch: int) -> int:
        """The size a forward pass at `batch` runs in: the tuning cache's chunk of it where
        `cnnc tune` / tune() measured chunks faster (cnnc/tune/chunking.py), else `batch`."""
        chunk = self._chunks.get(batch)
        if chunk is None:
            from cnnc.tune.tuner import CachedVariants

            chooser = getattr(self.backend, "choose_variants", None)
            chunk = batch
            if isinstance(chooser, CachedVariants):
                from cnnc.tune.chunking import candidates, chunk_of

                if candidates(batch):
                    chunk = chunk_of(chooser.cache, self.backend.device, self.graph, batch)
            self._chunks[batch] = chunk
        return chunk

    def _feeds(self, graph: Graph, x: Any) -> dict[str, np.ndarray]:
        """input_feeds(graph, x) with the graph's look-ups made once per graph."""
        checks = self._feed_checks.get(id(graph))
        if checks is None or checks.graph is not graph:
            checks = self._feed_checks[id(graph)] = FeedChecks(graph)
        return checks(x)

    # ------------------------------------------------------------ tuning

    def tune(self, batch: int = 32, *, train: bool = False, budget: float = 60.0,
             force: bool = False) -> list[Any]:
        """Tune the kernel launches of the forward pass (or, with train=True, of the training
        step) at `batch` for this model's OpenCL device, within `budget` seconds, as `cnnc tune`
        does: the fastest variants the correctness gate admits, kept in the tuning cache for
        every later run. A small forward pass's launches are tuned on the device that runs it
        (its one-thread companion, cnnc/backends/opencl/latency.py), then which of the two runs
        it faster is timed and kept too. Later predictions and steps at that batch size run
        them. Returns one result per tunable launch (node, op, variant, seconds,
        default_seconds, source)."""
        from cnnc import settings
        from cnnc.tune import chunking
        from cnnc.tune.device_choice import split_budget, tune_device
        from cnnc.tune.tuner import CachedVariants, Tuner, install

        if not hasattr(self.backend, "choose_variants"):
            raise CnncError("tuning is for the OpenCL backend; this model runs on "
                            f"{type(self.backend).__name__}",
                            hint="cnnc.compile(spec, backend='opencl')")
        if not settings.tune():
            raise CnncError("tuning is turned off (CNNC_TUNE=0)", hint="unset CNNC_TUNE")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise CnncError(f"batch must be a positive integer, got {batch!r}")
        if _tune_option(budget) is None or budget == 0:
            raise CnncError(f"budget must be seconds (0 < budget <= 86400), got {budget!r}")
        graph = self.training_graph() if train else self.graph
        chooser = self.backend.choose_variants
        cache = chooser.cache if isinstance(chooser, CachedVariants) else None
        if cache is None:  # compiled with tune='never': this call asks for the tuned kernels
            cache = install(self.backend).cache
        # The launches of the device that runs the pass: a small forward pass's may be the
        # companion (cnnc/backends/opencl/latency.py). The budget's last seconds then time
        # which device runs it (timing); what the searches leave of the rest extends them, but
        # for the chunk sizes' timing.
        companion = None if train else self.backend.companion_for(graph, int(batch))
        device = self.backend.device if companion is None else companion.device
        searches, timing = split_budget(float(budget), self.backend.device, graph, int(batch),
                                        train)
        tuner = Tuner(device, cache, searches,
                      extend=0.0 if train else chunking.seconds_kept(int(batch)))
        results = tuner.tune_graph(graph, int(batch), force=force)
        # Executables bound before this call keep the variants (and device) they were built
        # with.
        self._executables.pop(("train" if train else "predict", int(batch)), None)
        if timing:
            tune_device(self.backend.device, cache, graph, int(batch))
        if not train and tuner.left() > 0:
            chunks = chunking.tune_chunks(device, cache, graph, int(batch))
            if chunks is not None:  # (None: no chunk size applies, nothing was timed)
                self._chunks.pop(int(batch), None)
                # the chunks' executables take the tuned batch's choices (CachedVariants)
                for size in chunks.seconds:
                    self._executables.pop(("predict", size), None)
        return results

    # ------------------------------------------------------------ running

    def predict(self, x: Any, batch_size: int = 32) -> np.ndarray | dict[str, np.ndarray]:
        """Outputs for (N, H, W, C) inputs (a dict by name for several inputs), in batches.

        Returns the output array (float32; float64 for a float64 model), or a dict by output
        name when the network has several outputs.
        """
        plain = self._plain_predict
        if plain is not None and type(x) is np.ndarray and type(batch_size) is int:
            # One array in one batch, on an executable already made (every batch-1 call after
            # the first): the general way's checks and steps, fewer of them. After a pause each
            # step runs cold: inception_mini's and resnet_mini's batch-1 predict 206 -> 184 and
            # 212 -> 191 us, the 0.1 s pause before each call (Intel Xeon, 30-40 rounds).
            count = len(x)
            exe = self._executables.get(("predict", count))
            if (exe is not None and 0 < count <= batch_size and x.dtype.kind == "f"
                    and x.shape[1:] == plain[1] and self._chunks.get(count) == count
                    and all_finite(x)):
                try:
                    v = exe.run({plain[0]: x}, plain[3], step=self.step)[plain[2]]
                except MemoryError:
                    raise _out_of_memory(count) from None
                if v.base is not None or v.dtype is not self._host_dtype:
                    v = v.astype(self._host_dtype, copy=v.base is not None)
                self._check_output(plain[2], v)
                return v
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        feeds = self._feeds(self.graph, x)
        count = len(next(iter(feeds.values())))
        outputs = self.graph.outputs
        batch_size = self._chunk(min(count, int(batch_size)))
        if count <= batch_size:  # one batch: its outputs are the result, nothing to join
            out = self._run("predict", self.graph, feeds, outputs, step=self.step)
            # a backend's output may be a view (of the input, by a reshape): the caller gets
            # an array of its own, as the join gives it below. An array of its own in the
            # model's dtype is returned as it is: after a pause even astype(copy=False) costs
            # a batch-1 call microseconds (its first NumPy call of a kind runs cold).
            dtype = self._host_dtype
            result = {}
            for o in outputs:
                v = out[o]
                result[o] = v if v.base is None and v.dtype is dtype else v.astype(
                    dtype, copy=v.base is not None)
        else:
            parts: dict[str, list[np.ndarray]] = {o: [] for o in outputs}
            for start in range(0, count, int(batch_size)):
                chunk = {k: v[start:start + batch_size] for k, v in feeds.items()}
                rows = min(batch_size, count - start)
                if rows < batch_size:
                    # The short last chunk runs padded to the others' batch: the executable
                    # that ran them serves it (inference treats each row alone), where a batch
                    # of its own is built anew (on a fresh machine the seed model's 5,000
                    # validation images spent 21.5 s of 23 building their last 136's).
                    chunk = {k: _padded_rows(v, batch_size) for k, v in chunk.items()}
                out = self._run("predict", self.graph, chunk, outputs, step=self.step)
                for o in outputs:
                    parts[o].append(out[o][:rows])
            result = {o: np.concatenate(p).astype(self.dtype, copy=False)
                      for o, p in parts.items()}
        for o, values in result.items():
            self._check_output(o, values)
        return result[self.graph.outputs[0]] if len(result) == 1 else result

    def _check_output(self, name: str, values: np.ndarray) -> None:
        if not all_finite(values):
            raise CnncError(f"the output '{name}' holds NaN or infinite values for finite "
                            f"inputs: {self._overflow_cause()}")

    def train_step(self, x: Any, y: Any, *, learning_rate: float | None = None,
                   return_predictions: bool = False, momentum: float | None = None
                   ) -> float | tuple[float, np.ndarray]:
        """One optimizer step on one batch; returns the batch's loss (before the update).

        learning_rate overrides the optimizer's for this step (schedules); momentum overrides
        sgd's momentum or adam/adamw's beta_1 (one_cycle's cycle_momentum). With
        return_predictions, also the batch's predictions (training mode: dropout active).
        """
        _check_learning_rate(learning_rate)
        _check_momentum(momentum)
        graph, feeds = self._train_feeds(x, y)
        pred = graph.outputs[1]
        fetch = [names.LOSS, pred] if return_predictions else [names.LOSS]
        out = self._run("train", graph, feeds, fetch, step=self.step,
                        learning_rate=None if learning_rate is None else float(learning_rate),
                        momentum=None if momentum is None else float(momentum))
        self.step += 1
        loss = float(out[names.LOSS])
        if not math.isfinite(loss):
            rate = "" if learning_rate is None else f" (learning rate {learning_rate:g})"
            err = TrainingDiverged(
                f"the training loss is {loss} at step {self.step}{rate}: the weights no longer "
                "hold finite values", hint="lower the learning rate, then reload the weights "
                "or a checkpoint (set_weights, load_weights, set_training_state)")
            err.loss = loss  # type: ignore[attr-defined]  # for the training loop's message
            raise err
        if return_predictions:
            return loss, out[pred].astype(self.dtype, copy=False)
        return loss

    def _train_feeds(self, x: Any, y: Any) -> tuple[Graph, dict[str, np.ndarray]]:
        """The training graph and its checked feeds for inputs x and targets y."""
        graph = self.training_graph()
        feeds = self._feeds(self.spec_graph, x)
        count = len(next(iter(feeds.values())))
        feeds[names.TARGET] = check_targets(y, graph.node(names.TARGET),
                                            graph.shape_of(graph.outputs[1]), count)
        return graph, feeds

    def queue_train_step(self, x: Any, y: Any, *, learning_rate: float | None = None,
                         momentum: float | None = None) -> None:
        """train_step without waiting for it: the step is enqueued, and its loss and count of
        right predictions (argmax at the target's class) are kept where it runs until
        `read_queued_steps`. What the training loop uses (cnnc/train/loop.py); a loss that is
        not finite is for the reader to find."""
        _check_learning_rate(learning_rate)
        _check_momentum(momentum)
        graph, feeds = self._train_feeds(x, y)
        record = Record(names.LOSS, graph.outputs[1], names.TARGET)
        self._run("train", graph, feeds, [], step=self.step, record=record,
                  learning_rate=None if learning_rate is None else float(learning_rate),
                  momentum=None if momentum is None else float(momentum))
        self.step += 1

    def read_queued_steps(self) -> list[StepFigures]:
        """(loss, right predictions) of every step queued since the last read, in order; waits
        for them to finish."""
        return self.backend.read_step_figures()

    # ------------------------------------------------------------ weights and state

    def _overflow_cause(self) -> str:
        weights = self.get_weights()
        if not all(np.isfinite(w).all() for w in weights.values()):
            return ("the weights hold NaN or infinite values (a diverged training step?); "
                    "reload them")
        largest = max((float(np.abs(w).max()) for w in weights.values() if w.size), default=0)
        return (f"the computation overflows {self.dtype} (the largest weight's magnitude is "
                f"{largest:g})")

    def get_weights(self) -> dict[str, np.ndarray]:
        """Parameters and moving statistics by name (copies), e.g. 'conv2d/kernel'."""
        return self.backend.read_state(list(self._weight_shapes))

    def _write_state(self, checked: Mapping[str, np.ndarray]) -> None:
        """Arrays already checked against the state's names and shapes, in the model's dtype."""
        self.backend.write_state({k: v.astype(self.dtype) for k, v in checked.items()})

    def set_weights(self, values: Mapping[str, Any]) -> None:
        """Replace every weight; WeightsError names missing, extra or misshaped arrays."""
        self._write_state(wfile.check_arrays(self._weight_shapes, values, what="the weights",
                                             max_abs=wfile.MAX_WEIGHT))

    def save_weights(self, path: str) -> None:
        wfile.save_weights(path, self.get_weights(), self.spec_graph.name)

    def load_weights(self, path: str) -> None:
        self._write_state(wfile.load_weights(path, self._weight_shapes, self.spec_graph.name))

    def _state_shapes(self) -> dict[str, tuple[int, ...]]:
        graph = self.training_graph()
        shapes = dict(self._weight_shapes)
        shapes.update({s.name: s.shape for s in graph.state if s.role == "slot"})
        return shapes

    def get_training_state(self) -> dict[str, np.ndarray]:
        """Weights, optimizer slots ('slot/<param>/...') and the step counter ('step')."""
        state = self.backend.read_state(list(self._state_shapes()))
        state[STEP] = np.array(self.step, dtype=np.int64)
        return state

    def set_training_state(self, values: Mapping[str, Any]) -> None:
        """Restore what get_training_state returned (a checkpoint) to resume training."""
        shapes = {**self._state_shapes(), STEP: ()}
        checked = wfile.check_arrays(shapes, values, what="the training state",
                                     integer=frozenset({STEP}))
        step = int(checked.pop(STEP))
        if step < 0:
            raise CnncError(f"the training state has a negative step ({step})")
        self._write_state(checked)
        self.step = step

    def adapt(self, x: Any) -> list[str]:
        """Keras' Normalization.adapt for every normalization layer: its mean and (biased)
        variance per channel from the examples `x`, in graph order (a layer sees the ones
        before it adapted). Returns the names of the layers adapted. `cnnc run` does this
        from the training split for the layers given no mean and variance."""
        from cnnc.train.adapt import adapt

        return adapt(self, x)

    def export_onnx(self, path: str, *, layout: str = "nchw", fold_bn: bool = False,
                    opset: int | None = None) -> None:
        """Write the network with its current weights as an ONNX model (cnnc.export).

        layout: 'nchw' (4-D inputs and outputs as the ONNX world has them) or 'nhwc' (as cnnc
        has them, behind transposes). fold_bn: fold batch norms into the layer before them.
        """
        from cnnc.export.onnx_export import DEFAULT_OPSET, export_onnx

        export_onnx(self.spec_graph, self.get_weights(), path, layout=layout, fold_bn=fold_bn,
                    opset=DEFAULT_OPSET if opset is None else opset)

    # ------------------------------------------------------------ training loop (cnnc/train)

    def fit(self, x: Any = None, y: Any = None, **options: Any):
        """Train for the spec's epochs (Keras-style); see cnnc.train.fit.fit for the options:
        epochs, batch_size, validation_split, validation_data, shuffle, verbose, callbacks
        (cnnc.EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, LambdaCallback, your own
        cnnc.Callback), data_dir, limit, checkpoint_dir, resume.

        With no x and y, trains on the dataset named in the spec's train section.
        Returns a History (`.epochs` records, `.history` lists per metric).
        """
        from cnnc.train.fit import fit

        return fit(self, x, y, **options)

    def evaluate(self, x: Any = None, y: Any = None, **options: Any):
        """Loss, accuracy and confusion matrix (an Evaluation); the spec's test set by default."""
        from cnnc.train.fit import evaluate

        return evaluate(self, x, y, **options)


    # ------------------------------------------------------------ pictures (cnnc/viz)

    def show_filters(self, layer: str | None = None, *, channel: int | str | None = None):
        """A convolution's learned filters as a grid: a matplotlib Figure (a notebook shows it;
        `fig.savefig("f.png")` writes it). layer: a convolution's name (default: the first);
        channel: the input channel to draw for deeper layers, or 'norm'."""
        from cnnc.viz.filters import show_filters

        return show_filters(self, layer, channel=channel)

    def show_maps(self, image: Any, *, data_dir: str | None = None, invert: str = "auto"):
        """The feature maps of every convolution and pooling layer for one image (an array
        (H, W, C), 'test:N' for the dataset's test image N, or an image file): a Figure."""
        from cnnc.viz.maps import show_maps

        return show_maps(self, image, data_dir=data_dir, invert=invert)

    def show_mistakes(self, x: Any = None, y: Any = None, *, count: int = 24,
                      data_dir: str | None = None):
        """The most confidently wrong predictions on (x, y), or on the dataset's test set."""
        from cnnc.viz.mistakes import show_mistakes

        return show_mistakes(self, x, y, count=count, data_dir=data_dir)

    def show_graph(self):
        """The layer graph as a diagram: `.dot` text, drawn as SVG in notebooks where Graphviz
        is installed; `.save(base)` writes base.dot, .svg and .png."""
        from cnnc.viz.graph_dot import GraphDiagram

        return GraphDiagram(self.spec_graph)


def _check_momentum(momentum: Any) -> None:
    if momentum is not None and (
            isinstance(momentum, bool) or not isinstance(momentum, (int, float))
            or not 0.0 <= momentum <= 1.0):
        raise InputError(f"momentum must be a number in [0, 1], got {momentum!r}")


def _padded_rows(values: np.ndarray, rows: int) -> np.ndarray:
    """`values` with zero rows appended up to `rows` (a batch's short last chunk)."""
    pad = np.zeros((rows - len(values),) + values.shape[1:], values.dtype)
    return np.concatenate([values, pad])


def _check_learning_rate(learning_rate: Any) -> None:
    if learning_rate is not None and (
            isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float))
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise InputError(f"learning_rate must be a positive number, got {learning_rate!r}")


@contextmanager
def _memory_named(batch: int) -> Iterator[None]:
    """A host allocation that fails while a batch is compiled or run becomes a CnncError."""
    try:
        yield
    except MemoryError:
        raise _out_of_memory(batch) from None


def _out_of_memory(batch: int) -> CnncError:
    return CnncError(f"out of memory running a batch of {batch} examples",
                     hint="use a smaller batch size" if batch > 1 else
                     "the network is too large for this machine")


# ---------------------------------------------------------------- compile


def _train_config(graph: Graph, loss: Any, optimizer: Any, seed: Any,
                  learning_rate: Any = None) -> TrainConfig:
    config = graph.train
    if config is None:
        config = TrainConfig()
    elif not isinstance(config, TrainConfig):
        config = parse_train_config(config)
    if loss is not None:
        config = config.replace(loss=parse_loss(loss, path=None))
    if learning_rate is not None:  # compile(spec, optimizer="adam", learning_rate=0.01)
        from cnnc.ir.train_config import optimizer_keywords

        flat = optimizer_keywords({"optimizer": config.optimizer if optimizer is None
                                   else optimizer, "learning_rate": learning_rate})
        optimizer = flat["optimizer"]
    if optimizer is not None:
        if not isinstance(optimizer, OptimizerConfig):
            optimizer = parse_optimizer(optimizer, path="optimizer")
        config = config.replace(optimizer=optimizer)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise CnncError(f"seed must be a non-negative integer, got {seed!r}")
        config = config.replace(seed=int(seed))
    return config


_fallback_said = False  # the NumPy fallback's warning, once per process


def _default_backend(device: str | None, dtype: str) -> Backend:
    """cnnc.compile without backend=: the OpenCL device the command line picks (select_device:
    `device`, $CNNC_DEVICE, else the first qualified GPU, then CPU); the NumPy reference for
    float64 (which the OpenCL kernels do not compute) or, said once, when no device qualifies."""
    global _fallback_said
    from cnnc.errors import DeviceError

    if dtype == "float64":
        if device is not None:
            raise CnncError(f"dtype='float64' runs on the numpy backend; device={device!r} is "
                            "for the OpenCL backend's float32")
        return _backend("numpy", None, dtype)
    try:
        return _backend("opencl", device, dtype)
    except DeviceError as err:
        if device is not None:
            raise  # the device asked for: its own error, never a silent fallback
        if not _fallback_said:
            import warnings

            warnings.warn(f"cnnc.compile: no OpenCL device qualifies ({err.message}); running "
                          "on the NumPy reference backend, which is much slower. Pass "
                          "backend='numpy' to choose it (and not see this), or see "
                          "`cnnc doctor`.", stacklevel=4)
            _fallback_said = True
        return _backend("numpy", None, dtype)


def _backend(backend: Any, device: str | None, dtype: str) -> Backend:
    if all(hasattr(backend, m) for m in ("compile", "init_state", "read_state")):
        return backend  # an already constructed Backend
    if not isinstance(backend, str):
        from cnnc.backends.base import BACKENDS

        raise CnncError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got "
                        f"{backend!r}")
    if device is not None and not isinstance(device, str):
        raise CnncError(f"device must be a device selector string ('gpu', 'cpu', 'P:D' or "
                        f"part of a device name), got {device!r}")
    options: dict[str, Any] = {}
    if backend == "numpy":
        if device is not None:
            raise CnncError(f"the numpy backend runs on the host; device={device!r} is for "
                            "backend='opencl'")
        options["dtype"] = dtype
    else:
        if device is not None:
            options["device"] = device
        if dtype != "float32":
            options["dtype"] = dtype
    return get_backend(backend, **options)


def _tune_option(tune: Any) -> float | None:
    """compile's `tune=`: None for 'never', else the first-use budget in seconds (0: the
    cache's variants only)."""
    if tune == "never" or tune is False:
        return None
    if tune == "cached" or tune is True:
        return 0.0
    if (isinstance(tune, (int, float, np.integer, np.floating)) and not isinstance(tune, bool)
            and math.isfinite(tune) and 0 < tune <= 86400):
        return float(tune)
    raise CnncError(f"tune must be 'cached' (the tuning cache's variants, the default), "
                    f"'never' (the default variants) or a budget in seconds for tuning what "
                    f"the cache lacks on first use (0 < budget <= 86400), got {tune!r}")


def compile_model(
    spec: Any,
    backend: Any = "numpy",
    device: str | None = None,
    *,
    seed: int | None = None,
    dtype: str = "float32",
    loss: str | None = None,
    optimizer: Any = None,
    learning_rate: float | None = None,
    tune: Any = "cached",
) -> Model:
    """cnnc.compile: a spec (anything cnnc.load_spec takes, or a Graph) compiled for a backend.

    seed: initialisation and dropout masks (default: the spec's train.seed, else 0).
    dtype: 'float32', or 'float64' (NumPy backend, for gradient checks).
    loss, optimizer: override the spec's train section (a name, or a mapping with 'name':
    optimizer={"name": "adam", "learning_rate": 0.01}); learning_rate: the optimizer's rate
    (the spec's optimizer, or the one given: optimizer="adam", learning_rate=0.01).
    tune (OpenCL): 'cached' runs the kernel variants `cnnc tune` (or an earlier `cnnc run`,
    or `Model.tune`) stored for this device, the defaults where it has none; 'never' runs the
    defaults; a number of seconds also tunes, within that budget, the launches of a graph the
    cache has nothing for, on its first use (as `cnnc run` does). CNNC_TUNE=0 turns it off.
    """
    budget = _tune_option(tune)
    if dtype not in DTYPES:
        raise CnncError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if isinstance(spec, Graph):
        graph = spec
    else:
        from cnnc.frontend.spec import load_spec

        graph = load_spec(spec)
    config = _train_config(graph, loss, optimizer, seed, learning_rate)
    built = (_default_backend(device, dtype) if backend is None
             else _backend(backend, device, dtype))
    if budget is not None and hasattr(built, "choose_variants"):
        from cnnc.tune.tuner import install

        # Without this, Python users got the untuned defaults with the cache full (issue 22).
        install(built, tune_budget=budget)
    return Model(graph, built, seed=config.seed, dtype=dtype, train_config=config)
