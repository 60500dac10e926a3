"""`cnnc run` end to end: spec and overrides → data → model → epochs → test → run folder.

The run is a `RunSession` whose public stages run in order (`run_spec` runs them in one
process); a data-parallel run (cnnc/distributed/run.py) composes the same stages on every rank,
with its collectives between them, and hands in what differs rather than overriding it.

A new run creates its folder first and records how it was started (run.json, spec.yaml), so that
`--resume RUN_DIR` can rebuild the same run: the stored settings are the base, command-line flags
may extend `epochs` or change the backend and device, and any other difference is refused
because it would silently break the promise that a resumed run ends where an uninterrupted one
would.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from cnnc.atomic import remove_stale_temporaries
from cnnc.errors import CnncError, SpecError
from cnnc.ir.train_config import OptimizerConfig, TrainConfig, parse_train_config
from cnnc.train.augmentation import describe as describe_augment
from cnnc.train.checkpoint import CheckpointError, load_checkpoint
from cnnc.train.fit import (
    PreparedData,
    apply_overrides,
    config_dict,
    num_classes,
    prepare_data,
)
from cnnc.train.loop import (
    EVAL_BATCH_SIZE,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    reconstruction_inputs,
)
from cnnc.train.lr_schedule import describe as describe_schedule
from cnnc.train.metrics import (
    Evaluation,
    ReconstructionEvaluation,
    evaluation_from_predictions,
    format_confusion,
    reconstruction_from_predictions,
)
from cnnc.train.progress import ConsoleReporter, SilentReporter, epoch_line
from cnnc.train.rundir import RUN_JSON, SPEC_YAML, SUMMARY, RunFolder
from cnnc.train.tta import predict_averaged

# Settings that may differ between a run and its resumption; everything else must match.
RESUMABLE_CHANGES = ("epochs", "prefetch")
DEFAULT_BACKEND = "opencl"
SKIPPED_SHOWN = 10  # unreadable files named in the header; run.json lists them all


@dataclass
class RunOptions:
    spec: str | None
    dataset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    limit: int | None = None
    backend: str | None = None  # None: the run's backend on resume, else DEFAULT_BACKEND
    device: str | None = None
    seed: int | None = None
    data: str | None = None
    out: str | None = None
    resume: str | None = None
    bars: bool | None = None  # None: progress bars only on a terminal
    argv: list[str] = field(default_factory=list)
    distributed: bool | None = None  # None: data parallel when an MPI launcher started >1 ranks
    # Seconds the OpenCL backend may spend tuning launches the tuning cache lacks (cnnc/tune/);
    # 0: the cached tunings only. CNNC_TUNE=0: neither.
    tune_budget: float = 0.0
    # How the user's own image files are read (train.image_fit, train.bad_images); None: the
    # spec's setting.
    image_fit: str | None = None
    bad_images: str | None = None


def overrides(opts: RunOptions, config: TrainConfig) -> TrainConfig:
    """The spec's train section with the command-line flags applied (each checked)."""
    changes: dict[str, Any] = {}
    for key in ("dataset", "epochs", "batch_size", "seed"):
        if getattr(opts, key) is not None:
            changes[key] = getattr(opts, key)
    for key in ("image_fit", "bad_images"):
        if getattr(opts, key) is not None:
            changes[key] = getattr(opts, key)
    config = apply_overrides(config, changes, path="command line") if changes else config
    if opts.lr is not None:
        if isinstance(opts.lr, bool) or not opts.lr > 0:
            raise CnncError(f"--lr must be a positive number, got {opts.lr}")
        opt = config.optimizer
        config = config.replace(optimizer=OptimizerConfig(
            opt.name, opt.args.replace(learning_rate=float(opts.lr))))
    return config


def _load_graph(spec: str):
    from cnnc.frontend.spec import load_spec

    # load_spec reports a missing file itself, and also knows the specs bundled with cnnc.
    return load_spec(spec)


def _spec_name(graph, spec: str) -> str:
    return getattr(graph, "name", None) or Path(spec).stem


def _write_resolved_spec(folder: RunFolder, graph) -> None:
    """spec.yaml: the graph with its final train section, in the frontend's YAML form."""
    from cnnc.frontend.writers import to_yaml

    folder.write_text(SPEC_YAML, to_yaml(graph))


def _tta_note(ev: Evaluation) -> str:
    """What a test line adds when its outputs were averaged over test-time views."""
    return f"  (test-time augmentation {ev.tta})" if ev.tta != "none" else ""


