"""Stage-0 warm-up model (DESIGN 2.3): contrastive protein-text + masked tokens + coordinate denoising.

Shape legend: B proteins (local batch), N proteins in the global batch, L protein tokens, T text tokens,
D encoder hidden, P shared projection dim, V ESM vocabulary.

Two encoder passes per step:
1. clean pass -> mean over real residues (no CLS/EOS/padding; original bug #6) -> Linear-GELU-Linear -> L2
   normalise; the frozen text encoder's output is mean-pooled over real tokens the same way; symmetric
   cross-entropy with a learnable temperature (init 1/0.07, clamped at 100), negatives gathered across
   processes when ``torch.distributed`` is initialised;
2. perturbed pass (15% of residues masked ESM-style, noise 0.2 * eps on the other residues with points)
   -> ESM ``EsmLMHead`` cross-entropy on the selected residues, and the denoising head (DESIGN 2.2) MSE on
   the noised residues.
The three losses have equal weights; each is returned separately with their sum.

Saving: ``model.save_pretrained(folder)`` writes the whole model (config, weights incl. the frozen text
encoder) plus ``folder/encoder`` (a ``SepitEncoderModel`` folder for stage 1) and ``folder/text_tokenizer``.
Stage 1 gets the warmed-up encoder with ``load_stage0_encoder(folder)`` (same as
``SepitEncoderModel.from_pretrained(folder / "encoder")``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.esm.modeling_esm import EsmLMHead
from transformers.utils import ModelOutput

from sepit.model.denoise import DenoiseHead, add_coordinate_noise, denoise_loss
from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel, init_module, special_token_ids
from sepit.model.projector import residue_mask

ENCODER_SUBDIR = "encoder"
TOKENIZER_SUBDIR = "text_tokenizer"
AMINO_ACID_IDS = range(4, 24)  # the 20 standard residues in the fixed ESM-2 vocabulary (esm_tokenizer.py)


class SepitWarmupConfig(PretrainedConfig):
    """Stage-0 settings: encoder and text-encoder configs, projection dim, temperature, perturbation."""

    model_type = "sepit_warmup"
    sub_configs = {"encoder_config": SepitEncoderConfig, "text_config": AutoConfig}

    def __init__(self, encoder_config: dict | SepitEncoderConfig | None = None,
                 text_config: dict | PretrainedConfig | None = None, text_model: str = "minilm-l6-v2",
                 proj_dim: int = 512, logit_scale_init: float = 1 / 0.07, logit_scale_max: float = 100.0,
                 mask_prob: float = 0.15, noise_scale: float = 0.2, **kwargs):
        if isinstance(encoder_config, dict):
            encoder_config = SepitEncoderConfig(**encoder_config)
        if isinstance(text_config, dict):
            text_config = CONFIG_MAPPING[text_config.get("model_type", "bert")](**text_config)
        self.encoder_config = encoder_config if encoder_config is not None else SepitEncoderConfig()
        self.text_config = text_config if text_config is not None else CONFIG_MAPPING["bert"]()
        self.text_model = text_model
        self.proj_dim = proj_dim
        self.logit_scale_init = logit_scale_init
        self.logit_scale_max = logit_scale_max
        self.mask_prob = mask_prob
        self.noise_scale = noise_scale
        if kwargs.get("attn_implementation") is None:  # the encoder's (else reset to the default)
            kwargs["attn_implementation"] = self.encoder_config.esm_config._attn_implementation
        super().__init__(**kwargs)


@dataclass
class SepitWarmupOutput(ModelOutput):
    """Losses (``loss`` = sum with equal weights) and the normalised embeddings [B, P]."""

    loss: torch.Tensor | None = None
    contrastive_loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    denoise_loss: torch.Tensor | None = None
    protein_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    logit_scale: torch.Tensor | None = None


def projection_head(in_dim: int, out_dim: int) -> nn.Sequential:
    """Linear-GELU-Linear (DESIGN 2.3)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


def masked_mean(x_BLD: torch.Tensor, mask_BL: torch.Tensor) -> torch.Tensor:
    """Mean over positions where mask is True -> [B, D] (0 for an all-False row)."""
    m_BL1 = mask_BL[..., None].to(x_BLD.dtype)
    return (x_BLD * m_BL1).sum(1) / m_BL1.sum(1).clamp(min=1.0)


