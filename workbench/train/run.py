"""The run lifecycle of every step-based trainer (SemiSupCon family, COLA-MSA, any new method).

:func:`fit` creates a new run directory (or resumes an unfinished one), writes its
``config.yaml``, ``env.json``, ``data.json`` and ``splits/``, seeds, builds the method's
loader and LightningModule, trains with :func:`build_trainer` (checkpoints every
``checkpoint_every`` steps plus one ``last.ckpt``, always the newest; per-attempt CSV and
TensorBoard logs; DDP when more than one device), merges every attempt's metrics into
``metrics.csv``, and writes ``metrics.json`` and ``FINISHED`` once the run reached its
steps.  A method is a :class:`Method` registered in :data:`TRAINERS` (one file, one entry:
see ``docs/extending.md``).

Every checkpoint is read with ``torch.load(..., weights_only=True)`` (Lightning's resume
included), so a crafted checkpoint cannot run code.  A non-finite loss stops the run
before the optimizer step (:class:`NonFiniteGuard`): the weights and buffers of the step
before are saved as ``checkpoints/last-good.ckpt``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from .. import runs, threads
from ..config import ConfigError

__all__ = ["Method", "TRAINERS", "get_method", "fit", "interrupts_kept", "build_trainer", "loggers", "precision",
           "Throughput", "TrainingSignals", "NonFiniteGuard", "CPUClock", "GracefulStop", "TrainingStopped",
           "NonFiniteLossError", "merge_metrics", "checkpoint_step", "load_checkpoint", "prepare_caches", "RESUME_EDITABLE",
           "resume_config"]

LAST_GOOD = "last-good.ckpt"
#: Fields a resumed run may change (in config.yaml or as overrides); they do not change what the
#: checkpoint's training means. Any other difference is refused (the optimizer state restored from
#: the checkpoint would silently ignore it).
RESUME_EDITABLE = ("steps", "num_workers", "accelerator", "devices", "num_nodes", "strategy", "log_every",
                   "checkpoint_every", "compile", "runs_dir")
#: Lightning's warning on a mid-epoch resume with a loader that has no ``state_dict`` (a regex):
#: not shown, since a resumed run reseeds its batches by the resumed step on purpose.
RESUME_LOADER_WARNING = r"You're resuming from a checkpoint that ended before the epoch ended"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; the last good state was saved."""


class TrainingStopped(KeyboardInterrupt):
    """A signal (SIGTERM, Ctrl-C) stopped the training before its last step. ``step``: the step
    ``last.ckpt`` was saved at (None when the stop could not wait for a step boundary: the run
    then resumes from its newest checkpoint). A KeyboardInterrupt, so that callers treat it as
    an interruption (exit status 130), never as a failure of the run."""

    def __init__(self, run_dir: Path, step: int | None, steps: int, why: str, command: str = "pretrain"):
        self.run_dir, self.step, self.steps, self.why = run_dir, step, steps, why
        where = (f"at step {step} of {steps}; {run_dir / 'checkpoints' / 'last.ckpt'} holds that step"
                 if step is not None else f"before step {steps} (mid-step, so nothing was saved at the stop)")
        super().__init__(f"{why} stopped the training {where}. Resume with: python -m workbench {command} "
                         f"--resume {run_dir}")


# =========================================================================== methods
@dataclass(frozen=True)
class Method:
    """What the lifecycle needs from one training method.

    config: the config dataclass (``load`` reads a saved ``config.yaml``);
    module: the LightningModule class, built as ``module(config.to_dict())``;
    prepare: ``config -> state`` built before the run directory (fails early: e.g. the pool);
    loader: ``(config, state, splits_dir, start_step) -> DataLoader``;
    data_record: ``(config, state) -> dict`` written to ``data.json``;
    rows: ``config -> examples per step`` (throughput); unit: their name (``examples``, ``pairs``);
    command: the CLI command that trains it (``python -m workbench <command>``; default: ``name``);
    sources (optional): ``config -> [(task, root), ...]``, the tasks whose clips the loader reads
    (what :func:`prepare_caches` decodes; the loader reads a task's decoded cache when one exists).
    """

    name: str
    config: type
    load: Callable[[Path], Any]
    module: type
    prepare: Callable[[Any], Any]
    loader: Callable[..., Any]
    data_record: Callable[[Any, Any], dict]
    rows: Callable[[Any], int]
    unit: str = "examples"
    sources: Callable[[Any], list[tuple[str, str | None]]] | None = None
    command: str | None = None


