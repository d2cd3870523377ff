"""Workbench: contrastive learning of music audio representations.

SemiSupCon and its baselines (CLMR/SimCLR, SupCon, COLA with music source
association) as a thin package: data -> augment -> encoder -> loss -> trainer ->
results -> figures.  Notebooks in ``notebooks/`` drive it.
"""

__version__ = "0.1.0"

# OpenMP reads its wait policy once, when torch loads it: set it before anything imports torch
# (workbench.threads; a no-op when torch is already loaded or the user set the variables).
from .threads import configure_openmp_env as _configure_openmp_env  # noqa: E402

_configure_openmp_env()


def __getattr__(name: str):
    """Lazy top-level names, so that ``import workbench`` stays light (no torch)."""
    if name == "embed_audio":
        from .embed import embed_audio

        return embed_audio
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


__all__ = ["__version__", "embed_audio"]
