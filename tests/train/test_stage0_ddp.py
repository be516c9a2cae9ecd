"""Stage 0's contrastive loss under real DDP (2 gloo processes, no stand-in for torch.distributed): the averaged
gradients equal one process's gradients on the concatenated batch, ``logit_scale`` included."""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from transformers import BertConfig

from sepit.model.encoder import SepitEncoderConfig
from sepit.model.esm_tokenizer import esm_config
from sepit.model.warmup import SepitWarmupConfig, SepitWarmupModel

WORLD = 2
SHARDS = (slice(0, 4), slice(4, 6))  # unequal local batches: the gather pads and cuts them


class ContrastiveOnly(nn.Module):
    """The warm-up model's clean pass and contrastive loss (the masked and noised pass draws random masks, so it
    cannot match a single process; its losses are per-sample means that DDP averages as usual)."""

    def __init__(self, model: SepitWarmupModel):
        super().__init__()
        self.model = model

    def forward(self, **batch) -> torch.Tensor:
        protein_BP, text_BP = self.model.embed(**batch)
        return self.model.contrastive(protein_BP, text_BP)[0]


def _model() -> SepitWarmupModel:
    torch.manual_seed(0)
    text = BertConfig(vocab_size=30, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=32)
    config = SepitWarmupConfig(encoder_config=SepitEncoderConfig(esm_config=esm_config("tiny"), num_kernels=8),
                               text_config=text, proj_dim=16)
    return SepitWarmupModel(config).eval()  # eval: no dropout, so every process computes the same function


def _batch(n: int = 6, length: int = 12) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids_BL = torch.ones(n, length, dtype=torch.long)
    coord_mask_BL = torch.zeros(n, length, dtype=torch.bool)
    for b in range(n):
        k = 5 + b % 6
        ids_BL[b, 0], ids_BL[b, k + 1] = 0, 2
        ids_BL[b, 1:k + 1] = torch.randint(4, 24, (k,), generator=g)
        coord_mask_BL[b, 1:k + 1] = True
    text_BT = torch.randint(5, 30, (n, 7), generator=g)
    return dict(input_ids=ids_BL, attention_mask=(ids_BL != 1).long(),
                coords=torch.cumsum(torch.randn(n, length, 3, generator=g) * 2.0, 1), coord_mask=coord_mask_BL,
                text_input_ids=text_BT, text_attention_mask=torch.ones_like(text_BT))


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _rank(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=120))  # a lost peer fails the test, never hangs it
    model = _model()
    ddp = DistributedDataParallel(ContrastiveOnly(model), find_unused_parameters=True)
    local = {k: v[SHARDS[rank]] for k, v in _batch().items()}
    loss = ddp(**local)
    loss.backward()
    torch.save({"loss": loss.detach(), "grads": _grads(model)}, f"{out_dir}/rank{rank}.pt")
    dist.barrier()
    # no destroy_process_group: with the file store it can wait forever once the peer has exited (seen once
    # in the full suite); the process ends here and the OS releases the group


def ddp_vs_single(tmp_path) -> tuple[dict, dict, list[dict]]:
    """(single-process loss and gradients on the whole batch, per-rank DDP results)."""
    mp.spawn(_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    model = _model()
    loss = ContrastiveOnly(model)(**_batch())
    loss.backward()
    return {"loss": loss.detach()}, _grads(model), ranks


def max_grad_difference(single: dict[str, torch.Tensor], ranked: dict[str, torch.Tensor]) -> dict[str, float]:
    return {n: float((ranked[n] - g).abs().max()) for n, g in single.items()}


def test_ddp_contrastive_gradients_equal_single_process(tmp_path):
    single, grads, ranks = ddp_vs_single(tmp_path)
    assert "logit_scale" in grads and grads["logit_scale"].abs() > 1e-4
    assert {n for n in grads if n.startswith("encoder.")} and {n for n in grads if n.startswith("text_proj")}
    for result in ranks:
        torch.testing.assert_close(result["loss"], single["loss"])  # every rank sees the global batch's loss
        assert set(result["grads"]) == set(grads)
        for name, g in grads.items():
            scale = float(g.abs().max())  # float rounding differs with the summation order: compare relatively
            torch.testing.assert_close(result["grads"][name], g, rtol=1e-4, atol=1e-5 * scale, msg=name)