#: Registered methods: name -> ``"module:attribute"`` of its :class:`Method` (imported on use).
TRAINERS: dict[str, str] = {
    "semisupcon": "workbench.train.semisupcon:METHOD",
    "cola": "workbench.train.cola:METHOD",
}


def get_method(name: str) -> Method:
    if name not in TRAINERS:
        from ..suggest import did_you_mean

        raise ValueError(f"unknown training method {name!r}{did_you_mean(name, TRAINERS)}; registered: "
                         f"{', '.join(sorted(TRAINERS))} (workbench.train.run.TRAINERS)")
    module, attr = TRAINERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def prepare_caches(method: Method | str, config, *, progress: bool = True) -> list[Path]:
    """Decode every clip ``method``'s loader reads for ``config`` into the memory-mapped decoded
    cache (``python -m workbench data prepare``), so that loader workers crop views instead of
    decoding audio. Clips already cached are skipped; two processes preparing the same cache
    share it (the second waits for the first's lock). Returns the cache folders."""
    from ..data.cache import prepare

    method = get_method(method) if isinstance(method, str) else method
    if method.sources is None:
        return []
    return [prepare(name, root, sample_rate=config.sample_rate, progress=progress)
            for name, root in method.sources(config)]


# =========================================================================== checkpoints
def load_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint read without running code (``weights_only=True``); a truncated,
    empty or foreign file is one clear error naming it."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        size = path.stat().st_size if path.exists() else 0
        first = str(err).splitlines()[0][:200] if str(err) else "truncated"
        raise runs.CheckpointError(
            f"checkpoint {path} cannot be read ({'empty file' if size == 0 else f'{type(err).__name__}: {first}'}): "
            "it is truncated, or not a checkpoint written by this workbench (only weights and plain data are "
            "read). Delete it to resume from the previous periodic checkpoint, or start a new run.") from None
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise runs.CheckpointError(f"checkpoint {path} holds no state_dict: not a training checkpoint")
    return blob


def checkpoint_step(path: str | Path) -> int:
    return int(load_checkpoint(path).get("global_step", 0))


def _finite(blob: dict) -> bool:
    return all(torch.isfinite(v).all() for v in blob["state_dict"].values()
               if isinstance(v, torch.Tensor) and v.is_floating_point())


def _resume_from(run_dir: Path) -> tuple[Path, int]:
    """The newest readable checkpoint of an unfinished run and its step; ``last.ckpt`` first, the
    newest intact periodic checkpoint when it is unreadable (said in a warning)."""
    ckpt = runs.resume_checkpoint(run_dir)
    try:
        return ckpt, checkpoint_step(ckpt)
    except runs.CheckpointError as err:
        for candidate in sorted((run_dir / "checkpoints").glob("step*.ckpt"), reverse=True):
            try:
                blob = load_checkpoint(candidate)
            except runs.CheckpointError:
                continue
            if _finite(blob):
                warnings.warn(f"{str(err).split(': it is')[0]}; resuming from {candidate.name} (step "
                              f"{blob.get('global_step')}), the newest intact periodic checkpoint, instead.",
                              stacklevel=3)
                return candidate, int(blob.get("global_step", 0))
        raise runs.CheckpointError(f"{err} No intact periodic checkpoint to fall back on in {run_dir}/checkpoints; "
                                   "start a new run.") from None


def resume_config(method: Method, run_dir: Path, blob_config: dict | None, overrides: dict | None) -> Any:
    """The config a resumed run continues with: its ``config.yaml`` (plus ``overrides``), refused
    when it differs from the checkpoint's own config in a field outside :data:`RESUME_EDITABLE`.
    Applied edits are recorded in ``resumed.json``."""
    config = method.load(run_dir / "config.yaml")
    if overrides:
        values = {**config.to_dict(), **overrides}
        config = method.config.from_dict(values, where=f"--resume {run_dir} overrides")
    changed: dict[str, list] = {}
    if blob_config is not None:
        saved = method.config.from_dict({**config.to_dict(), **{k: v for k, v in blob_config.items()
                                                                 if k in config.to_dict()}},
                                        where="the checkpoint's config")
        changed = {k: [getattr(saved, k), getattr(config, k)] for k in config.to_dict()
                   if getattr(saved, k) != getattr(config, k)}
        refused = sorted(k for k in changed if k not in RESUME_EDITABLE)
        if refused:
            diff = ", ".join(f"{k}: {changed[k][0]!r} -> {changed[k][1]!r}" for k in refused)
            raise ConfigError(
                f"cannot resume {run_dir}: its config (config.yaml or overrides) differs from the checkpoint's in "
                f"{diff}. A resumed run continues the checkpoint's training exactly (its optimizer state would "
                f"ignore the change). Undo the change, or start a new run from this config: python -m workbench "
                f"pretrain --config {run_dir / 'config.yaml'} {' '.join(f'{k}={changed[k][1]}' for k in refused)}. "
                f"A resume may change only {', '.join(RESUME_EDITABLE)}.")
    if overrides or changed:
        config.save(run_dir / "config.yaml")
        record = runs.read_json(run_dir / "resumed.json", default=[])
        record.append({"time": time.time(), "changed": changed})
        runs.write_json(run_dir / "resumed.json", record)
    return config


