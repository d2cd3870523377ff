"""Workbench: contrastive learning of music audio representations.

SemiSupCon and its baselines (CLMR/SimCLR, SupCon, COLA with music source
association) as a thin package: data -> augment -> encoder -> loss -> trainer ->
results -> figures.  Notebooks in ``notebooks/`` drive it.
"""

__version__ = "0.1.0"
