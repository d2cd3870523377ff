"""``python -m workbench export CKPT OUT``: any checkpoint load_encoder reads -> an encoder file.

Writes the encoder and, where the checkpoint has one, its projection head, as a
``.safetensors`` file (no pickle; configuration in the metadata header) or a torch
``save_encoder`` file, following OUT's suffix unless ``--format`` says otherwise.  Use it
to turn an official CLMR / SemiSupCon checkpoint, or a workbench run's ``last.ckpt``, into
a small file that ``load_encoder``, ``workbench.hear`` and the probes read.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import ENCODER_FILE_FORMATS, load_pretrained, save_encoder


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m workbench export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a checkpoint load_encoder reads (.ckpt, .pt, .safetensors)")
    ap.add_argument("out", help="output file (.safetensors or .pt)")
    ap.add_argument("--format", choices=ENCODER_FILE_FORMATS, default=None,
                    help="file format (default: safetensors for a .safetensors suffix, torch otherwise)")
    ap.add_argument("--no-head", action="store_true", help="leave the projection head out")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    loaded = load_pretrained(args.checkpoint)
    head = None if args.no_head else loaded.head
    out = save_encoder(loaded.encoder, args.out, head=head, format=args.format,
                       source_checkpoint=str(args.checkpoint), source_layout=loaded.meta["layout"])
    m = loaded.meta
    print(f"{args.checkpoint} ({m['layout']}) -> {out}: {m['name']} {m['out_dim']}-d at {m['sample_rate']} Hz, "
          f"{m['clip_samples']} samples" + (f", head {m['projection_head']}" if head is not None else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