# =========================================================================== callbacks
def precision(config) -> str:
    """``auto``: bf16-mixed on GPUs that support it, 16-mixed on older GPUs; on CPUs with
    native bf16 (AVX512-BF16/AMX) bf16-mixed (the SampleCNN step is 1.3-3x faster), else fp32.
    The loss is always computed in float32."""
    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if config.accelerator in ("auto", "cpu") and torch.backends.mkldnn.is_available() and \
            torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16-mixed"
    return "32-true"


class Throughput(Callback):
    """Logs ``<unit>_per_s`` and ``s_per_step`` since the first step of this attempt."""

    def __init__(self, rows_per_step: int, unit: str = "examples"):
        self.rows_per_step, self.unit = rows_per_step, unit
        self.t0, self.steps = None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.t0 is None:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps += 1
        dt = time.perf_counter() - self.t0
        if dt > 0:
            module.log_dict({f"{self.unit}_per_s": self.steps * self.rows_per_step / dt, "s_per_step": dt / self.steps},
                            on_step=True, on_epoch=False, prog_bar=True, batch_size=1)


class CPUClock(Callback):
    """CPU seconds of a training run summed over its attempts: this process's and its live
    loader workers' (:func:`workbench.threads.tree_cpu_seconds`; with DDP, rank 0's own).

    Its state, the CPU of the attempts before up to the step the run stands at, is saved in
    every checkpoint, so a resumed run continues the count from the checkpoint it resumes
    (the CPU a killed attempt spent after its last checkpoint was lost with its steps).
    ``restored`` tells whether a resume found that state (checkpoints written before this
    clock existed do not hold it: the count is then the last attempt's only)."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self.clock = clock or threads.tree_cpu_seconds
        self.before, self.start, self.restored = 0.0, None, False

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = self.clock()

    @property
    def attempt(self) -> float:
        """CPU seconds of this attempt so far."""
        return 0.0 if self.start is None else max(self.clock() - self.start, 0.0)

    @property
    def total(self) -> float:
        return self.before + self.attempt

    def state_dict(self) -> dict:
        return {"cpu_s": self.total}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before, self.restored = float(state_dict.get("cpu_s", 0.0)), True


class GovernorTick(Callback):
    """Steps the thread governor (:func:`workbench.threads.tick`) before every training batch,
    on the thread that runs the step."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        threads.tick()


class NonFiniteGuard(Callback):
    """Stops a run whose loss is NaN/inf before the optimizer step.

    The buffers (BatchNorm running statistics) of the step before are restored first (the
    forward pass that produced the loss has already moved them), so ``last-good.ckpt`` holds a
    finite state; if the weights themselves are no longer finite, the newest finite periodic
    checkpoint is copied there instead."""

    def __init__(self, hint: str = ""):
        self.hint = hint
        self._buffers: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._buffers = {k: b.detach().clone() for k, b in module.named_buffers() if b.is_floating_point()}

    def on_before_backward(self, trainer, module, loss):
        if torch.isfinite(loss).all():
            return
        with torch.no_grad():
            for k, b in module.named_buffers():
                if k in self._buffers:
                    b.copy_(self._buffers[k])
        ckpt_dir = Path(trainer.default_root_dir) / "checkpoints"
        path = ckpt_dir / LAST_GOOD
        if all(torch.isfinite(t).all() for t in [*module.parameters(), *self._buffers.values()]):
            trainer.save_checkpoint(path)
            where = f" The last good state (weights before step {trainer.global_step}) is in {path}."
        else:
            good = _newest_finite(ckpt_dir)
            if good is not None:
                shutil.copyfile(good, path)
                where = f" Weights were already non-finite; the newest finite checkpoint ({good.name}) is in {path}."
            else:
                where = f" Weights were already non-finite and no finite checkpoint exists in {ckpt_dir}."
        raise NonFiniteLossError(
            f"loss became {loss.detach().float().item()} at step {trainer.global_step}.{where} Lower lr "
            f"(now {module.cfg.lr}), enable grad_clip, {self.hint}or use precision='32-true'.")


