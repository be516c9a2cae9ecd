"""Evaluation tests share a small, busy CPU: one torch thread avoids oversubscription stalls (measured: the
SmolLM2 test took 68 s with 2 threads vs 13 s with 1 while other jobs loaded the machine)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
