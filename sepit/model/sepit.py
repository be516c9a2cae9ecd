"""SEPIT model (DESIGN 2.4, 2.7): structure-aware encoder -> projector -> any causal LLM.

Composition as HF LLaVA: the encoder is built from ``config.encoder_config``, the LLM through
``AutoModelForCausalLM.from_config(config.text_config)`` (Llama, Mistral, Qwen2, Mixtral after MoE
upcycling...), no forked modeling code. Projected residue features replace the ``<protein>`` placeholder
embeddings with one ``masked_scatter``; a per-sample count mismatch raises ``ValueError``. The LLM computes
the loss from ``labels`` (assistant tokens only, built by the processor); a Mixtral LLM adds
``router_aux_loss_coef * aux_loss`` to it (DESIGN 2.6; original bug #4).

Shape legend: B batch, T LLM tokens, Lp protein tokens, E LLM width, N protein positions in the batch.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel

from sepit.model.configuration import SepitConfig
from sepit.model.encoder import SepitEncoderModel, init_module
from sepit.model.lora import freeze_all_but_lora, inject_lora
from sepit.model.projector import SepitProjector, num_positions, pool_residues, residue_mask
from sepit.model.token_rows import train_only_rows

PROTEIN_INPUTS = ("protein_input_ids", "protein_attention_mask", "coords", "coord_mask", "plddt")


class SepitPreTrainedModel(PreTrainedModel):
    config_class = SepitConfig
    config: SepitConfig
    base_model_prefix = ""
    input_modalities = ("text",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        init_module(module)  # the projector; sub-models (encoder, LLM) init their own modules


class SepitForConditionalGeneration(SepitPreTrainedModel, GenerationMixin):
    """``forward(input_ids, attention_mask, labels, protein_input_ids, protein_attention_mask, coords,
    coord_mask, plddt, ...)`` -> the LLM's output (``loss``, ``logits``, ``cache``; ``aux_loss`` for MoE).

    ``encoder``/``language_model`` may be passed already built (e.g. pretrained); otherwise they are
    created from ``config`` (random weights, or filled by ``from_pretrained``).
    """

    def __init__(self, config: SepitConfig, encoder: SepitEncoderModel | None = None,
                 language_model: PreTrainedModel | None = None):
        super().__init__(config)
        self.encoder = encoder if encoder is not None else SepitEncoderModel(config.encoder_config)
        self.projector = SepitProjector(config.encoder_config.hidden_size, config.text_config.hidden_size,
                                        config.projector_hidden_act)
        self.language_model = (language_model if language_model is not None
                               else AutoModelForCausalLM.from_config(config.text_config))
        if config.lora:
            inject_lora(self.language_model, config.lora)
            self.train_new_token_rows()
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> SepitForConditionalGeneration:
        """Loading replaces the parameters, dropping LoRA's freezing and the new-token rows' gradient hook:
        both are put back, so a reloaded LoRA model trains what it trained before saving."""
        model = super().from_pretrained(*args, **kwargs)
        if model.config.lora:
            freeze_all_but_lora(model.language_model)
            model.train_new_token_rows()
        return model

    # --- embeddings (resize_token_embeddings and tying go through the LLM) ---
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def train_new_token_rows(self) -> None:
        """Under LoRA the embeddings are frozen, except the rows of the new ``<protein_start>`` /
        ``<protein_end>`` tokens, which start untrained (only those rows get a gradient)."""
        rows = [self.config.protein_start_token_id, self.config.protein_end_token_id]
        if any(r is not None for r in rows):
            train_only_rows(self.get_input_embeddings().weight, [r for r in rows if r is not None])

    def freeze_encoder(self, frozen: bool = True) -> None:
        """Stop (or restart) gradients into the protein encoder (DESIGN 2.6: frozen in stage 2)."""
        for param in self.encoder.parameters():
            param.requires_grad_(not frozen)

    # --- the bridge (DESIGN 2.4) ---
    def get_protein_features(self, protein_input_ids: torch.Tensor, protein_attention_mask: torch.Tensor | None = None,
                             coords: torch.Tensor | None = None, coord_mask: torch.Tensor | None = None,
                             plddt: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Protein tokens [B, Lp] -> (features [N, E] in batch-major order, positions per protein [B]).

        Features: the encoder's ``protein_feature_layer`` (penultimate by default) hidden states of real
        residues only, mean-pooled by ``protein_pool_stride``, then projected to the LLM width.
        """
        frozen = not any(param.requires_grad for param in self.encoder.parameters())
        with torch.no_grad() if frozen else contextlib.nullcontext():  # a frozen encoder needs no graph
            out = self.encoder(input_ids=protein_input_ids, attention_mask=protein_attention_mask, coords=coords,
                               coord_mask=coord_mask, plddt=plddt, output_hidden_states=True)
        hidden_BLD = out.hidden_states[self.config.protein_feature_layer]
        mask_BL = residue_mask(protein_input_ids, protein_attention_mask, self.config.protein_special_ids)
        stride = self.config.protein_pool_stride
        pooled_ND = pool_residues(hidden_BLD, mask_BL, stride)
        return self.projector(pooled_ND), num_positions(mask_BL.sum(dim=1), stride)

    def splice_protein_features(self, input_ids_BT: torch.Tensor, embeds_BTE: torch.Tensor,
                                features_NE: torch.Tensor, counts_B: torch.Tensor) -> torch.Tensor:
        """Put the features at the ``<protein>`` placeholders (one ``masked_scatter``)."""
        mask_BT = input_ids_BT == self.config.protein_token_id
        tokens_B = mask_BT.sum(dim=1)
        if tokens_B.shape != counts_B.shape or not torch.equal(tokens_B.cpu(), counts_B.cpu()):
            raise ValueError(
                f"protein placeholder tokens per sample {tokens_B.tolist()} do not match protein features per "
                f"sample {counts_B.tolist()} (pooling stride {self.config.protein_pool_stride}); build inputs "
                "with the model's SepitProcessor")
        mask_BTE = mask_BT[..., None].expand_as(embeds_BTE)
        return embeds_BTE.masked_scatter(mask_BTE, features_NE.to(embeds_BTE.dtype))

    def forward(self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.LongTensor | None = None, cache=None,
                inputs_embeds: torch.Tensor | None = None, labels: torch.LongTensor | None = None,
                protein_input_ids: torch.LongTensor | None = None,
                protein_attention_mask: torch.Tensor | None = None, coords: torch.Tensor | None = None,
                coord_mask: torch.Tensor | None = None, plddt: torch.Tensor | None = None,
                use_cache: bool | None = None, logits_to_keep: int | torch.Tensor = 0, **kwargs):
        """LLM inputs [B, T] plus protein inputs [B, Lp] (see docs/ARCHITECTURE.md, model inputs)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)  # (B, T, E)
        if protein_input_ids is not None:
            if input_ids is None:
                raise ValueError("protein inputs need input_ids (to find the <protein> placeholders)")
            features_NE, counts_B = self.get_protein_features(protein_input_ids, protein_attention_mask, coords,
                                                              coord_mask, plddt)
            inputs_embeds = self.splice_protein_features(input_ids, inputs_embeds, features_NE, counts_B)
        elif input_ids is not None and bool((input_ids == self.config.protein_token_id).any()):
            raise ValueError("input_ids hold <protein> placeholders but no protein_input_ids were given")
        if self.config.is_moe and labels is None:
            # router logits only feed the aux loss; Mixtral's aux loss breaks on cached decode steps
            kwargs.setdefault("output_router_logits", False)
        return self.language_model(attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                                   inputs_embeds=inputs_embeds, labels=labels, use_cache=use_cache,
                                   logits_to_keep=logits_to_keep, **kwargs)

    def prepare_inputs_for_generation(self, input_ids, *args, is_first_iteration: bool | None = False, **kwargs):
        """Protein inputs go to the prefill step only when a KV cache is used (DESIGN 2.7)."""
        inputs = super().prepare_inputs_for_generation(input_ids, *args, is_first_iteration=is_first_iteration,
                                                       **kwargs)
        if not is_first_iteration and kwargs.get("use_cache", True):
            for key in PROTEIN_INPUTS:
                inputs.pop(key, None)
        return inputs
