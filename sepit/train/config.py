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
from sepit.generation_defaults import GENERATION_DEFAULTS
from sepit.retrieval.config import RetrievalSpec

PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"
PRESETS = ("debug", "demo", "paper")


@dataclass
class EncoderSpec:
    """Protein encoder: an ESM-2 architecture by size (random init) or pretrained weights (hub id/folder)."""
    size: str = "tiny"
    """ESM-2 architecture of a randomly initialised encoder (a name in `sepit.model.esm_tokenizer.ESM_SIZES`)."""
    pretrained: str | None = None
    """ESM-2 weights to start from (hub id or local folder); overrides `size`."""
    num_kernels: int = 128
    """Gaussian distance kernels of the structure bias (DESIGN 2.2)."""
    struct_embed_scale: float = 0.01
    """Scale of the structure embedding added to residue embeddings at initialisation."""
    use_plddt: bool = False
    """Weight structure-bias pairs by pLDDT / 100 (pLDDT unknown -> weight 1)."""
    attn_implementation: Literal["eager", "sdpa"] = "sdpa"
    """Encoder attention kernel: eager or sdpa."""


@dataclass
class LLMSpec:
    """Causal LLM: ``tiny`` (random 2-layer Llama with the SmolLM2 tokenizer), ``smollm2-135m-instruct``,
    a hub id or a local folder."""
    name: str = "tiny"
    """The LLM: tiny, smollm2-135m-instruct, a hub id or a local folder."""


@dataclass
class LoraSpec:
    enabled: bool = False
    """Adapt the LLM with LoRA instead of tuning all its weights."""
    r: int = 8
    """LoRA rank."""
    alpha: int = 16
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """LLM linear layers that get LoRA adapters."""


@dataclass
class MoESpec:
    """Sparse upcycling for stage 2 (DESIGN 2.6); ``num_experts: 0`` keeps the LLM dense."""
    num_experts: int = 4
    """Experts per MoE layer after upcycling in stage 2; 0 keeps the LLM dense."""
    top_k: int = 1
    """Experts each token is routed to."""
    aux_coef: float = 0.01
    """Weight of the router load-balancing loss."""


@dataclass
class GenerationSpec:
    """Decoding defaults written into the trained model's generation config (``sepit.generation_defaults``)."""
    repetition_penalty: float = GENERATION_DEFAULTS["repetition_penalty"]
    """Repetition penalty (1.0 = none)."""
    no_repeat_ngram_size: int = GENERATION_DEFAULTS["no_repeat_ngram_size"]
    """No n-gram of this size is generated twice in one answer (0 = off); guards against loops."""


@dataclass
class DataSpec:
    """Which items of a built dataset (``sepit data build``) a stage trains on. Proteins longer than
    ``max_residues`` are cropped to a window of that many residues: ``crop_window: start`` keeps the first ones,
    ``random`` draws the window's start uniformly each time the protein is batched, ``features`` centres it on one
    of the protein's annotated features (flat-file FT lines, stored by ``sepit data build``) drawn each time, or a
    random window when it has none."""
    dataset: str = ""
    """Built dataset folder for this stage; empty = the top-level `dataset`."""
    split: str = "train"
    """Split of the dataset to train on."""
    tasks: list[str] = field(default_factory=list)
    """Instruction tasks to keep (caption, open, closed); empty = all."""
    max_items: int | None = None
    """Use at most this many items (a deterministic subset); null = all."""
    max_residues: int = 1024
    """Proteins longer than this are cropped to this many residues."""
    crop_window: Literal["start", "random", "features"] = "start"
    """Which max_residues residues a longer protein keeps: the first ones, a random window each time, or a window
    centred on one of its annotated features (random when it has none)."""


@dataclass
class OptimSpec:
    """Learning rates: ``lr`` for new modules (structure, projector, heads); encoder and LLM scaled.

    ``structure_lr_scale`` (stage 0): the structure module (distance kernels, bias MLP, structural embedding) at
    ``lr * structure_lr_scale``; at a small ``lr`` the denoising loss sits at its trivial value for 100+ steps
    (docs/results/denoise.md)."""
    lr: float = 1e-4
    """Learning rate of new modules (structure bias, projector, warm-up heads)."""
    encoder_lr_scale: float = 0.1
    """Encoder learning rate = lr x this."""
    llm_lr_scale: float = 0.1
    """LLM (or LoRA/router) learning rate = lr x this."""
    structure_lr_scale: float = 1.0
    """Stage 0: structure module learning rate = lr x this."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.0
    """Fraction of the steps spent in learning-rate warm-up."""
    scheduler: str = "cosine"
    """Learning-rate schedule (a transformers scheduler name: cosine, linear, constant, ...)."""
    epochs: float = 1.0
    """Passes over the stage's items (fractions allowed)."""
    max_steps: int = -1
    """Optimizer steps; > 0 overrides epochs."""
    batch_size: int = 4
    """Items per device per step."""
    grad_accum: int = 1
    """Gradient accumulation steps (effective batch = batch_size x grad_accum x devices)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory."""
    length_grouping: bool = True
    """Batch items of similar length together (less padding)."""


@dataclass
class EvalSpec:
    """Loss on held-out items every ``steps`` optimizer steps (``metrics.jsonl``: ``eval_loss``, and the loss
    plot); with ``keep_best`` the stage's final model is the checkpoint with the best ``metric`` (the HF
    Trainer's ``load_best_model_at_end``; checkpoints are then saved every ``steps`` as well)."""
    steps: int = 0
    """Evaluate every this many optimizer steps; 0 = no evaluation."""
    split: str = "valid"
    """Held-out split of the dataset to evaluate on."""
    max_items: int | None = 64
    """Seeded sample of this many of the split's items (of the stage's tasks); null = all."""
    keep_best: bool = False
    """The stage's final model is the checkpoint with the best `metric` (needs steps > 0)."""
    metric: str = "eval_loss"
    """Metric that picks the best checkpoint."""
    greater_is_better: bool = False
    """Whether a larger `metric` is better."""


