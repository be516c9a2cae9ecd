"""Decoding defaults live in the model's generation config and the presets; ``GenerationSettings`` left at None
uses them, an explicit value overrides them; the same generation path serves sepit and the server."""

import pytest

from sepit.errors import ConfigError
from sepit.eval.generate import GenerationSettings, generate_answers, sepit_inputs
from sepit.generation_defaults import GENERATION_DEFAULTS
from sepit.train.config import PRESETS, TrainConfig, load_train_config
from tests.serve.conftest import talkative_tiny_sepit

ITEM = {"sequence": "MKTAYIAKQRQISFVKSHFSRQ", "question": "What is the function of this protein?"}


def _repeats(ids: list[int], n: int) -> bool:
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) != len(set(grams))


def test_settings_fall_back_to_the_models_generation_config():
    model, proc = talkative_tiny_sepit(seed=4)
    inputs = sepit_inputs(proc, [ITEM], "cpu")

    def new_ids(settings):
        out = model.generate(**inputs, **settings.kwargs(), min_new_tokens=40)
        return out[0, inputs["input_ids"].shape[1]:].tolist()

    model.generation_config.no_repeat_ngram_size = 0
    plain = new_ids(GenerationSettings(max_new_tokens=40))
    assert _repeats(plain, 2)  # the tiny random model loops, so the guard below is tested
    model.generation_config.no_repeat_ngram_size = 2
    assert not _repeats(new_ids(GenerationSettings(max_new_tokens=40)), 2)
    assert new_ids(GenerationSettings(max_new_tokens=40, no_repeat_ngram_size=0)) == plain
    assert "no_repeat_ngram_size" not in GenerationSettings().kwargs()
    text = generate_answers(model, proc, [ITEM], GenerationSettings(max_new_tokens=8))[0]
    assert text and "function of this protein" not in text


def test_presets_carry_the_defaults_and_bad_values_are_named():
    for name in PRESETS:
        spec = load_train_config(name).generation
        assert (spec.repetition_penalty, spec.no_repeat_ngram_size) == (
            GENERATION_DEFAULTS["repetition_penalty"], GENERATION_DEFAULTS["no_repeat_ngram_size"])
    assert TrainConfig().generation.repetition_penalty == GENERATION_DEFAULTS["repetition_penalty"]
    with pytest.raises(ConfigError, match="repetition_penalty"):
        load_train_config("debug", ["generation.repetition_penalty=0"])
