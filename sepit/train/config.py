"""Typed training configuration: one YAML file per preset holds the shared model choices and one section per
stage. ``sepit train --stage N --config FILE [--key.sub value ...]``.

Presets (``sepit/configs/*.yaml``), smallest first: ``debug`` (tiny random encoder and LLM, seconds),
``demo`` (SmolLM2-135M-Instruct + an ESM-2 t6_8M architecture, a 2-core CPU in minutes), ``paper`` (ESM-2 650M +
TinyLlama-1.1B-Chat, 4 experts top-1, the paper's hyper-parameters; for GPUs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sepit.config import load_config
from sepit.errors import ConfigError
from sepit.retrieval.config import RetrievalSpec

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"
PRESETS = ("debug", "demo", "paper")


@dataclass
class EncoderSpec:
    """Protein encoder: an ESM-2 architecture by size (random init) or pretrained weights (hub id/folder)."""
    size: str = "tiny"
    pretrained: str | None = None
    num_kernels: int = 128
    struct_embed_scale: float = 0.01
    use_plddt: bool = False
    attn_implementation: Literal["eager", "sdpa"] = "sdpa"


@dataclass
class LLMSpec:
    """Causal LLM: ``tiny`` (random 2-layer Llama with the SmolLM2 tokenizer), ``smollm2-135m-instruct``,
    a hub id or a local folder."""
    name: str = "tiny"


@dataclass
class LoraSpec:
    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class MoESpec:
    """Sparse upcycling for stage 2 (DESIGN 2.6); ``num_experts: 0`` keeps the LLM dense."""
    num_experts: int = 4
    top_k: int = 1
    aux_coef: float = 0.01


@dataclass
class DataSpec:
    """Which items of a built dataset (``sepit data build``) a stage trains on."""
    dataset: str = ""
    split: str = "train"
    tasks: list[str] = field(default_factory=list)
    max_items: int | None = None
    max_residues: int = 1024


@dataclass
class OptimSpec:
    """Learning rates: ``lr`` for new modules (structure, projector, heads); encoder and LLM scaled."""
    lr: float = 1e-4
    encoder_lr_scale: float = 0.1
    llm_lr_scale: float = 0.1
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    scheduler: str = "cosine"
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    length_grouping: bool = True


@dataclass
class StageSpec:
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    structure_dropout: float = 0.0
    freeze_encoder: bool = False
    text_encoder: str = "minilm-l6-v2"
    text_max_length: int = 128
    max_answer_tokens: int = 256


@dataclass
class TrainConfig:
    name: str = "debug"
    output_dir: str = "runs/debug"
    dataset: str = ""
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    save_steps: int = 50
    save_total_limit: int = 2
    logging_steps: int = 1
    deepspeed: str | None = None
    pooling_stride: int = 1
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    llm: LLMSpec = field(default_factory=LLMSpec)
    lora: LoraSpec = field(default_factory=LoraSpec)
    moe: MoESpec = field(default_factory=MoESpec)
    stage0: StageSpec = field(default_factory=StageSpec)
    stage1: StageSpec = field(default_factory=StageSpec)
    stage2: StageSpec = field(default_factory=StageSpec)
    retrieval: RetrievalSpec = field(default_factory=RetrievalSpec)  # evidence in prompts (stages 1 and 2)

    def __post_init__(self) -> None:
        if self.pooling_stride < 1:
            raise ConfigError(f"pooling_stride must be >= 1, got {self.pooling_stride}")
        if self.moe.num_experts and not 1 <= self.moe.top_k <= self.moe.num_experts:
            raise ConfigError(f"moe.top_k={self.moe.top_k} must be in [1, moe.num_experts={self.moe.num_experts}]")
        for n in (0, 1, 2):
            st = self.stage(n)
            if not 0.0 <= st.structure_dropout <= 1.0:
                raise ConfigError(f"stage{n}.structure_dropout must be in [0, 1], got {st.structure_dropout}")
            o = st.optim
            if o.lr <= 0 or o.batch_size < 1 or o.grad_accum < 1 or (o.epochs <= 0 and o.max_steps <= 0):
                raise ConfigError(f"stage{n}.optim: lr, batch_size, grad_accum and epochs/max_steps must be positive")
            if st.data.max_residues < 8:
                raise ConfigError(f"stage{n}.data.max_residues={st.data.max_residues} is too small")

    def stage(self, n: int) -> StageSpec:
        if n not in (0, 1, 2):
            raise ConfigError(f"stage must be 0, 1 or 2, got {n}")
        return getattr(self, f"stage{n}")

    def stage_dir(self, n: int) -> Path:
        return Path(self.output_dir) / f"stage{n}"

    def model_dir(self, n: int) -> Path:
        """The stage's final model folder (the next stage starts from it)."""
        return self.stage_dir(n) / "model"

    def dataset_dir(self, n: int) -> Path:
        """``stageN.data.dataset``, else the shared ``dataset``; it must be a built dataset folder."""
        path = self.stage(n).data.dataset or self.dataset
        if not path:
            raise ConfigError(f"no dataset for stage {n}: set dataset (or stage{n}.data.dataset) to a folder "
                              "built by `sepit data build`")
        if not (Path(path) / "instructions").is_dir():
            raise ConfigError(f"dataset folder {path} is not a built sepit dataset (no instructions/ inside)")
        return Path(path)


def preset_path(name: str) -> Path:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {list(PRESETS)} or pass a YAML file")
    return PRESET_DIR / f"{name}.yaml"


def load_train_config(config: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """``config`` is a preset name or a YAML path; overrides are ``key.sub=value`` strings."""
    path = preset_path(str(config)) if str(config) in PRESETS else Path(config)
    return load_config(TrainConfig, path, overrides)