class RunSession:
    """One `cnnc run` invocation, as stages a caller runs in this order:

        settings() → data() → compile() → start_folder() → header() → train() →
        save_weights() → evaluate() → write_results()   (finish() runs the last three)

    and write_summary(status) instead of the last three when training stops early. Between the
    stages a caller may read and set the public attributes (graph, config, backend, device,
    prepared, model, folder, record, checkpoint). What a data-parallel run changes it passes in:
    its trainer (train), its sharded test evaluation (evaluate), every rank's device
    (device_summary), and lead=False on the ranks that neither print nor write.
    """

    def __init__(self, opts: RunOptions, out: TextIO, *, lead: bool = True):
        self.opts = opts
        self.out = out
        # False: this process computes but prints nothing and writes nothing (the run folder,
        # the weights, the report are the lead's): a data-parallel run's ranks but rank 0.
        self.lead = lead
        self.started = time.time()
        self.trainer: Trainer | None = None
        self.test: Evaluation | ReconstructionEvaluation | None = None
        self.test_probs: np.ndarray | None = None  # the test outputs, when this process has them
        self.test_inputs: np.ndarray | None = None  # what they were computed from
        self.device_summary: str | None = None  # set by a caller that knows more devices

    def say(self, text: str = "") -> None:
        if self.lead:
            print(text, file=self.out, flush=True)

    # ------------------------------------------------------------ settings

    def settings(self) -> None:
        opts = self.opts
        self.checkpoint = None
        self.starting_over = False
        self.removed: list[Path] = []
        if opts.resume is not None:
            if not str(opts.resume).strip():
                raise CnncError("--resume needs a run folder", hint="e.g. --resume runs/first")
            self.folder = RunFolder(opts.resume)
            if not (self.folder.path / RUN_JSON).is_file():
                raise CnncError(f"--resume {opts.resume}: not a cnnc run folder (no {RUN_JSON})",
                                hint="a run stopped before it recorded itself left nothing to "
                                     "resume: start it again")
            self.record = self.folder.read_json(RUN_JSON)
            if not isinstance(self.record, dict) or not isinstance(self.record.get("train"),
                                                                   dict):
                raise CnncError(f"{self.folder.file(RUN_JSON)}: not a cnnc run record")
            spec = opts.spec or str(self.folder.file(SPEC_YAML))
            self.graph = _load_graph(spec)
            self.spec_path = self.record.get("spec", spec)
            stored = parse_train_config(self.record["train"], "run.json train")
            self.config = overrides(opts, stored)
            limit = opts.limit if opts.limit is not None else self.record.get("limit")
            self._check_resumable(stored, limit)
            self.limit = limit
            # What was given when the run started holds unless given again now.
            self.backend = opts.backend or self.record.get("backend") or DEFAULT_BACKEND
            same = self.backend == self.record.get("backend")
            self.device = opts.device or (self.record.get("device") if same else None)
            self.data_dir = opts.data or self.record.get("data")
            # A kill during a checkpoint write leaves its temporary file: nothing reads it.
            self.removed = remove_stale_temporaries(self.folder.path)
            if not self.folder.checkpoint.exists():
                # Stopped before its first checkpoint: nothing was kept, so start over here.
                self.starting_over = True
            else:
                try:
                    self.checkpoint = load_checkpoint(self.folder.checkpoint)
                except CheckpointError as err:
                    raise CheckpointError(
                        f"cannot resume {opts.resume}: {err.message}",
                        hint="the checkpoint is damaged (cnnc writes it atomically, so "
                             "something else changed it); start the run again") from None
        else:
            if not opts.spec:
                raise CnncError("no spec given", hint="cnnc run SPEC (e.g. specs/fashion.yaml)")
            self.spec_path = opts.spec
            self.graph = _load_graph(opts.spec)
            base = self.graph.train if self.graph.train is not None else TrainConfig()
            self.config = overrides(opts, base)
            self.limit = opts.limit
            self.folder = None
            self.backend = opts.backend or DEFAULT_BACKEND
            self.device = opts.device
            self.data_dir = opts.data
        self.graph = self.graph.replace(train=self.config)

    def _check_resumable(self, stored: TrainConfig, limit: int | None) -> None:
        old, new = config_dict(stored), config_dict(self.config)
        diffs = [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in sorted(set(old) | set(new))
                 if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)]
        if limit != self.record.get("limit"):
            diffs.append(f"limit: {self.record.get('limit')!r} → {limit!r}")
        if diffs:
            raise CnncError(
                f"--resume {self.opts.resume}: these settings differ from the run's: "
                + "; ".join(diffs),
                hint="a resumed run must keep its settings (only --epochs, --backend and "
                     "--device may change); start a new run instead")

    # ------------------------------------------------------------ data and model

    def data(self) -> PreparedData:
        from cnnc.data.dataset import load_configured, raw_pixels

        g = self.graph
        shape = tuple(int(d) for d in g.shape_of(g.inputs[0])[1:])
        dataset = load_configured(self.config, self.data_dir, shape, raw=raw_pixels(g))
        self.prepared = prepare_data(self.config, dataset, shape, self.limit,
                                     raw=raw_pixels(g))
        return self.prepared

    def compile(self) -> None:
        from cnnc.model import compile_model

        # tune='never': the session installs the tuning itself, with its budget and bars.
        self.model = compile_model(self.graph, backend=self.backend, device=self.device,
                                   seed=self.config.seed, tune="never")
        if hasattr(self.model.backend, "choose_variants"):  # OpenCL: kernels tuned per device
            from cnnc.tune.tuner import install

            install(self.model.backend, tune_budget=self.opts.tune_budget,
                    progress=self.opts.bars)
        classes = num_classes(self.model)
        names = self.prepared.class_names
        if classes < len(names) and not self.config.reconstruction:
            out = self.graph.outputs[0]
            raise SpecError(f"the network's output '{out}' has {classes} units but "
                            f"{self.config.dataset} has {len(names)} classes",
                            hint=f"end the network with a dense layer of {len(names)} units")
        self.classes = classes

    def device_text(self) -> str:
        """The run's devices, as the header and the summary name them."""
        return self.device_summary if self.device_summary is not None \
            else self.local_device_text()

    def local_device_text(self) -> str:
        """This process's backend and device."""
        device = getattr(self.model.backend, "device", None)
        if device is None:
            return f"{self.backend} (host CPU)"
        describe = getattr(device, "describe", None)
        return f"{self.backend} ({describe() if callable(describe) else device})"

    # ------------------------------------------------------------ the run

    def start_folder(self) -> None:
        if self.folder is not None:
            # Resuming: record a changed epoch count so that a later --resume needs no flag.
            if self.record["train"].get("epochs") != self.config.epochs:
                self.record["train"]["epochs"] = self.config.epochs
                self.folder.write_json(RUN_JSON, self.record)
            return
        self.folder = RunFolder.create(_spec_name(self.graph, self.spec_path), self.opts.out)
        _write_resolved_spec(self.folder, self.graph)
        self.record = {
            "spec": str(self.spec_path), "name": _spec_name(self.graph, self.spec_path),
            "command": self.opts.argv, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "backend": self.backend, "device": self.device,
            "train": config_dict(self.config), "limit": self.limit,
            "data": self._data_record(),
            "examples": self.prepared.sizes(),
            # The user's own data: its class names (for `cnnc predict` with these weights) and
            # the files skipped as unreadable (bad_images: skip).
            "class_names": list(self.prepared.class_names),
            "dataset_kind": self.prepared.dataset.info.title,
            "skipped": list(self.prepared.dataset.skipped),
        }
        self.folder.write_json(RUN_JSON, self.record)

    def _data_record(self) -> str | None:
        """The data's absolute path for run.json, so that --resume finds it from any folder:
        --data, or a path given as train.dataset (relative to where the run started)."""
        if self.data_dir:
            return str(Path(self.data_dir).resolve())
        src = self.prepared.dataset.source
        if src is not None and src.origin == "train.dataset":
            return str(src.folder.resolve())
        return None

    def header(self) -> None:
        p = self.prepared
        src = p.dataset.source
        self.say(f"spec      {self.spec_path} ({_spec_name(self.graph, self.spec_path)}, "
                 f"{self.graph.param_count():,} parameters)")
        self.say(f"device    {self.device_text()}")
        if src is not None:
            self.say(f"data      {p.dataset.info.title} from {src.folder} ({src.origin})")
        for note in p.dataset.notes:
            self.say(note)
        if p.dataset.skipped:
            shown = p.dataset.skipped[:SKIPPED_SHOWN]
            self.say(f"skipped   {len(p.dataset.skipped)} unreadable file(s) (bad_images: skip; "
                     f"all listed in run.json):")
            for line in shown:
                self.say(f"            {line}")
            if len(p.dataset.skipped) > len(shown):
                self.say(f"            ... and {len(p.dataset.skipped) - len(shown)} more")
        self.say("examples  " + "  ".join(f"{k} {n:,}" for k, n in p.sizes().items()))
        self.say(f"training  {self.describe_training()}")
        self.say(f"run       {self.folder.path}")
        if self.checkpoint is not None:
            ck = self.checkpoint
            self.say(f"resuming  from the checkpoint {ck.position()} (step {ck.step})")
        if self.starting_over:
            self.say("resuming  the run stopped before its first checkpoint: starting it over "
                     "from the beginning")
        if self.removed:
            self.say(f"cleaned   {len(self.removed)} temporary file(s) left by a write that was "
                     "killed")

    def prepare_kernels(self) -> None:
        """On OpenCL, tune (first use, within --tune-budget) and build the kernels of the
        training step and of the evaluation before the first epoch, as a step of its own: their
        time is never an epoch's time or rate (it was: the first batch took the tuning's 50 s).
        The seconds are recorded in run.json ("kernel_seconds", one entry per start)."""
        model = self.model
        if not hasattr(model.backend, "choose_variants"):
            return
        from cnnc.passes import names
        from cnnc.train.loop import EVAL_BATCH_SIZE

        start = time.perf_counter()
        sizes = self.prepared.sizes()
        batch = max(1, min(self.config.batch_size, sizes["train"] or self.config.batch_size))
        model.prepare(batch, train=True)
        # and the kernel that keeps each queued step's loss on the device
        target = model.training_graph().dtype_of(names.TARGET)
        model.backend.step_figures().prepare(target == "int32")
        held_out = max((n for k, n in sizes.items() if k != "train"), default=0)
        if held_out:
            model.prepare(min(EVAL_BATCH_SIZE, held_out))
        seconds = time.perf_counter() - start
        self.say(f"kernels   tuned and built in {seconds:.1f} s, before the first epoch")
        if self.lead and self.folder is not None:
            self.record.setdefault("kernel_seconds", []).append(round(seconds, 3))
            self.folder.write_json(RUN_JSON, self.record)

    def describe_training(self) -> str:
        c = self.config
        # weight decay's settings only where decay is on: most runs have none
        opt = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in c.optimizer.args.items()
                        if k not in ("weight_decay", "decay_bias_and_norm") or v)
        aug = [f"shift ±{c.augment['shift']} px"] if c.augment["shift"] else []
        aug += ["horizontal flips"] if c.augment["flip"] else []
        aug += describe_augment(c.augment)
        if c.label_smoothing:
            aug += [f"label smoothing {c.label_smoothing:g}"]
        target = ""
        if c.reconstruction:
            target = ("target input with noise " + f"{c.noise:g}" if c.noise
                      else "target input") + ", "
        stop = self.early_stop()
        epochs = (f"{stop['epochs_run']} of {c.epochs} epochs run" if stop
                  else f"{c.epochs} epoch{'' if c.epochs == 1 else 's'}")
        return (f"{epochs}, batch {c.batch_size}, "
                f"{c.optimizer.name} ({opt}), "
                f"{c.loss}, {target}schedule {describe_schedule(c.schedule)}, "
                f"augment {', '.join(aug) or 'none'}, "
                + (f"test-time augmentation {c.tta} (validation and test), "
                   if c.tta != "none" else "")
                + f"seed {c.seed}")

    def early_stop(self) -> dict[str, Any] | None:
        """How the spec's early_stopping ended training before its epochs (train/
        spec_callbacks.py's early_stop), or None."""
        if self.trainer is None:
            return None
        from cnnc.train.spec_callbacks import early_stop

        return early_stop(self.trainer.callbacks.items, len(self.trainer.history.epochs),
                          self.config.epochs)

    def status(self) -> str:
        """The run's end, for summary.txt's first line and the report."""
        stop = self.early_stop()
        return (f"finished early: epoch {stop['epochs_run']} of {stop['epochs_planned']}, "
                "stopped by early_stopping" if stop else "finished")

    def trainer_settings(self) -> dict[str, Any]:
        """What a checkpoint records of the run, so that resuming it can check them."""
        return {"train": config_dict(self.config), "limit": self.limit}

    def train(self, trainer: Trainer | None = None) -> None:
        """Train from the checkpoint, if any; trainer: one the caller built (a data-parallel
        run's), else this process's own."""
        if trainer is None:
            p, lead = self.prepared, self.lead
            trainer = Trainer(
                self.model, self.config, p.train, p.validation, classes=self.classes,
                reporter=ConsoleReporter(self.out, bars=self.opts.bars) if lead
                else SilentReporter(),
                checkpoint_path=self.folder.checkpoint if lead else None,
                settings=self.trainer_settings(),
                on_epoch_end=self.folder.write_metrics if lead else None,
                callbacks=self.spec_callbacks(),
            )
        self.trainer = trainer
        if self.checkpoint is None:
            self.adapt()
        trainer.run(self.checkpoint)

    def spec_callbacks(self) -> list[Any]:
        """The train section's early_stopping, reduce_lr_on_plateau and `checkpoint best`
        (best.safetensors in the run folder; only the process that writes the folder saves)."""
        from cnnc.train.spec_callbacks import spec_callbacks

        folder = self.folder.path if self.lead and self.folder is not None else ""
        callbacks = spec_callbacks(self.config, folder, verbose=1 if self.lead else 0)
        if not folder:
            from cnnc.train.callbacks import ModelCheckpoint

            # The same callbacks on every rank (a checkpoint's list must match on resume),
            # but only the lead writes files.
            for c in callbacks:
                if isinstance(c, ModelCheckpoint):
                    c.writes = False
        return callbacks

    def adapt(self) -> None:
        """Normalization layers given no mean and variance learn them from the training split
        (never the validation or test data) before the first step; a checkpoint holds them."""
        from cnnc.train.adapt import adapt

        done = adapt(self.model, self.prepared.train.x, every=False)
        if done:
            self.say(f"adapted   {', '.join(done)} to the {len(self.prepared.train):,} "
                     "training examples")

    def finish(self) -> None:
        """The weights, the test set's evaluation, and every result written."""
        self.save_weights()
        self.evaluate()
        self.write_results()

    def save_weights(self) -> None:
        if self.lead:
            self.model.save_weights(self.folder.weights)  # atomic, as every weights file

    def evaluate(self, test: Evaluation | ReconstructionEvaluation | None = None
                 ) -> Evaluation | ReconstructionEvaluation:
        """The test set's evaluation: `test` when the caller computed it (sharded over ranks),
        else this process's predictions, kept for the report's pictures (its most confident
        mistakes)."""
        if test is None:
            p = self.prepared
            x = p.test.x
            if self.config.reconstruction:  # a denoising autoencoder sees noisy images
                x = reconstruction_inputs(x, self.config.noise, self.config.seed)
            self.test_inputs = x
            self.test_probs = predict_averaged(self.model, x, self.config.tta, EVAL_BATCH_SIZE)
            if self.config.reconstruction:
                test = reconstruction_from_predictions(self.test_probs, p.test.x)
            else:
                test = evaluation_from_predictions(self.config.loss, self.test_probs,
                                                   p.test.labels, p.class_names,
                                                   self.config.tta)
        self.test = test
        return test

    def write_results(self) -> None:
        """test_metrics.json, summary.txt, the report, and the closing lines."""
        if not self.lead:
            return
        self.folder.write_test(self.test)
        t = self.test
        if isinstance(t, ReconstructionEvaluation):
            self.say(f"test      {t.text()}")
        else:
            self.say(f"test      accuracy {t.accuracy:.4f} ({t.correct}/{t.count})  "
                     f"loss {t.loss:.4f}" + _tta_note(t))
            self.say(format_confusion(t.confusion, t.class_names))
        stop = self.early_stop()
        self.record["epochs_run"] = len(self.trainer.history.epochs)
        self.record["stopped_early"] = stop
        self.folder.write_json(RUN_JSON, self.record)
        self.write_summary(self.status())
        self.write_report()
        if stop:
            self.say(f"stopped   {stop['text']}")
        self.say(f"time      training {self.trainer.elapsed_s:.1f} s, this invocation "
                 f"{time.time() - self.started:.1f} s, on {self.device_text()}")
        self.say(f"results   {self.folder.path}")

    def settings_rows(self) -> list[tuple[str, str]]:
        """How the run was set up, as (label, value): for summary.txt and report.html."""
        p = self.prepared
        trained_s = self.trainer.elapsed_s if self.trainer else 0.0
        stop = self.early_stop()
        return [
            ("spec", str(self.spec_path)),
            ("command", " ".join(self.opts.argv) or "(Python)"),
            ("device", self.device_text()),
            ("parameters", f"{self.graph.param_count():,}"),
            ("dataset", self.config.dataset
             + (f" from {p.dataset.source.folder}" if p.dataset.source else "")),
            ("examples", ", ".join(f"{k} {n:,}" for k, n in p.sizes().items())),
            ("training", self.describe_training()),
            *([("stopped", stop["text"])] if stop else []),
            ("wall time", (f"{self.kernel_text()}training {trained_s:.1f} s (all invocations), "
                           f"this invocation {time.time() - self.started:.1f} s")),
        ]

    def kernel_text(self) -> str:
        """The seconds spent tuning and building kernels before the epochs (run.json's
        kernel_seconds, every invocation's), never part of the training time: "" when none."""
        record = getattr(self, "record", None) or {}  # set with the run folder
        seconds = record.get("kernel_seconds")
        if not seconds:
            return ""
        return f"kernels {sum(seconds):.1f} s (tuned and built before the epochs), "

    def write_summary(self, status: str) -> None:
        if not self.lead:
            return
        history = self.trainer.history.epochs if self.trainer else []
        lines = [f"cnnc run: {_spec_name(self.graph, self.spec_path)} ({status})", ""]
        lines += [f"{label:<12}{value}" for label, value in self.settings_rows()]
        lines += ["", "epochs"]
        lines += ["  " + epoch_line(r, self.config.epochs) for r in history] or ["  (none)"]
        if isinstance(self.test, ReconstructionEvaluation):
            lines += ["", f"test        {self.test.text()}"]
        elif self.test is not None:
            t = self.test
            lines += ["", (f"test        accuracy {t.accuracy:.4f} ({t.correct}/{t.count}), "
                           f"loss {t.loss:.4f}" + _tta_note(t)), "", "per-class accuracy"]
            for name, acc in t.to_dict()["per_class_accuracy"].items():
                lines.append(f"  {name:<12} " + ("no examples" if acc is None else f"{acc:.4f}"))
            lines += ["", "confusion matrix (rows: true class, columns: predicted)",
                      format_confusion(t.confusion, t.class_names)]
        self.folder.write_text(SUMMARY, "\n".join(lines) + "\n")

    def write_report(self) -> None:
        """The run's pictures and report.html (cnnc/viz/report.py), drawn after every result is
        on disk: a picture that cannot be drawn is a warning, never a failed run."""
        if not self.lead:
            return
        p = self.prepared
        try:
            from cnnc.data.dataset import raw_pixels
            from cnnc.viz.report import REPORT_HTML, RunReport, write_report

            # A model that scales its own pixels took 0..255 values: drawn in [0, 1].
            shown = (np.asarray(p.test.x) / np.float32(255.0) if raw_pixels(self.graph)
                     else p.test.x)

            report = RunReport(
                name=_spec_name(self.graph, self.spec_path), graph=self.graph,
                status=self.status(), settings=self.settings_rows(),
                history=list(self.trainer.history.epochs) if self.trainer else [],
                test=self.test, test_x=shown, test_labels=p.test.labels,
                test_probs=self.test_probs, weights=self.model.get_weights(),
                test_inputs=self.test_inputs if self.config.noise else None)
            failed = write_report(self.folder.path, report)
        except Exception as err:  # noqa: BLE001 (the results are saved; drawing is extra)
            print(f"cnnc: warning: the run's report was not written: {type(err).__name__}: "
                  f"{err}", file=sys.stderr)
            return
        for problem in failed:
            print(f"cnnc: warning: a picture was not drawn: {problem}", file=sys.stderr)
        self.say(f"report    {self.folder.file(REPORT_HTML)}")


def run_spec(opts: RunOptions, out: TextIO | None = None) -> int:
    """`cnnc run` in this process alone; returns the exit status (0, or 130 after Ctrl-C).
    commands/run.py chooses between this and a data-parallel run (cnnc/distributed/)."""
    run = RunSession(opts, out or sys.stdout)
    run.settings()
    run.data()
    run.compile()
    run.start_folder()
    run.header()
    run.prepare_kernels()
    try:
        run.train()
    except TrainingInterrupted as stop:
        run.write_summary("interrupted")
        resume = f"cnnc run {run.spec_path} --resume {run.folder.path}"
        print(f"cnnc: interrupted; checkpoint saved in {stop.checkpoint} (step {stop.step}). "
              f"Continue with: {resume}", file=sys.stderr)
        return 130
    except TrainingDiverged:
        run.write_summary("stopped: the loss diverged")
        raise
    run.finish()
    return 0
