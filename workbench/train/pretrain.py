"""Contrastive pretraining (SemiSupCon, SimCLR/CLMR, SupCon): ``pretrain(config)`` and the CLI.

A compatibility front: the LightningModule and its loader are in
:mod:`workbench.train.semisupcon`, the run lifecycle (run directory, resume, checkpoints,
NaN guard, metrics, FINISHED) in :mod:`workbench.train.run`.  ``pretrain(config)`` creates
a new run directory, or resumes an unfinished one from its newest checkpoint.

    from workbench.config import resolve_config
    from workbench.train.pretrain import pretrain
    run_dir = pretrain(resolve_config("demo", "semisupcon", support="nsynth_pitch", b_s=0.5))
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..augment import build_chain  # noqa: F401  (kept importable from here)
from ..config import PretrainConfig
from ..data.batches import build_pool  # noqa: F401
from ..losses import semisupcon_loss, target_matrix  # noqa: F401
from . import run as _run
from .run import NonFiniteLossError, build_trainer
from .semisupcon import METHOD, ContrastiveModule, build_dataloader

__all__ = ["ContrastiveModule", "NonFiniteLossError", "pretrain", "build_dataloader", "build_trainer", "main"]

_merge_metrics = _run.merge_metrics
_precision = _run.precision


def _step_of(ckpt: Path) -> int:
    return _run.checkpoint_step(ckpt)


def pretrain(config: PretrainConfig | None = None, *, resume: str | Path | None = None,
             progress: bool = True, overrides: dict | None = None) -> Path:
    """Train one model; returns its run directory.  ``resume`` = an unfinished run directory
    (``overrides``: the fields a resume may change, :data:`workbench.train.run.RESUME_EDITABLE`)."""
    if resume is None and config is None:
        raise ValueError("pretrain() needs a config or resume=RUN_DIR")
    return _run.fit(METHOD, config, resume=resume, overrides=overrides, progress=progress)


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench pretrain [--scale demo] [--method semisupcon] [key=value …] [--resume DIR]
    [--config RUN/config.yaml] [--print-config]``."""
    from ..config import METHODS, SCALES, load_config, resolve_config
    from .cli import run_cli, trainer_parser

    ap = trainer_parser("workbench pretrain", main.__doc__, PretrainConfig, "pretrain")
    ap.add_argument("--scale", default="demo", choices=sorted(SCALES))
    ap.add_argument("--method", default="semisupcon", choices=sorted(METHODS))
    args = ap.parse_args(argv)
    return run_cli(ap, args, cls=PretrainConfig, load=load_config, train=pretrain,
                   resolve=lambda a, overrides: resolve_config(a.scale, a.method, **overrides))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
