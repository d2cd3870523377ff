"""The command line shared by the trainers (``pretrain``, ``cola``): ``key=value`` overrides
(YAML values), ``--resume``, and a ``--help`` that lists every config field with its default
(generated from the config dataclass's field metadata)."""

from __future__ import annotations

import argparse

import yaml

from ..config import field_help

__all__ = ["trainer_parser", "parse_overrides", "fields_epilog"]


def fields_epilog(cls: type) -> str:
    """Every field of ``cls`` as ``name (type) = default  doc``."""
    lines = [f"config fields ({cls.__name__}; override as key=value, YAML values):"]
    for name, kind, default, doc in field_help(cls):
        lines.append(f"  {name} ({kind}) = {default!r}" + (f"\n      {doc}" if doc else ""))
    return "\n".join(lines)


def trainer_parser(prog: str, description: str | None, cls: type) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description, epilog=fields_epilog(cls),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resume", help="an unfinished run directory to continue from its newest checkpoint; "
                                     "overrides may change only steps, num_workers and hardware fields")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("overrides", nargs="*", help="config overrides as key=value (YAML values), e.g. lr=1e-3")
    return ap


def parse_overrides(ap: argparse.ArgumentParser, items: list[str]) -> dict:
    overrides = {}
    for item in items:
        if "=" not in item:
            ap.error(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            overrides[key] = value  # the config's checks say what the field expects
    return overrides
