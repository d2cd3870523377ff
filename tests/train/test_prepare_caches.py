"""prepare_caches: each method decodes exactly the tasks its loader reads, and the loader then
reads the decoded cache (its workers count as idle for the thread policy)."""

from __future__ import annotations

import dataclasses

import pytest

from workbench.config import resolve_config
from workbench.train import run as R
from workbench.train.cola import resolve_cola_config


@pytest.fixture(scope="module")
def embedded():
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


@pytest.mark.parametrize("b_s, expected", [
    (0.0, [("fma_medium", None)]),  # self-supervised: no labelled clip is ever drawn
    (0.5, [("nsynth_pitch", None), ("fma_medium", None)]),
    (1.0, [("nsynth_pitch", None)]),  # fully supervised: no unlabelled clip is ever drawn
])
def test_semisupcon_sources_are_the_sides_of_the_pool_a_batch_draws_from(b_s, expected):
    cfg = resolve_config("smoke", "semisupcon", support="nsynth_pitch", unlabeled="fma_medium", b_s=b_s)
    assert R.get_method("semisupcon").sources(cfg) == expected


def test_cola_source_is_its_pool_with_its_root():
    cfg = resolve_cola_config("smoke", pool_root="/somewhere/fma")
    assert R.get_method("cola").sources(cfg) == [(cfg.pool, "/somewhere/fma")]


def test_a_method_without_sources_prepares_nothing():
    method = R.Method(name="x", config=object, load=None, module=None, prepare=None, loader=None,
                      data_record=None, rows=None)
    assert R.prepare_caches(method, resolve_config("smoke", "simclr"), progress=False) == []


def test_prepared_pools_are_what_the_loader_reads(embedded):
    from workbench.train.semisupcon import _cached_readers, build_dataloader

    cfg = resolve_config("smoke", "semisupcon", support="nsynth_pitch", unlabeled="fma_medium", b_s=0.5,
                         num_workers=0, steps=1)
    folders = R.prepare_caches("semisupcon", cfg, progress=False)
    assert len(folders) == 2 and all((f / "meta.json").is_file() for f in folders)
    assert set(_cached_readers(cfg)) == {"nsynth_pitch", "fma_medium"}
    loader = build_dataloader(dataclasses.replace(cfg, num_workers=2))  # workers start only on iteration
    assert loader.num_workers == 2
    assert R._busy_loader_workers(loader) == 0  # every clip is read from the cache: workers count as idle
    # preparing again decodes nothing new and returns the same folders
    assert R.prepare_caches("semisupcon", cfg, progress=False) == folders
