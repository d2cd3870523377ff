"""Shared steps of the loader tests (``tests/data/loaders/test_loaders_*.py``): build a manifest and keep
its warnings, and check that a loader builds the same manifest twice."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from workbench import data
from workbench.data.loaders import DataWarning
from workbench.data.tasks import get_spec


def manifest_warnings(task: str, root: Path) -> tuple[pd.DataFrame, str]:
    """``data.manifest(task, root=root)``, which must warn, and its warnings joined into one string."""
    with pytest.warns(DataWarning) as record:
        df = data.manifest(task, root=root)
    return df, " ".join(str(w.message) for w in record)


def assert_deterministic(loader, task: str, root: Path) -> None:
    """Two builds of one tree give equal manifests and class lists (warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        a, ca = loader.build(get_spec(task), root)
        b, cb = loader.build(get_spec(task), root)
    assert a.equals(b) and ca == cb
