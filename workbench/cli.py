"""Command line: ``python -m workbench <command> …`` (also the ``workbench`` script).

Commands (each delegates to the ``main(argv)`` of the module that owns the concept):

    data render    render the embedded benchmark        (workbench.data.render)
    data prepare   decode a data set into the fast cache (workbench.data.cache)
    data summary   per-task clip counts and durations    (workbench.data.summary)
    data separate  write stems for the MSA pool          (workbench.data.separate)
    pretrain       contrastive pretraining               (workbench.train.pretrain)
    supervised     end-to-end supervised baseline        (workbench.train.supervised)
    cola           COLA with music source association    (workbench.train.cola)
    embed          extract frozen embeddings             (workbench.embed)
    probe          probe checkpoints on tasks            (workbench.probe)
    demo           the demo job run by `make demo`       (workbench.demo)
    experiments    run an experiment grid of notebooks   (workbench.experiments)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    ("data", "render"): "workbench.data.render",
    ("data", "prepare"): "workbench.data.cache",
    ("data", "summary"): "workbench.data.summary",
    ("data", "separate"): "workbench.data.separate",
    ("pretrain",): "workbench.train.pretrain",
    ("supervised",): "workbench.train.supervised",
    ("cola",): "workbench.train.cola",
    ("embed",): "workbench.embed",
    ("probe",): "workbench.probe",
    ("demo",): "workbench.demo",
    ("experiments", "run"): "workbench.experiments",
}


def _usage() -> str:
    lines = [__doc__.strip(), "", "usage:"]
    lines += [f"  python -m workbench {' '.join(k)} --help" for k in COMMANDS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    for key, module in sorted(COMMANDS.items(), key=lambda kv: -len(kv[0])):
        if tuple(argv[: len(key)]) == key:
            rc = importlib.import_module(module).main(argv[len(key):])
            return int(rc or 0)
    print(f"unknown command: {' '.join(argv[:2])}\n\n{_usage()}", file=sys.stderr)
    return 2
