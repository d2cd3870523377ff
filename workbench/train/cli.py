"""The command line shared by the trainers (``pretrain``, ``cola``): ``key=value`` overrides
(YAML values), ``--resume``, ``--config FILE`` (re-run a saved ``config.yaml`` into a new run
directory), ``--print-config`` (show the resolved config and stop), and a ``--help`` that lists
every config field with its default (generated from the config dataclass's field metadata)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ..config import field_help
from ..scales import SCALE_NAMES, scale_defaults

__all__ = ["trainer_parser", "parse_overrides", "fields_epilog", "run_cli"]


def fields_epilog(cls: type, trainer: str | None = None) -> str:
    """Every field of ``cls`` as ``name (type) = default  doc``; with ``trainer`` (a key of
    :data:`workbench.scales.TRAINERS`), each field a scale preset sets also shows the preset
    values (``[smoke: 4, demo: 2000, paper: 200000]``), since a run starts from its scale's."""
    presets = {}
    if trainer is not None:
        for scale in SCALE_NAMES:
            for name, value in scale_defaults(scale, trainer).items():
                presets.setdefault(name, []).append(f"{scale}: {value!r}")
    head = f"config fields ({cls.__name__}; override as key=value, YAML values):"
    if presets:
        head += ("\n  '= value' is the built-in default; [scale: value] the scale presets a run starts from"
                 "\n  (method presets may set more; --print-config shows the resolved config)")
    lines = [head]
    for name, kind, default, doc in field_help(cls):
        line = f"  {name} ({kind}) = {default!r}"
        if name in presets:
            line += f"  [{', '.join(presets[name])}]"
        lines.append(line + (f"\n      {doc}" if doc else ""))
    return "\n".join(lines)


def trainer_parser(prog: str, description: str | None, cls: type, trainer: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=description, epilog=fields_epilog(cls, trainer),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resume", help="an unfinished run directory to continue from its newest checkpoint; "
                                     "overrides may change only steps, num_workers and hardware fields")
    ap.add_argument("--config", help="a saved config.yaml (e.g. runs/X/config.yaml) to run again, into a new run "
                                     "directory; key=value overrides apply on top")
    ap.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and stop")
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


def run_cli(ap: argparse.ArgumentParser, args: argparse.Namespace, *, cls: type, load, resolve, train) -> int:
    """The trainers' ``main``: resume, re-run a saved config, or resolve scale (+ method) and overrides."""
    overrides = parse_overrides(ap, args.overrides)
    if args.resume:
        if args.config:
            ap.error("--resume continues a run with its own config.yaml; drop --config")
        if args.print_config:
            print(Path(args.resume, "config.yaml").read_text(), end="")
            return 0
        run_dir = train(resume=args.resume, overrides=overrides, progress=not args.no_progress)
    else:
        if args.config:
            config = load(args.config)
            name = overrides.pop("name", None)
            config = cls.from_dict({**config.to_dict(), **overrides, **({"name": name} if name else {})},
                                   where=f"{args.config} with overrides")
        else:
            config = resolve(args, overrides)
        if args.print_config:
            print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
            return 0
        run_dir = train(config, progress=not args.no_progress)
    print(f"run directory: {run_dir}")
    return 0
