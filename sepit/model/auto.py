"""Registration with the transformers Auto classes (DESIGN 2.4; done once, on import).

After ``import sepit.model.auto`` (imported by ``sepit.model.sepit`` users through ``sepit.model``):
``AutoConfig.from_pretrained(folder)`` -> :class:`SepitConfig`, ``AutoModelForCausalLM.from_pretrained(folder)``
-> :class:`SepitForConditionalGeneration` (a causal LM conditioned on a protein), and the stage-0 encoder
``AutoModel.from_pretrained(encoder_folder)`` -> :class:`SepitEncoderModel`; the upcycled stage-2 LLM
(``sepit_mixtral``) -> :class:`sepit.model.moe.SepitMixtralForCausalLM`.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from sepit.model import moe
from sepit.model.configuration import SepitConfig
from sepit.model.encoder import SepitEncoderConfig, SepitEncoderModel
from sepit.model.sepit import SepitForConditionalGeneration


def register() -> None:
    """Idempotent: ``exist_ok`` keeps re-imports (and reloads in tests) quiet."""
    AutoConfig.register(SepitConfig.model_type, SepitConfig, exist_ok=True)
    AutoConfig.register(SepitEncoderConfig.model_type, SepitEncoderConfig, exist_ok=True)
    AutoModelForCausalLM.register(SepitConfig, SepitForConditionalGeneration, exist_ok=True)
    AutoModel.register(SepitEncoderConfig, SepitEncoderModel, exist_ok=True)
    moe.register()  # the upcycled LLM (sepit_mixtral) inside a stage-2 SepitConfig


register()
