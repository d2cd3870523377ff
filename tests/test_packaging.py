"""The conda environment pins the same versions as pyproject.toml (no drift), and the
package data the loaders need ships with the package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(specs) -> dict[str, str]:
    out = {}
    for spec in specs:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==?\s*([^\s#]+)", spec)
        if m:
            out[_norm(m.group(1))] = m.group(2).rstrip("*").rstrip(".")
    return out


def test_environment_yml_matches_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = []
    for dep in env["dependencies"]:
        specs += dep["pip"] if isinstance(dep, dict) else [dep]
    have = _pins(specs)
    missing = sorted(set(wanted) - set(have))
    assert not missing, f"environment.yml lacks {missing}"
    differ = {k: (wanted[k], have[k]) for k in wanted if have[k] != wanted[k]}
    assert not differ, f"pins differ (pyproject, environment.yml): {differ}"


def test_gtzan_split_lists_ship_as_package_data():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.json" in project["tool"]["setuptools"]["package-data"]["workbench.data.loaders"]
    assert (ROOT / "workbench" / "data" / "loaders" / "gtzan_splits.json").exists()


def test_cli_docstring_lists_every_command_with_its_module():
    """`python -m workbench --help` prints the module docstring: each command of COMMANDS must
    appear in it on one line with the module that owns it (the list drifted once)."""
    from workbench import cli

    lines = cli.__doc__.splitlines()
    for words, module in cli.COMMANDS.items():
        name = " ".join(words)
        hits = [ln for ln in lines if re.match(rf"\s+{re.escape(name)}\s{{2,}}", ln)]
        assert hits, f"command {name!r} missing from workbench/cli.py's docstring"
        assert f"({module})" in hits[0], f"{name!r} should name its module {module}: {hits[0]!r}"