def gather_with_grad(x_BP: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All processes' rows [N, P] (local rows keep their gradient) and this rank's row offset.

    Local batches may differ in size (sizes are gathered first). Without torch.distributed: (x, 0).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x_BP, 0
    world, rank = dist.get_world_size(), dist.get_rank()
    size = torch.tensor([x_BP.shape[0]], device=x_BP.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    padded = x_BP.new_zeros(max(sizes), *x_BP.shape[1:])
    padded[: x_BP.shape[0]] = x_BP.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    parts = [p[:s] for p, s in zip(parts, sizes, strict=True)]
    parts[rank] = x_BP
    return torch.cat(parts), sum(sizes[:rank])


def clip_loss(protein_BP: torch.Tensor, text_BP: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch (DESIGN 2.3); inputs L2-normalised local rows [B, P].

    Every process builds the same [N, N] logits from the gathered rows (its own rows keep their gradient),
    so the value equals the single-process loss on the whole global batch. Each process gets the exact
    full-batch gradient for its own rows, i.e. its share of the parameters' gradient; DDP/FSDP then average
    over the W processes, so the gradient is scaled by W (value unchanged) to make the average the full-batch
    gradient. ``logit_scale`` is different: every process already gets its full gradient (all N x N logits
    use it), so it enters with gradient 1/W (value unchanged) to cancel that scaling.
    """
    world = dist.get_world_size() if (dist.is_available() and dist.is_initialized()) else 1
    protein_NP, _ = gather_with_grad(protein_BP)
    text_NP, _ = gather_with_grad(text_BP)
    labels_N = torch.arange(protein_NP.shape[0], device=protein_BP.device)
    logit_scale = _scale_grad(logit_scale, 1.0 / world)
    logits_NN = logit_scale * protein_NP @ text_NP.T
    loss = 0.5 * (F.cross_entropy(logits_NN, labels_N) + F.cross_entropy(logits_NN.T, labels_N))
    return _scale_grad(loss, float(world))


def _scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` in the forward pass, ``factor`` times its gradient in the backward pass (identity at 1)."""
    return x if factor == 1.0 else x.detach() + factor * (x - x.detach())


class SepitWarmupModel(PreTrainedModel):
    """Structure-aware encoder + frozen text encoder + stage-0 heads (DESIGN 2.3).

    Build from parts with ``SepitWarmupModel.build(encoder, text_model=...)``; reload with
    ``SepitWarmupModel.from_pretrained(folder)``. ``warmup.encoder`` is the ``SepitEncoderModel``.
    """

    config_class = SepitWarmupConfig
    base_model_prefix = "warmup"
    _supports_sdpa = True

    def __init__(self, config: SepitWarmupConfig, encoder: SepitEncoderModel | None = None,
                 text_encoder: PreTrainedModel | None = None):
        super().__init__(config)
        esm_cfg = config.encoder_config.esm_config
        self.encoder = encoder if encoder is not None else SepitEncoderModel(config.encoder_config)
        self.text_encoder = text_encoder if text_encoder is not None else AutoModel.from_config(
            config.text_config)
        self.text_encoder.requires_grad_(False)
        self.protein_proj = projection_head(esm_cfg.hidden_size, config.proj_dim)
        self.text_proj = projection_head(config.text_config.hidden_size, config.proj_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale_init)))
        self.lm_head = EsmLMHead(esm_cfg)
        self.denoise_head = DenoiseHead(esm_cfg.hidden_size, esm_cfg.num_attention_heads)
        self.text_tokenizer = None
        self.post_init()

    @classmethod
    def build(cls, encoder: SepitEncoderModel, text_model: str = "minilm-l6-v2",
              lm_head: EsmLMHead | None = None, **config_kwargs) -> SepitWarmupModel:
        """Compose an encoder with a frozen pretrained text encoder (offline name, local folder or hub id).

        lm_head: e.g. ``EsmForMaskedLM.from_pretrained(esm_id).lm_head`` to start from ESM-2's own head;
        by default a fresh head whose decoder starts as a copy of the ESM word embeddings.
        """
        from sepit.resources import resolve_model

        path = resolve_model(text_model)
        text_encoder = AutoModel.from_pretrained(path)
        config = SepitWarmupConfig(encoder_config=encoder.config, text_config=text_encoder.config,
                                   text_model=text_model, **config_kwargs)
        model = cls(config, encoder=encoder, text_encoder=text_encoder)
        model.text_tokenizer = AutoTokenizer.from_pretrained(path)
        with torch.no_grad():
            if lm_head is not None:
                model.lm_head.load_state_dict(lm_head.state_dict())
            else:
                model.lm_head.decoder.weight.copy_(encoder.esm.embeddings.word_embeddings.weight)
        return model

    def _init_weights(self, module: nn.Module) -> None:
        init_module(module)
        if isinstance(module, EsmLMHead):
            nn.init.zeros_(module.bias)

    def train(self, mode: bool = True) -> SepitWarmupModel:
        """The frozen text encoder always stays in eval mode (no dropout)."""
        super().train(mode)
        self.text_encoder.eval()
        return self

    def tokenize_text(self, texts: list[str], max_length: int = 128) -> dict[str, torch.Tensor]:
        """Raw texts -> ``text_input_ids`` / ``text_attention_mask`` [B, T] for ``forward``."""
        if self.text_tokenizer is None:
            raise ValueError("no text tokenizer attached: build with SepitWarmupModel.build(...) or load "
                             "with from_pretrained(folder), or set model.text_tokenizer")
        enc = self.text_tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                                  return_tensors="pt")
        return {"text_input_ids": enc["input_ids"], "text_attention_mask": enc["attention_mask"]}

    def residue_mask(self, input_ids_BL: torch.Tensor, attention_mask_BL: torch.Tensor) -> torch.Tensor:
        """True on real residues: not CLS/EOS/padding (original bug #6 pooled over padding); the projector's
        helper, so stage 0 and the SEPIT model select the same positions."""
        return residue_mask(input_ids_BL, attention_mask_BL,
                            special_token_ids(self.config.encoder_config.esm_config))

    def encode_text(self, text_input_ids: torch.Tensor, text_attention_mask: torch.Tensor) -> torch.Tensor:
        """Frozen text encoder, mean over real tokens -> [B, T_hidden] (no gradient)."""
        with torch.no_grad():
            h_BTE = self.text_encoder(input_ids=text_input_ids, attention_mask=text_attention_mask)[0]
            return masked_mean(h_BTE, text_attention_mask.bool())

    def embed(self, input_ids, attention_mask, coords=None, coord_mask=None, plddt=None,
              text_input_ids=None, text_attention_mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised protein and text embeddings [B, P] (clean pass), as used by the contrastive loss."""
        h_BLD = self.encoder(input_ids, attention_mask, coords, coord_mask, plddt).last_hidden_state
        protein_BP = F.normalize(self.protein_proj(masked_mean(h_BLD, self.residue_mask(input_ids,
                                                                                     attention_mask))), dim=-1)
        text_BP = F.normalize(self.text_proj(self.encode_text(text_input_ids, text_attention_mask)), dim=-1)
        return protein_BP, text_BP

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, text_input_ids: torch.Tensor,
                text_attention_mask: torch.Tensor, coords: torch.Tensor | None = None,
                coord_mask: torch.Tensor | None = None, plddt: torch.Tensor | None = None,
                **kwargs) -> SepitWarmupOutput:
        """Protein batch as for ``SepitEncoderModel``; text [B, T]. Returns the three losses and their sum."""
        protein_BP, text_BP = self.embed(input_ids, attention_mask, coords, coord_mask, plddt,
                                         text_input_ids, text_attention_mask)
        contrastive, scale = self.contrastive(protein_BP, text_BP)
        mlm, denoise = self.perturbed_losses(input_ids, attention_mask, coords, coord_mask, plddt)
        return SepitWarmupOutput(loss=contrastive + mlm + denoise, contrastive_loss=contrastive, mlm_loss=mlm,
                                 denoise_loss=denoise, protein_embeds=protein_BP, text_embeds=text_BP,
                                 logit_scale=scale)

    def contrastive(self, protein_BP: torch.Tensor, text_BP: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(symmetric InfoNCE over the global batch, the clamped temperature ``exp(logit_scale)``)."""
        scale = self.logit_scale.exp().clamp(max=self.config.logit_scale_max)
        return clip_loss(protein_BP, text_BP, scale), scale

    def perturbed_losses(self, input_ids, attention_mask, coords=None, coord_mask=None, plddt=None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked-token CE and denoising MSE on one pass with masked sequence + noisy coordinates."""
        residues_BL = self.residue_mask(input_ids, attention_mask)
        selected_BL = self.select_for_masking(residues_BL)
        masked_ids_BL = self.mask_tokens(input_ids, selected_BL)
        if coords is None or coord_mask is None:
            coords = torch.zeros(*input_ids.shape, 3, device=input_ids.device)
            coord_mask = torch.zeros_like(residues_BL)
        points_BL = coord_mask.bool() & residues_BL
        noised_BL = points_BL & ~selected_BL
        coords = torch.where(points_BL[..., None], coords, torch.zeros_like(coords))  # NaN-free
        noisy_BL3, eps_BL3 = add_coordinate_noise(coords, noised_BL, self.config.noise_scale)
        out = self.encoder(masked_ids_BL, attention_mask, noisy_BL3, points_BL, plddt,
                           return_attention_bias=True)
        logits_NV = self.lm_head(out.last_hidden_state[selected_BL])
        mlm = F.cross_entropy(logits_NV, input_ids[selected_BL])
        pred_BL3 = self.denoise_head(out.last_hidden_state, noisy_BL3, points_BL, out.attention_bias)
        return mlm, denoise_loss(pred_BL3, eps_BL3, noised_BL)

    def select_for_masking(self, residues_BL: torch.Tensor) -> torch.Tensor:
        """mask_prob of each protein's residues (at least one), chosen uniformly at random."""
        n_B = residues_BL.sum(1)
        k_B = (n_B.float() * self.config.mask_prob).round().long().clamp(min=1).minimum(n_B)
        scores_BL = torch.rand(residues_BL.shape, device=residues_BL.device).masked_fill(~residues_BL, 2.0)
        rank_BL = scores_BL.argsort(1).argsort(1)
        return rank_BL < k_B[:, None]

    def mask_tokens(self, input_ids_BL: torch.Tensor, selected_BL: torch.Tensor) -> torch.Tensor:
        """ESM/BERT scheme on the selected residues: 80% <mask>, 10% random residue, 10% unchanged."""
        u_BL = torch.rand(input_ids_BL.shape, device=input_ids_BL.device)
        random_BL = torch.randint(AMINO_ACID_IDS.start, AMINO_ACID_IDS.stop, input_ids_BL.shape,
                                  device=input_ids_BL.device)
        mask_id = self.config.encoder_config.esm_config.mask_token_id
        out_BL = torch.where(selected_BL & (u_BL < 0.8), mask_id, input_ids_BL)
        return torch.where(selected_BL & (u_BL >= 0.8) & (u_BL < 0.9), random_BL, out_BL)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Whole model, plus ``encoder/`` (for stage 1) and ``text_tokenizer/``."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self.encoder.save_pretrained(Path(save_directory) / ENCODER_SUBDIR)
            if self.text_tokenizer is not None:
                self.text_tokenizer.save_pretrained(Path(save_directory) / TOKENIZER_SUBDIR)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs) -> SepitWarmupModel:
        """Load a folder written by ``save_pretrained`` (text tokenizer included when saved)."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        tok = Path(pretrained_model_name_or_path) / TOKENIZER_SUBDIR
        if tok.is_dir():
            model.text_tokenizer = AutoTokenizer.from_pretrained(tok)
        return model


def load_stage0_encoder(folder: str | Path, **kwargs) -> SepitEncoderModel:
    """The warmed-up ``SepitEncoderModel`` from a stage-0 folder (``folder/encoder``), for stage 1."""
    path = Path(folder) / ENCODER_SUBDIR
    if not (path / "config.json").is_file():
        raise ValueError(f"{folder} is not a stage-0 folder: {path}/config.json is missing")
    return SepitEncoderModel.from_pretrained(path, **kwargs)
