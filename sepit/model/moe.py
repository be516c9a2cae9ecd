"""Sparse upcycling of the LLM (DESIGN 2.6): dense Llama/Mistral -> the equivalent ``MixtralForCausalLM``.

Every feed-forward block becomes E experts that are exact copies of it plus a fresh router (top-k, k=1 in
the paper). Attention, norms and embeddings are copied unchanged, so with identical experts the upcycled
model computes the dense model's function whatever the router weights (the top-k weights are renormalised
to sum to 1). Mixtral stores experts fused: ``mlp.experts.gate_up_proj`` [E, 2I, H] (gate rows, then up),
``mlp.experts.down_proj`` [E, H, I]; router ``mlp.gate.weight`` [E, H]. ``output_router_logits=True``
makes Mixtral add ``router_aux_loss_coef * aux_loss`` to the LM loss (original bug #4 never added it).

Top-1 routing with a task gradient: Mixtral renormalises the top-k weights, so at k = 1 the weight is p / p = 1
and the LM loss gives the router no gradient (only the load-balancing loss moved it). The upcycled LLM is a
:class:`SepitMixtralForCausalLM` (model type ``sepit_mixtral``, registered with the Auto classes): Mixtral's
modules, with :class:`StraightThroughRouter` as every block's router. At k = 1 its weight is p / p.detach():
still exactly 1 in the forward pass (identical experts = the dense model), but d weight / d p = 1 / p, so
d loss / d router logit_j = g (1[j = e] - p_j) with g = <d loss / d output, expert e's output> (the
Switch-Transformer gradient). For k > 1 it is Mixtral's renormalised weighting unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import MixtralConfig, MixtralForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.initialization import no_init_weights
from transformers.models.mixtral.modeling_mixtral import MixtralTopKRouter

from sepit.errors import ConfigError

DENSE_TYPES = ("llama", "mistral")


class StraightThroughRouter(MixtralTopKRouter):
    """Mixtral's top-k router; at k = 1 the expert weight is p / p.detach() (value 1, gradient 1 / p)."""

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden_SH = hidden_states.reshape(-1, self.hidden_dim)
        logits_SE = F.linear(hidden_SH, self.weight)
        probs_SE = torch.softmax(logits_SE.float(), dim=-1)
        top_SK, index_SK = torch.topk(probs_SE, self.top_k, dim=-1)
        denom_S1 = top_SK.detach() if self.top_k == 1 else top_SK.sum(dim=-1, keepdim=True)
        return logits_SE, top_SK / denom_S1, index_SK


class SepitMixtralConfig(MixtralConfig):
    """``MixtralConfig`` under its own model type, so Auto classes rebuild :class:`SepitMixtralForCausalLM`."""

    model_type = "sepit_mixtral"


class SepitMixtralForCausalLM(MixtralForCausalLM):
    """``MixtralForCausalLM`` whose routers are :class:`StraightThroughRouter` (same parameter names)."""

    config_class = SepitMixtralConfig

    def __init__(self, config: SepitMixtralConfig):
        super().__init__(config)
        for layer in self.model.layers:
            old = layer.mlp.gate
            layer.mlp.gate = StraightThroughRouter(config)
            layer.mlp.gate.weight = old.weight  # keeps its initialisation (or the loaded weights)