def _newest_finite(ckpt_dir: Path) -> Path | None:
    for candidate in sorted(ckpt_dir.glob("step*.ckpt"), reverse=True):
        try:
            if _finite(load_checkpoint(candidate)):
                return candidate
        except runs.CheckpointError:
            continue
    return None


@contextlib.contextmanager
def interrupts_kept():
    """Around ``trainer.fit``: Lightning answers a KeyboardInterrupt inside ``fit`` by ignoring
    SIGINT for the rest of the process and calling ``sys.exit(1)``. This gives the caller the
    KeyboardInterrupt back (the CLI then exits 130, a claims runner releases its cell) and puts
    the SIGINT handler back as it was, so that a later Ctrl-C in the same process still works."""
    before = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    except SystemExit as err:
        if isinstance(err.__context__, KeyboardInterrupt):
            raise err.__context__ from None
        raise
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)


class GracefulStop(Callback):
    """SIGTERM (``kill PID``, a scheduler's time limit) or a first Ctrl-C stops the training at the
    next step boundary, with ``last.ckpt`` saved there (written beside it, then renamed into
    place), so a stop loses no finished step; a second Ctrl-C stops at once. Lightning flags
    SIGTERM (``trainer.received_sigterm``) and goes on; this callback acts on the flag.

    When the signal also killed the loader workers (sent to the whole process group), the
    training fails where it stands: at a step boundary the checkpoint is still saved; inside a
    step (weights, BatchNorm statistics or the optimizer half updated) it is not, and the run
    resumes from its newest checkpoint. Single-process training only: with several processes
    each rank would have to save together, so Lightning's own handling is left alone there."""

    def __init__(self):
        self.requested: str | None = None  # what asked for the stop, once something did
        self.saved_step: int | None = None
        self.in_step = False
        self._pid = os.getpid()

    def _asked(self, trainer) -> bool:
        if self.requested is None and getattr(trainer, "received_sigterm", False):
            self.requested = "SIGTERM"
        return self.requested is not None and trainer.world_size == 1

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.in_step = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.in_step = False
        if self._asked(trainer) and self.saved_step is None:
            self._save(trainer)
            trainer.should_stop = True

    def on_exception(self, trainer, module, exception):
        if self._asked(trainer) and not self.in_step and self.saved_step is None \
                and not isinstance(exception, NonFiniteLossError):
            self._save(trainer)

    def stopped(self, run_dir: Path, steps: int, command: str) -> TrainingStopped:
        """The exception that says this stop (what asked for it, the step saved)."""
        return TrainingStopped(run_dir, self.saved_step, steps, self.requested, command)

    def _save(self, trainer) -> None:
        path = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        trainer.save_checkpoint(tmp)
        os.replace(tmp, path)  # an interrupted save leaves the previous last.ckpt whole
        self.saved_step = int(trainer.global_step)

    @contextlib.contextmanager
    def signals(self):
        """While training (main thread only): SIGTERM is left to Lightning's flag (a handler set
        before, e.g. the claims runner's, is held back so that it cannot interrupt a step); the
        first Ctrl-C asks for a stop at the next step and a second one interrupts at once, where
        Ctrl-C would raise KeyboardInterrupt anyway (Python's default handler). Loader workers
        forked meanwhile inherit the handlers and keep working, so the stop can wait for its step."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_int(signum, frame):
            if os.getpid() != self._pid:  # a loader worker: the main process decides
                return
            if self.requested is not None:
                raise KeyboardInterrupt
            self.requested = "Ctrl-C"
            print("\nstopping after this step, with a checkpoint (Ctrl-C again to stop at once)", file=sys.stderr,
                  flush=True)

        previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: None)
        own_int = signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if own_int:
            signal.signal(signal.SIGINT, on_int)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous_term is None else previous_term)
            if own_int:
                signal.signal(signal.SIGINT, signal.default_int_handler)


class TrainingSignals(Callback):
    """Logs ``learning_rate``, ``grad_norm`` (the total L2 norm of the gradients, unscaled,
    before clipping) and ``torch_threads`` (the CPU threads in force: the thread governor
    changes them with the load) every ``log_every`` steps."""

    def __init__(self, log_every: int):
        self.log_every = log_every

    def on_before_optimizer_step(self, trainer, module, optimizer):
        if trainer.global_step % self.log_every:
            return
        grads = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
        norm = torch.stack(grads).norm() if grads else torch.zeros(())
        module.log_dict({"learning_rate": torch.tensor(float(optimizer.param_groups[0]["lr"])), "grad_norm": norm,
                         "torch_threads": torch.tensor(float(torch.get_num_threads()))},
                        on_step=True, on_epoch=False, batch_size=1)


# =========================================================================== trainer
def loggers(config, run_dir: Path, attempt: int) -> list:
    """The per-attempt CSV log (merged into ``metrics.csv``) plus ``config.logger``: TensorBoard
    (``tensorboard --logdir runs/``), csv (nothing more), wandb (offline, in the run directory) or
    MLflow (a local file store ``mlruns/`` in the run directory)."""
    out = [CSVLogger(run_dir, name="logs", version=f"attempt{attempt}")]
    kind = getattr(config, "logger", "tensorboard")
    if kind == "tensorboard":
        out.append(TensorBoardLogger(run_dir, name="tensorboard", version=f"attempt{attempt}"))
    elif kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        out.append(WandbLogger(name=f"{run_dir.name}-attempt{attempt}", save_dir=str(run_dir), offline=True,
                               project="workbench"))
    elif kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        out.append(MLFlowLogger(experiment_name="workbench", run_name=f"{run_dir.name}-attempt{attempt}",
                                tracking_uri=(run_dir / "mlruns").resolve().as_uri()))
    return out



def build_trainer(config, run_dir: Path, throughput: Callback, *, progress: bool = True,
                  callbacks: list[Callback] | None = None) -> L.Trainer:
    """The step-based Lightning trainer shared by the contrastive trainers: checkpoints every
    ``checkpoint_every`` steps plus ``last.ckpt`` (overwritten in place: no ``last-v1.ckpt``
    after a resume or a move), per-attempt CSV and TensorBoard logs (a resumed run adds an
    attempt), DDP when more than one device or node."""
    checkpoints = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="step{step:07d}",
                                  every_n_train_steps=config.checkpoint_every, save_last=True, save_top_k=-1,
                                  auto_insert_metric_name=False, enable_version_counter=False)
    callbacks = [checkpoints, throughput, TrainingSignals(config.log_every), GovernorTick(), *(callbacks or [])]
    if progress:
        from ..progress import lightning_progress_bar  # text bars unless a Jupyter front end is attached

        callbacks.append(lightning_progress_bar(refresh_rate=max(1, config.log_every // 2)))
    attempt = len(list((run_dir / "logs").glob("attempt*"))) if (run_dir / "logs").exists() else 0
    strategy = config.strategy
    if strategy == "auto" and (config.devices not in (1, "1") or config.num_nodes > 1):
        strategy = "ddp"
    return L.Trainer(
        default_root_dir=str(run_dir), max_steps=config.steps, max_epochs=-1, accelerator=config.accelerator,
        devices=config.devices, num_nodes=config.num_nodes, strategy=strategy,
        sync_batchnorm=config.sync_batchnorm, precision=precision(config),
        gradient_clip_val=config.grad_clip, callbacks=callbacks, use_distributed_sampler=False,
        logger=loggers(config, run_dir, attempt),
        log_every_n_steps=config.log_every, enable_progress_bar=progress, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=False,
    )


def merge_metrics(run_dir: Path) -> None:
    """``metrics.csv`` at the run's top: every attempt's CSV log (a resumed run has several), one
    row per step, later attempts winning where a step was logged twice."""
    import pandas as pd

    parts = [pd.read_csv(p) for p in sorted((run_dir / "logs").glob("attempt*/metrics.csv"),
                                             key=lambda p: int(p.parent.name[len("attempt"):]))]
    parts = [p for p in parts if len(p) and "step" in p.columns]
    if not parts:
        return
    merged = pd.concat(parts, ignore_index=True)
    merged = merged.groupby("step", as_index=False).last().sort_values("step")
    merged.to_csv(run_dir / "metrics.csv", index=False)


# =========================================================================== lifecycle
def _busy_loader_workers(loader) -> int:
    """Loader workers that keep a core busy (:func:`workbench.threads.busy_workers`): none when
    every clip of the dataset is read from the memory-mapped decoded cache."""
    dataset = getattr(loader, "dataset", None)
    readers = getattr(dataset, "readers", None) or {}
    tasks = set(getattr(dataset, "tasks", None) or ())
    return threads.busy_workers(getattr(loader, "num_workers", 0), bool(tasks) and tasks <= set(readers))


def fit(method: Method | str, config=None, *, resume: str | Path | None = None, overrides: dict | None = None,
        progress: bool = True, hint: str = "") -> Path:
    """Train one model with ``method``; returns its run directory.

    ``resume``: an unfinished run directory; it continues from its newest checkpoint with its
    ``config.yaml`` (``overrides`` and edits limited to :data:`RESUME_EDITABLE`, recorded in
    ``resumed.json``; ``steps`` below the checkpoint's step is refused).
    """
    method = get_method(method) if isinstance(method, str) else method
    if resume is not None:
        run_dir = Path(resume)
        ckpt, start_step = _resume_from(run_dir)
        blob = load_checkpoint(ckpt)
        config = resume_config(method, run_dir, (blob.get("hyper_parameters") or {}).get("config"), overrides)
        if config.steps < start_step:
            raise ConfigError(f"cannot resume {run_dir}: steps={config.steps} is below the checkpoint's step "
                              f"{start_step} ({ckpt.name}); set steps >= {start_step} in {run_dir / 'config.yaml'}, "
                              "or start a new run")
        state = method.prepare(config)
    else:
        if config is None:
            raise ValueError(f"training needs a config or resume=RUN_DIR")
        config.validate()
        state = method.prepare(config)  # fails (no data) before a run directory is made
        from ..params import resolve_path

        run_dir = runs.new_run_dir(resolve_path(config.runs_dir), config.name)  # the CLI's and notebooks' runs/
        config.save(run_dir / "config.yaml")
        ckpt, start_step = None, 0
    runs.write_env(run_dir)
    runs.write_json(run_dir / "data.json", method.data_record(config, state))
    # a resumed run reseeds crops and batches so that it does not replay its first steps
    L.seed_everything(config.seed + start_step, workers=True, verbose=False)
    loader = method.loader(config, state, run_dir / "splits", start_step)
    module = method.module(config.to_dict())
    if config.compile:
        module.encoder = torch.compile(module.encoder)
    cpu, stop = CPUClock(), GracefulStop()
    trainer = build_trainer(config, run_dir, Throughput(method.rows(config), method.unit), progress=progress,
                            callbacks=[NonFiniteGuard(hint), cpu, stop])
    t0 = time.perf_counter()
    try:
        # torch threads: the policy, then adapted to the load while training (workbench.threads)
        workers = _busy_loader_workers(loader)
        with threads.apply(workers=workers), threads.governed(threads.threads_for(workers)), \
                warnings.catch_warnings(), interrupts_kept(), \
                (stop.signals() if trainer.world_size == 1 else contextlib.nullcontext()):
            # Lightning warns that a mid-epoch resume with a stateless loader "can cause unreliable
            # results"; ours is reseeded by the resumed step on purpose (above), so it is not shown
            warnings.filterwarnings("ignore", message=RESUME_LOADER_WARNING)
            trainer.fit(module, train_dataloaders=loader, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    except NonFiniteLossError:
        raise
    except BaseException as err:  # noqa: BLE001 - a stop asked for by a signal is said as one
        if stop.requested is None or trainer.world_size != 1:
            raise
        raise stop.stopped(run_dir, config.steps, method.command or method.name) from err
    finally:
        if trainer.is_global_zero:
            merge_metrics(run_dir)
    if stop.requested is not None and trainer.global_step < config.steps:
        raise stop.stopped(run_dir, config.steps, method.command or method.name)
    wall = time.perf_counter() - t0
    if trainer.global_step >= config.steps and trainer.is_global_zero:
        steps_run = max(trainer.global_step - start_step, 1)
        summary = {
            "steps": trainer.global_step, "wall_s": wall, "steps_run": steps_run, "s_per_step": wall / steps_run,
            f"{method.unit}_per_s": steps_run * method.rows(config) / wall,
            "final": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "checkpoint": str(run_dir / "checkpoints" / "last.ckpt"), "precision": trainer.precision,
            # CPU of the kept training over every attempt (complete unless it resumed a checkpoint
            # written before the clock existed), and of this attempt alone
            "cpu_s": cpu.total, "cpu_s_attempt": cpu.attempt, "cpu_s_complete": ckpt is None or cpu.restored,
        }
        runs.write_json(run_dir / "metrics.json", summary)
        runs.mark_finished(run_dir, steps=trainer.global_step)
    return run_dir
