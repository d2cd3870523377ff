"""docs/extending.md: a new contrastive method is one module + one registry entry, and the
shared lifecycle runs it (run directory, checkpoints, FINISHED, load_encoder)."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from workbench import runs
from workbench.config import PretrainConfig, load_config, resolve_config
from workbench.train import run as R
from workbench.train.semisupcon import ContrastiveModule, _data_record, _pool, build_dataloader


@pytest.fixture(scope="module")
def embedded():
    from workbench.data.roots import embedded_dir

    return embedded_dir("tiny", 0)


class VICRegModule(ContrastiveModule):
    """The docs' example: same encoder, head, chain and batches; a variance-invariance loss."""

    def step(self, batch):
        x, ids, labels = self._rows(batch)
        z = self(self._augment(x, batch))
        a, b = z[0::2], z[1::2]
        inv = torch.nn.functional.mse_loss(a, b)
        var = torch.relu(1 - z.std(0)).mean()
        loss = inv + var
        return z, None, loss, {"ssl": inv.detach(), "sl": var.detach(),
                               "positive_fraction": torch.tensor(0.0), "sample_ids": ids, "labels": None}


def test_a_new_method_is_one_module_and_one_registry_entry(tmp_path, embedded, monkeypatch):
    module = types.ModuleType("vicreg_example")
    module.METHOD = R.Method(name="vicreg", config=PretrainConfig, load=load_config, module=VICRegModule,
                             prepare=_pool, loader=lambda cfg, pool, splits, start: build_dataloader(cfg, pool, splits,
                                                                                                     start),
                             data_record=_data_record, rows=lambda cfg: cfg.batch_size * cfg.n_views)
    monkeypatch.setitem(sys.modules, "vicreg_example", module)
    monkeypatch.setitem(R.TRAINERS, "vicreg", "vicreg_example:METHOD")
    run = R.fit("vicreg", resolve_config("smoke", "simclr", name="vicreg", steps=2, num_workers=0,
                                         runs_dir=str(tmp_path / "runs")), progress=False)
    assert runs.is_finished(run) and (run / "checkpoints" / "last.ckpt").is_file()
    from workbench.models import load_encoder

    enc, meta = load_encoder(str(run / "checkpoints" / "last.ckpt"))
    assert enc(torch.zeros(2, 1, meta["clip_samples"])).shape == (2, meta["out_dim"])
    with pytest.raises(ValueError, match=r"unknown training method 'vicrga' \(did you mean vicreg\?\)"):
        R.get_method("vicrga")