@dataclass
class StageSpec:
    data: DataSpec = field(default_factory=DataSpec)
    """Which items this stage trains on."""
    optim: OptimSpec = field(default_factory=OptimSpec)
    """Optimizer and schedule of this stage."""
    structure_dropout: float = 0.0
    """Probability of dropping a protein's structure in a training item (sequence only)."""
    freeze_encoder: bool = False
    """Keep the protein encoder's weights fixed."""
    text_encoder: str = "minilm-l6-v2"
    """Stage 0: sentence encoder of the function texts for the contrastive loss."""
    text_max_length: int = 128
    """Stage 0: token limit of the function texts."""
    max_answer_tokens: int = 256
    """Stages 1-2: answers are cut to this many tokens."""


@dataclass
class TrainConfig:
    name: str = "debug"
    """Run name (shown in logs and reports)."""
    output_dir: str = "runs/debug"
    """Run folder; stage N writes <output_dir>/stage<N>/."""
    dataset: str = ""
    """Built dataset folder (`sepit data build`) shared by all stages."""
    seed: int = 0
    """Seed of data order, subsets, dropout and initialisation."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """auto (bf16 on GPUs that support it, else fp32), fp32, bf16 or fp16."""
    save_steps: int = 50
    """Save a checkpoint every this many steps."""
    save_total_limit: int = 2
    """Checkpoints kept per stage."""
    logging_steps: int = 1
    """Log losses every this many steps."""
    dataloader_workers: int = 0
    """DataLoader worker processes (the store is memory-mapped, shared by fork); 0 keeps the collator in the
    training process, where structure dropout draws from the RNG that checkpoints save (exact resume)."""
    deepspeed: str | None = None
    """DeepSpeed config file (e.g. sepit/configs/deepspeed_zero2.json); null = none."""
    pooling_stride: int = 1
    """Residue features averaged in windows of this many residues before the projector."""
    eval: EvalSpec = field(default_factory=EvalSpec)
    """Held-out loss during training and best-checkpoint selection."""
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    """Protein encoder."""
    llm: LLMSpec = field(default_factory=LLMSpec)
    """Language model."""
    lora: LoraSpec = field(default_factory=LoraSpec)
    """LoRA on the LLM (stages 1-2)."""
    moe: MoESpec = field(default_factory=MoESpec)
    """Mixture-of-experts upcycling (stage 2)."""
    stage0: StageSpec = field(default_factory=StageSpec)
    """Stage 0: encoder warm-up (structure denoising + protein-text contrastive)."""
    stage1: StageSpec = field(default_factory=StageSpec)
    """Stage 1: caption tuning."""
    stage2: StageSpec = field(default_factory=StageSpec)
    """Stage 2: MoE upcycling and open/closed question tuning."""
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    """Decoding defaults saved with the trained model (generation_config.json)."""
    retrieval: RetrievalSpec = field(default_factory=RetrievalSpec)
    """Evidence from annotated homologs in the prompts (stages 1 and 2; `sepit index build`)."""

    def __post_init__(self) -> None:
        if self.generation.repetition_penalty <= 0 or self.generation.no_repeat_ngram_size < 0:
            raise ConfigError("generation.repetition_penalty must be > 0 and generation.no_repeat_ngram_size >= 0")
        self._check_names()
        if self.pooling_stride < 1:
            raise ConfigError(f"pooling_stride must be >= 1, got {self.pooling_stride}")
        if self.dataloader_workers < 0:
            raise ConfigError(f"dataloader_workers must be >= 0, got {self.dataloader_workers}")
        if self.moe.num_experts and not 1 <= self.moe.top_k <= self.moe.num_experts:
            raise ConfigError(f"moe.top_k={self.moe.top_k} must be in [1, moe.num_experts={self.moe.num_experts}]")
        if self.eval.steps < 0 or (self.eval.keep_best and self.eval.steps == 0):
            raise ConfigError(f"eval.steps must be >= 0 and > 0 with eval.keep_best, got {self.eval.steps}")
        for n in (0, 1, 2):
            st = self.stage(n)
            if not 0.0 <= st.structure_dropout <= 1.0:
                raise ConfigError(f"stage{n}.structure_dropout must be in [0, 1], got {st.structure_dropout}")
            o = st.optim
            if o.lr <= 0 or o.batch_size < 1 or o.grad_accum < 1 or (o.epochs <= 0 and o.max_steps <= 0):
                raise ConfigError(f"stage{n}.optim: lr, batch_size, grad_accum and epochs/max_steps must be positive")
            if st.data.max_residues < 8:
                raise ConfigError(f"stage{n}.data.max_residues={st.data.max_residues} is too small")

    def _check_names(self) -> None:
        """``encoder.size`` and each ``stageN.optim.scheduler`` must be known names (checked before any work)."""
        from transformers import SchedulerType

        from sepit.model.esm_tokenizer import ESM_SIZES

        if self.encoder.size not in ESM_SIZES:
            raise ConfigError(f"encoder.size: unknown ESM-2 size {self.encoder.size!r}; choose one of "
                              f"{list(ESM_SIZES)}")
        schedulers = [s.value for s in SchedulerType]
        for n in (0, 1, 2):
            if self.stage(n).optim.scheduler not in schedulers:
                raise ConfigError(f"stage{n}.optim.scheduler: unknown scheduler {self.stage(n).optim.scheduler!r};"
                                  f" choose one of {schedulers}")

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
