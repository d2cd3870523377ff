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
    export         checkpoint -> encoder file (.safetensors) (workbench.models.export)
    probe          probe checkpoints on tasks            (workbench.probe)
    demo           the demo job run by `make demo`       (workbench.demo)
    experiments run  run an experiment grid of notebooks (workbench.experiments)
    claims         the paper's claims grid and its report (workbench.claims.runner)

Bad input (a missing file, a wrong field, an unreadable clip, a full disk) ends in one
line ``error: <what, where, and the fix>`` and exit status 2, without a traceback;
``--debug`` anywhere on the command line shows the traceback instead.
``--version`` prints the package version.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

COMMANDS = {
    ("data", "render"): "workbench.data.render",
    ("data", "prepare"): "workbench.data.cache",
    ("data", "summary"): "workbench.data.summary",
    ("data", "separate"): "workbench.data.separate",
    ("pretrain",): "workbench.train.pretrain",
    ("supervised",): "workbench.train.supervised",
    ("cola",): "workbench.train.cola",
    ("embed",): "workbench.embed",
    ("export",): "workbench.models.export",
    ("probe",): "workbench.probe",
    ("demo",): "workbench.demo",
    ("experiments", "run"): "workbench.experiments",
    ("claims",): "workbench.claims.runner",
}


DEBUG_FLAG = "--debug"
USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130
PACKAGE_DIR = Path(__file__).resolve().parent

#: Exception classes that always mean bad input, as "module:Class" (matched by name against
#: the raised error's class and its bases, so nothing is imported to tell).  The one list.
USER_ERRORS = (
    "workbench.audio:AudioError",
    "workbench.config:ConfigError",
    "workbench.params:ParameterError",
    "workbench.experiments:ExperimentError",
    "workbench.runs:RunExistsError",
    "workbench.runs:CheckpointError",
    "workbench.data.tasks:UnknownTaskError",
    "workbench.data.loaders._common:DatasetLayoutError",
    "workbench.data.embedded.synth:SoundFontError",
    "workbench.embed:EmbeddingError",
    "workbench.train.run:NonFiniteLossError",
    "workbench.claims.store:LockHeld",
)


def user_error_classes() -> tuple[type[BaseException], ...]:
    """The classes of :data:`USER_ERRORS` (importing their modules; a module that fails to import is
    left out). The test suite checks that every entry resolves."""
    out = []
    for spec in USER_ERRORS:
        module, name = spec.split(":")
        try:
            out.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(out)


def _raised_here(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the workbench's own code (its checks), not inside a library."""
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    try:
        return Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        return False


def is_user_error(exc: BaseException) -> bool:
    """Bad input, reported in one line: a :data:`USER_ERRORS` class, any OSError (missing file, full
    disk, permissions), or a ValueError / KeyError / TypeError raised by the workbench's own checks."""
    names = {f"{c.__module__}:{c.__qualname__}" for c in type(exc).__mro__}
    if names & set(USER_ERRORS) or isinstance(exc, OSError):
        return True
    return isinstance(exc, (ValueError, KeyError, TypeError)) and _raised_here(exc)


def error_message(exc: BaseException) -> str:
    """The one-line (or one-block) message of a user error."""
    if isinstance(exc, OSError) and exc.strerror and not str(exc).startswith(exc.strerror):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    if isinstance(exc, KeyError) and type(exc).__str__ is KeyError.__str__ and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def _usage() -> str:
    lines = [__doc__.strip(), "", "usage:"]
    lines += [f"  python -m workbench {' '.join(k)} --help" for k in COMMANDS]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [a for a in argv if a != DEBUG_FLAG]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from . import __version__

        print(f"workbench {__version__}")
        return 0
    for key, module in sorted(COMMANDS.items(), key=lambda kv: -len(kv[0])):
        if tuple(argv[: len(key)]) == key:
            try:
                rc = importlib.import_module(module).main(argv[len(key):])
            except KeyboardInterrupt as exc:  # Ctrl-C, or a stop a command turned into one (with its message)
                if debug:
                    raise
                print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
                return INTERRUPTED_STATUS
            except Exception as exc:  # noqa: BLE001 - sorted into user errors and bugs right here
                if debug or not is_user_error(exc):
                    raise
                print(f"error: {error_message(exc)}", file=sys.stderr)
                return USER_ERROR_STATUS
            return int(rc or 0)
    print(f"unknown command: {' '.join(argv[:2])}\n\n{_usage()}", file=sys.stderr)
    return USER_ERROR_STATUS
