"""Structure-aware ESM-2 encoder (DESIGN 2.1), composed around HF ``EsmModel`` without forking it.

The structural embedding is added to ESM's own embeddings (``esm.embeddings`` keeps token-dropout
rescaling), and the structure bias enters every layer through one float 4-D additive attention mask
[B, H, L, L] (padding keys = large negative, plus the bias). With no structure at all the encoder calls ESM
exactly as plain ESM-2 does (2-D mask), so its output equals plain ESM-2's bit for bit. With attention "sdpa" and a
bias that requires grad, every layer runs ``sepit.model.bias_attention`` (fused CPU kernel forward, chunked
backward with the bias gradient; registered on import) instead of the math fallback that keeps [B, H, L, L]
probabilities per layer.

Token layout: ``<cls> residues <eos> <pad>...``; ``coords``/``coord_mask``/``plddt`` are given per token
(CLS/EOS/padding have coord_mask False). Shape legend: B batch, L tokens, H heads, D hidden.

Saving and loading: ``save_pretrained(folder)`` / ``SepitEncoderModel.from_pretrained(folder)``; wrapping
pretrained ESM-2 weights (hub id such as ``facebook/esm2_t33_650M_UR50D`` or a local folder): ``from_esm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import EsmConfig, EsmModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from sepit.model import bias_attention  # noqa: F401  (registers the bias-gradient "sdpa" attention)
from sepit.model.structure_bias import StructureBias


def init_module(module: nn.Module, std: float = 0.02) -> None:
    """The one initialisation of sepit's own modules (encoder, projector, warm-up heads): Linear and Embedding
    weights ~ N(0, std), zero biases, unit LayerNorms. Each model's ``_init_weights`` calls it."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def special_token_ids(esm_config: EsmConfig) -> tuple[int, ...]:
    """ESM token ids that are not residues: CLS, EOS, padding (ESM-2's 0, 2, 1 when the config has none)."""
    names_defaults = (("cls_token_id", 0), ("eos_token_id", 2), ("pad_token_id", 1))
    return tuple(getattr(esm_config, name, None) if getattr(esm_config, name, None) is not None else default
                 for name, default in names_defaults)


class SepitEncoderConfig(PretrainedConfig):
    """ESM-2 architecture (``esm_config``) plus the structure module's settings.

    bias_chunk_size: rows per block of the memory-efficient structure path (``None`` = straightforward path);
    use_plddt: weight the bias of pair (i, j) by w_i * w_j with w = pLDDT / 100 (pLDDT <= 0 means unknown -> 1).
    """

    model_type = "sepit_encoder"
    sub_configs = {"esm_config": EsmConfig}

    def __init__(self, esm_config: dict | EsmConfig | None = None, num_kernels: int = 128,
                 struct_embed_scale: float = 0.01, bias_chunk_size: int | None = 64, use_plddt: bool = False,
                 **kwargs):
        if isinstance(esm_config, dict):
            esm_config = EsmConfig(**esm_config)
        self.esm_config = esm_config if esm_config is not None else EsmConfig()
        self.num_kernels = num_kernels
        self.struct_embed_scale = struct_embed_scale
        self.bias_chunk_size = bias_chunk_size
        self.use_plddt = use_plddt
        if kwargs.get("attn_implementation") is None:  # the ESM config's own (else reset to the default)
            kwargs["attn_implementation"] = self.esm_config._attn_implementation
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        return self.esm_config.hidden_size


@dataclass
class SepitEncoderOutput(BaseModelOutput):
    """``BaseModelOutput`` plus, when asked, the 4-D additive attention mask used by every layer
    (``attention_bias`` [B, H, L, L]: padding + structure bias; ``None`` when the batch had no structure)."""

    attention_bias: torch.Tensor | None = None