def register() -> None:
    """Idempotent registration with ``AutoConfig`` / ``AutoModelForCausalLM`` (called by ``sepit.model.auto``)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    AutoConfig.register(SepitMixtralConfig.model_type, SepitMixtralConfig, exist_ok=True)
    AutoModelForCausalLM.register(SepitMixtralConfig, SepitMixtralForCausalLM, exist_ok=True)


def mixtral_config_from_dense(dense: PretrainedConfig, num_experts: int, top_k: int,
                              aux_coef: float) -> SepitMixtralConfig:
    """The Mixtral config with the dense config's attention/MLP/rope/tying fields and MoE settings."""
    if dense.model_type not in DENSE_TYPES:
        raise ConfigError(f"MoE upcycling supports {DENSE_TYPES} LLMs, got {dense.model_type!r}")
    for flag in ("attention_bias", "mlp_bias"):
        if getattr(dense, flag, False):
            raise ConfigError(f"cannot upcycle: Mixtral has no biases but the LLM has {flag}=True")
    if not 1 <= top_k <= num_experts:
        raise ConfigError(f"top_k must be in 1..num_experts ({num_experts}), got {top_k}")
    copied = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "hidden_act", "max_position_embeddings", "initializer_range",
              "rms_norm_eps", "use_cache", "pad_token_id", "bos_token_id", "eos_token_id",
              "tie_word_embeddings", "attention_dropout")
    kwargs = {name: getattr(dense, name) for name in copied}
    kwargs["head_dim"] = getattr(dense, "head_dim", None) or dense.hidden_size // dense.num_attention_heads
    kwargs["rope_parameters"] = dict(dense.rope_parameters)
    kwargs["sliding_window"] = getattr(dense, "sliding_window", None)
    config = SepitMixtralConfig(num_local_experts=num_experts, num_experts_per_tok=top_k, output_router_logits=True,
                           router_aux_loss_coef=aux_coef, router_jitter_noise=0.0, **kwargs)
    config._attn_implementation = dense._attn_implementation
    return config


def upcycle_state_dict(dense_sd: dict[str, torch.Tensor], num_layers: int, num_experts: int,
                       router_std: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Dense Llama state dict -> Mixtral state dict (experts = copies of each MLP, random routers)."""
    out = {k: v for k, v in dense_sd.items() if ".mlp." not in k}
    for i in range(num_layers):
        p = f"model.layers.{i}.mlp."
        gate_IH, up_IH, down_HI = (dense_sd[p + f"{n}.weight"] for n in ("gate_proj", "up_proj", "down_proj"))
        gate_up_2IH = torch.cat([gate_IH, up_IH], dim=0)
        out[p + "experts.gate_up_proj"] = gate_up_2IH[None].repeat(num_experts, 1, 1)  # (E, 2I, H)
        out[p + "experts.down_proj"] = down_HI[None].repeat(num_experts, 1, 1)  # (E, H, I)
        router_EH = torch.empty(num_experts, gate_IH.shape[1], dtype=gate_IH.dtype)
        out[p + "gate.weight"] = router_EH.normal_(0.0, router_std, generator=generator)
    return out


def upcycle_llm(dense: PreTrainedModel, num_experts: int = 4, top_k: int = 1, aux_coef: float = 0.01,
                generator: torch.Generator | None = None) -> SepitMixtralForCausalLM:
    """A new :class:`SepitMixtralForCausalLM` equal in function to ``dense`` (before router training)."""
    if any("lora_" in name for name, _ in dense.named_parameters()):
        raise ConfigError("upcycle before adding LoRA adapters (the dense LLM has LoRA weights)")
    config = mixtral_config_from_dense(dense.config, num_experts, top_k, aux_coef)
    with no_init_weights():
        moe = SepitMixtralForCausalLM(config)
    state = upcycle_state_dict(dense.state_dict(), config.num_hidden_layers, num_experts,
                               config.initializer_range, generator)
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    missing, unexpected = moe.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    moe.tie_weights()
    for module in moe.modules():  # weights are set: a later post_init() must not re-initialise them
        module._is_hf_initialized = True
    param = next(dense.parameters())
    moe.generation_config = dense.generation_config
    return moe.to(device=param.device, dtype=param.dtype).train(dense.training)


def upcycle_sepit(model, num_experts: int = 4, top_k: int = 1, aux_coef: float = 0.01,
                  generator: torch.Generator | None = None):
    """Stage 2 in place: the SEPIT model's LLM becomes a Mixtral MoE and ``config.text_config`` follows,
    so ``save_pretrained``/``from_pretrained`` give back the MoE model."""
    if model.config.is_moe:
        raise ConfigError("the model's LLM is already a mixture of experts")
    moe = upcycle_llm(model.language_model, num_experts, top_k, aux_coef, generator)
    model.language_model = moe
    model.config.text_config = moe.config
    model.post_init()  # re-collect tied keys / plans of the new LLM (initialised modules are kept)
    return model
