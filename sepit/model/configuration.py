"""``SepitConfig``: one config for the whole SEPIT model (DESIGN 2.4-2.6), saved as ``config.json``.

It composes, like ``LlavaConfig``:
- ``encoder_config``: the structure-aware ESM-2 encoder (:class:`SepitEncoderConfig`, DESIGN 2.1);
- ``text_config``: any causal LLM config (resolved through ``AutoConfig`` by its ``model_type``); a
  ``MixtralConfig`` after MoE upcycling (DESIGN 2.6), which then holds the MoE settings
  (``num_local_experts``, ``num_experts_per_tok``, ``router_aux_loss_coef``);
- the bridge: placeholder token ids, pooling stride, feature layer, projector activation;
- ``lora``: the PEFT ``LoraConfig`` (as a dict) applied to the LLM, so a LoRA model reloads as saved.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from sepit.model.encoder import SepitEncoderConfig, special_token_ids

PROTEIN_TOKEN = "<protein>"
PROTEIN_START_TOKEN = "<protein_start>"
PROTEIN_END_TOKEN = "<protein_end>"


class SepitConfig(PretrainedConfig):
    """Encoder + projector + LLM. ``protein_pool_stride`` s maps n residues to ceil(n/s) LLM positions."""

    model_type = "sepit"
    sub_configs_defaults = {
        "encoder_config": SubConfigSpec(config_class=SepitEncoderConfig),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    encoder_config: dict | PretrainedConfig | None = None
    text_config: dict | PretrainedConfig | None = None
    protein_token_id: int | None = None
    protein_start_token_id: int | None = None
    protein_end_token_id: int | None = None
    protein_pool_stride: int = 1
    protein_feature_layer: int = -2
    projector_hidden_act: str = "gelu"
    lora: dict | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.protein_pool_stride < 1:
            raise ValueError(f"protein_pool_stride must be >= 1, got {self.protein_pool_stride}")
        # as LlavaConfig: the LLM's own tying decides (SmolLM2 ties its input and output embeddings)
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))

    @property
    def is_moe(self) -> bool:
        return getattr(self.text_config, "num_local_experts", None) is not None

    @property
    def protein_special_ids(self) -> tuple[int, ...]:
        """ESM token ids that are not residues: CLS, EOS, padding."""
        return special_token_ids(self.encoder_config.esm_config)