class SepitEncoderModel(PreTrainedModel):
    """ESM-2 + structure bias. ``forward`` returns ``SepitEncoderOutput`` (a ``BaseModelOutput``)."""

    config_class = SepitEncoderConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: SepitEncoderConfig, esm: EsmModel | None = None):
        super().__init__(config)
        esm_cfg = config.esm_config
        self.esm = esm if esm is not None else EsmModel(esm_cfg, add_pooling_layer=False)
        self.structure = StructureBias(esm_cfg.num_attention_heads, esm_cfg.hidden_size, config.num_kernels,
                                       config.struct_embed_scale, chunk_size=config.bias_chunk_size)
        # Pretrained (loaded) ESM modules are flagged as initialised; post_init only initialises the rest.
        self.post_init()

    @classmethod
    def from_esm(cls, name_or_path: str, attn_implementation: str | None = None,
                 **structure_kwargs) -> SepitEncoderModel:
        """Wrap pretrained ESM-2 weights (hub id or local folder) with a fresh structure module.

        ``structure_kwargs`` are ``SepitEncoderConfig`` fields (num_kernels, bias_chunk_size, use_plddt, ...).
        """
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        esm = EsmModel.from_pretrained(name_or_path, add_pooling_layer=False, **kwargs)
        config = SepitEncoderConfig(esm_config=esm.config, **structure_kwargs)
        return cls(config, esm=esm)

    def _init_weights(self, module: nn.Module) -> None:
        init_module(module)

    @property
    def num_layers(self) -> int:
        return self.config.esm_config.num_hidden_layers

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                coords: torch.Tensor | None = None, coord_mask: torch.Tensor | None = None,
                plddt: torch.Tensor | None = None, output_hidden_states: bool = False,
                return_attention_bias: bool = False, **kwargs) -> SepitEncoderOutput:
        """input_ids [B, L]; attention_mask [B, L]; coords [B, L, 3]; coord_mask [B, L] bool; plddt [B, L].

        hidden_states (when asked): embeddings then each layer's output, as in HF (penultimate layer of the
        encoder = ``hidden_states[-2]``).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embeds_BLD = self.esm.embeddings(input_ids=input_ids, attention_mask=attention_mask)
        mask = attention_mask
        if coords is not None and coord_mask is not None and bool(coord_mask.any()):
            mask, struct_BLD = self.structure_inputs(attention_mask, coords, coord_mask, plddt, embeds_BLD.dtype)
            embeds_BLD = embeds_BLD + struct_BLD
        out = self.esm(inputs_embeds=embeds_BLD, attention_mask=mask,
                       output_hidden_states=output_hidden_states, **kwargs)
        bias = mask if (return_attention_bias and mask.dim() == 4) else None
        return SepitEncoderOutput(last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states,
                                  attention_bias=bias)

    def structure_inputs(self, attention_mask_BL: torch.Tensor, coords_BL3: torch.Tensor,
                         coord_mask_BL: torch.Tensor, plddt_BL: torch.Tensor | None, dtype: torch.dtype
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """(4-D additive mask [B, H, L, L] = padding + structure bias, structural embedding [B, L, D])."""
        if coord_mask_BL.shape != attention_mask_BL.shape:
            raise ValueError(f"coord_mask shape {tuple(coord_mask_BL.shape)} does not match input_ids "
                             f"{tuple(attention_mask_BL.shape)}")
        neg = torch.finfo(dtype).min / 2
        key_bias_BL = (1.0 - attention_mask_BL.to(dtype)) * neg
        weight_BL = plddt_weight(plddt_BL) if (plddt_BL is not None and self.config.use_plddt) else None
        points_BL = coord_mask_BL.bool() & attention_mask_BL.bool()
        bias_BHLL, struct_BLD = self.structure(coords_BL3, points_BL, weight_BL, key_bias_BL)
        return bias_BHLL.to(dtype), struct_BLD.to(dtype)


def plddt_weight(plddt_BL: torch.Tensor) -> torch.Tensor:
    """Per-residue confidence in [0, 1]: pLDDT / 100, and 1 where pLDDT is unknown (<= 0, e.g. PDB entries)."""
    plddt_BL = plddt_BL.float()
    return torch.where(plddt_BL > 0, (plddt_BL / 100.0).clamp(0.0, 1.0), torch.ones_like(plddt_BL))
