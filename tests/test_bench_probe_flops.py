"""The probe benchmark's GEMM FLOP account against torch's own FLOP counter on a real epoch."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.probe import gemm_flops_per_epoch


def _counted_epoch(n_train, n_valid, dim, hidden, classes):
    layers = [torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)] if hidden \
        else [torch.nn.Linear(dim, classes)]
    model = torch.nn.Sequential(*layers)
    x, xv = torch.randn(n_train, dim), torch.randn(n_valid, dim)  # data: no input gradient
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
        with torch.no_grad():
            model(xv)
    return counter.get_total_flops()


@pytest.mark.parametrize("hidden", [None, 7])
def test_flop_account_matches_torch_counter(hidden):
    assert gemm_flops_per_epoch(11, 5, 6, hidden, 4) == _counted_epoch(11, 5, 6, hidden, 4)


def test_flop_account_hand_computed_linear():
    # forward 2*N*D*C = 48, weight gradient 48, validation 2*V*D*C = 24
    assert gemm_flops_per_epoch(2, 1, 3, None, 4) == 48 + 48 + 24
