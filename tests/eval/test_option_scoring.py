"""One option-likelihood function (issue 10 item 2, issue 12 item 6): the prompt runs once per item and options
are scored against its KV cache; scores equal the per-option full forward; cancellation; length options."""

import math

import pytest
import torch

from sepit.errors import Cancelled
from sepit.eval.generate import answer_token_ids, option_logprobs, score_options, score_options_per_option
from sepit.model.moe import upcycle_sepit
from tests.model.tiny_sepit import random_coords, tiny_sepit

ITEMS = [
    {"sequence": "MKTAYIAKQRQISFVKSHFSRQ", "question": "Does it bind heme?", "choices": ["yes", "no"],
     "coords": random_coords(22)},
    {"sequence": "MKV", "question": "Where is it?",
     "choices": ["nucleus", "outer membrane of the cell", "cytoplasm, mostly near the membrane", "secreted"]},
    {"sequence": "GAVLIPFGAVLIPF", "question": "Which enzyme class?",
     "choices": ["EC 1", "EC 2.7.11.1 (a serine/threonine kinase)", "EC 3"]},
]


def _model(moe: bool):
    model, proc = tiny_sepit(seed=3)
    if moe:
        upcycle_sepit(model, num_experts=4, top_k=1)
        with torch.no_grad():  # distinct experts and routers, so routing matters
            for name, p in model.language_model.named_parameters():
                if "experts" in name or "mlp.gate" in name:
                    p.add_(torch.randn_like(p) * 0.05)
    return model.eval(), proc


@pytest.mark.parametrize("moe", [False, True])
def test_cached_scores_equal_the_per_option_forward(moe):
    model, proc = _model(moe)
    fast = score_options(model, proc, ITEMS, batch_size=3)
    slow = score_options_per_option(model, proc, ITEMS, batch_size=4)
    for a, b, it in zip(fast, slow, ITEMS, strict=True):
        assert list(a) == it["choices"]
        assert [a[c] for c in it["choices"]] == pytest.approx([b[c] for c in it["choices"]], abs=1e-5)
        assert max(b.values()) - min(b.values()) > 1e-3  # the options really differ, so the check can fail
    one_by_one = [score_options(model, proc, [it])[0] for it in ITEMS]
    assert [list(d.values()) for d in one_by_one] == [pytest.approx(list(d.values()), abs=1e-5) for d in fast]


def test_option_tokens_are_the_processors_labels_with_end_of_turn():
    _, proc = tiny_sepit()
    tok = proc.tokenizer
    for answer in ["yes", "outer membrane of the cell"]:
        ids = answer_token_ids(tok, "Where?", [answer])[0]
        labels = proc(["MKV"], questions=["Where?"], answers=[answer])["labels"][0]
        assert ids == [t for t in labels.tolist() if t != -100]
        assert ids[-1] == tok.eos_token_id and tok.decode(ids[:-1]) == answer


def test_mean_normalisation_divides_by_the_token_count():
    model, proc = _model(False)
    tok = proc.tokenizer
    from sepit.eval.generate import sepit_inputs
    from sepit.prompts import format_question

    it = ITEMS[1]
    opts = [answer_token_ids(tok, format_question(it["question"], it["choices"]), it["choices"])]
    inputs = sepit_inputs(proc, [it], "cpu")
    total = option_logprobs(model, inputs, opts)[0]
    mean = option_logprobs(model, inputs, opts, normalize="mean")[0]
    for s, m, ids in zip(total, mean, opts[0], strict=True):
        assert m == pytest.approx(s / len(ids), rel=1e-6) and s < 0
    with pytest.raises(ValueError, match="normalize"):
        option_logprobs(model, inputs, opts, normalize="max")


def test_stop_cancels_before_any_forward_and_between_forwards():
    model, proc = _model(False)
    calls = []

    def stop_second_time():
        calls.append(1)
        return len(calls) >= 3  # chunk check, prompt forward, then the options forward is cancelled

    with pytest.raises(Cancelled):
        score_options(model, proc, ITEMS[:1], stop=lambda: True)
    with pytest.raises(Cancelled):
        score_options(model, proc, ITEMS[:1], stop=stop_second_time)
    assert len(calls) == 3
    probs = score_options(model, proc, ITEMS[:1], stop=lambda: False)[0]
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-5)
