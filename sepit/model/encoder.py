"""Structure-aware ESM-2 encoder (DESIGN 2.1), composed around HF ``EsmModel`` without forking it.

The structural embedding is added to ESM's own embeddings (``esm.embeddings`` keeps token-dropout
rescaling), and the structure bias enters every layer through a float 4-D additive attention mask
(padding = large negative). With no structure at all the output equals plain ESM-2.

Token layout: ``<cls> residues <eos> <pad>...``; ``coords``/``coord_mask``/``plddt`` are given per token
(CLS/EOS/padding have coord_mask False).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import EsmConfig, EsmModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from sepit.model.structure_bias import StructureBias


class SepitEncoderConfig(PretrainedConfig):
    model_type = "sepit_encoder"
    sub_configs = {"esm_config": EsmConfig}

    def __init__(self, esm_config: dict | EsmConfig | None = None, num_kernels: int = 128,
                 struct_embed_scale: float = 0.01, bias_chunk_size: int = 64, use_plddt: bool = False,
                 **kwargs):
        if isinstance(esm_config, dict):
            esm_config = EsmConfig(**esm_config)
        self.esm_config = esm_config if esm_config is not None else EsmConfig()
        self.num_kernels = num_kernels
        self.struct_embed_scale = struct_embed_scale
        self.bias_chunk_size = bias_chunk_size
        self.use_plddt = use_plddt
        super().__init__(**kwargs)

    @property
    def hidden_size(self) -> int:
        return self.esm_config.hidden_size


class SepitEncoderModel(PreTrainedModel):
    """ESM-2 + structure bias. ``forward`` returns ``BaseModelOutput`` (hidden_states when asked)."""

    config_class = SepitEncoderConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: SepitEncoderConfig, esm: EsmModel | None = None):
        super().__init__(config)
        esm_cfg = config.esm_config
        self.esm = esm if esm is not None else EsmModel(esm_cfg, add_pooling_layer=False)
        self.structure = StructureBias(esm_cfg.num_attention_heads, esm_cfg.hidden_size,
                                       config.num_kernels, config.struct_embed_scale)
        if esm is None:
            self.post_init()

    @classmethod
    def from_esm(cls, name_or_path: str, **structure_kwargs) -> SepitEncoderModel:
        """Wrap pretrained ESM-2 weights (hub id or local folder) with a fresh structure module."""
        esm = EsmModel.from_pretrained(name_or_path, add_pooling_layer=False)
        config = SepitEncoderConfig(esm_config=esm.config, **structure_kwargs)
        model = cls(config, esm=esm)
        model.structure.apply(model._init_weights)
        return model

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                coords: torch.Tensor | None = None, coord_mask: torch.Tensor | None = None,
                plddt: torch.Tensor | None = None, output_hidden_states: bool = False,
                **kwargs) -> BaseModelOutput:
        """input_ids [B, L]; attention_mask [B, L]; coords [B, L, 3]; coord_mask [B, L]; plddt [B, L]."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embeds_BLD = self.esm.embeddings(input_ids=input_ids, attention_mask=attention_mask)
        mask_4d = self._padding_bias(attention_mask, embeds_BLD.dtype)
        if coords is not None and coord_mask is not None and bool(coord_mask.any()):
            weight = plddt / 100.0 if (plddt is not None and self.config.use_plddt) else None
            bias_BHLL, struct_BLD = self.structure(coords, coord_mask & attention_mask.bool(), weight)
            embeds_BLD = embeds_BLD + struct_BLD.to(embeds_BLD.dtype)
            mask_4d = mask_4d + bias_BHLL.to(embeds_BLD.dtype)
        out = self.esm(inputs_embeds=embeds_BLD, attention_mask=mask_4d,
                       output_hidden_states=output_hidden_states, **kwargs)
        return BaseModelOutput(last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states)

    def _padding_bias(self, attention_mask_BL: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """[B, L] 0/1 -> [B, H, L, L] additive mask (0 keep, large negative for padded keys)."""
        B, L = attention_mask_BL.shape
        H = self.config.esm_config.num_attention_heads
        neg = torch.finfo(dtype).min / 2
        keys_B11L = (1.0 - attention_mask_BL[:, None, None, :].to(dtype)) * neg
        return keys_B11L.expand(B, H, L, L).contiguous()
