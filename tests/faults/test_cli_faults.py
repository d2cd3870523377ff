"""The command line under bad input: one line `error: …` naming the file or field, exit status 2, no
traceback; `--debug` shows the traceback; a bug (an error inside a library) is never disguised."""

from __future__ import annotations

import errno
import importlib
import os
import sys
import tomllib
import types

import numpy as np
import pytest
from faultkit import REPO, noise, run_cli, write

from workbench import cli


@pytest.fixture
def command(monkeypatch):
    """Register ``python -m workbench fault`` running the given function as its main."""
    def register(fn):
        module = types.ModuleType("workbench_fault_command")
        module.main = fn
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(cli.COMMANDS, ("fault",), module.__name__)
    return register


def run(argv, capsys):
    rc = cli.main(argv)
    captured = capsys.readouterr()
    return rc, captured.err


@pytest.mark.parametrize("argv,message", [
    (["data", "prepare", "no_such_task"], "error: unknown task 'no_such_task'. Known tasks: "),
    (["data", "prepare", "folder", "--root", "/no/such/root"], "error: data root /no/such/root does not exist"),
    (["data", "prepare", "folder", "--sample-rate", "0"], "error: sample_rate must be a positive whole number"),
    (["data", "summary", "no_such_task"], "error: unknown task 'no_such_task'"),
])
def test_user_errors_are_one_line_without_traceback(argv, message, capsys):
    rc, err = run(argv, capsys)
    assert rc == cli.USER_ERROR_STATUS
    assert err.startswith(message), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_embed_sample_rate_zero_is_refused_on_the_command_line(tmp_path, capsys):
    root = tmp_path / "pool"
    write(root / "a.wav", noise())
    ckpt = tmp_path / "enc.pt"
    ckpt.write_bytes(b"")
    rc, err = run(["embed", "--checkpoint", str(ckpt), "--task", "folder", "--split", "train", "--root", str(root),
                   "--out", str(tmp_path / "out"), "--sample-rate", "0"], capsys)
    assert rc == 2 and err.startswith("error: sample_rate must be a positive whole number of Hz"), err
    assert not (tmp_path / "out" / "folder_train.json").exists()  # nothing recorded with rate 0


def test_debug_anywhere_shows_the_traceback(capsys):
    with pytest.raises(KeyError, match="no_such_task"):
        cli.main(["data", "prepare", "--debug", "no_such_task"])


def test_full_disk_is_one_line_naming_the_file(command, capsys):
    def main(argv):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/last.ckpt")

    command(main)
    rc, err = run(["fault"], capsys)
    assert rc == 2 and err == "error: No space left on device: /runs/x/last.ckpt\n"


def test_a_library_bug_is_never_disguised_as_a_user_error(command, capsys):
    def main(argv):
        np.zeros(3).reshape(2, 2)  # a ValueError raised inside numpy: a bug, not bad input

    command(main)
    with pytest.raises(ValueError, match="cannot reshape"):
        cli.main(["fault"])
    command(lambda argv: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["fault"])


def test_a_check_of_our_own_is_a_user_error(command, capsys):
    def main(argv):
        from workbench.audio import check_sample_rate

        check_sample_rate(-1, "--sample-rate")

    command(main)
    rc, err = run(["fault"], capsys)
    assert rc == 2 and err.startswith("error: --sample-rate must be a positive whole number")


def test_interrupt_exits_130_quietly(command, capsys):
    def main(argv):
        raise KeyboardInterrupt

    command(main)
    rc, err = run(["fault"], capsys)
    assert rc == cli.INTERRUPTED_STATUS and err == "interrupted\n"


def test_every_listed_user_error_class_exists():
    classes = cli.user_error_classes()
    assert len(classes) == len(cli.USER_ERRORS)
    for spec, cls in zip(cli.USER_ERRORS, classes):
        module, name = spec.split(":")
        assert cls is getattr(importlib.import_module(module), name) and issubclass(cls, Exception)
        assert cli.is_user_error(cls("x"))


def test_version_is_the_package_version():
    proc = run_cli("--version")
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert proc.returncode == 0 and proc.stdout.strip() == f"workbench {declared}"
