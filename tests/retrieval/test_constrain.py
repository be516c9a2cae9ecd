"""Logits processors of answers with evidence (sepit.retrieval.constrain), on the real SmolLM2 tokenizer:
citations follow the tokenizer's own tokens of a shown accession; the n-gram guard ignores the prompt."""

from __future__ import annotations

import torch

from sepit.retrieval.constrain import AnswerNoRepeatNGram, CitationConstraint
from tests.model.tiny_sepit import smol_tokenizer

TOK = smol_tokenizer()
PROMPT = TOK("Evidence: [UniProt:P69905] heme binding. Question:", add_special_tokens=False)["input_ids"]


def _ids(text: str) -> list[int]:
    return PROMPT + TOK(text, add_special_tokens=False)["input_ids"]


def _finite_after(processor, text: str) -> set[int] | None:
    """Token ids left finite after ``text`` was generated (None: nothing masked)."""
    out = processor(torch.tensor([_ids(text)]), torch.zeros(1, len(TOK)))
    finite = torch.isfinite(out[0]).nonzero().flatten().tolist()
    return None if len(finite) == len(TOK) else set(finite)


def _greedy(processor, text: str, prefer: str, steps: int = 14) -> str:
    """Greedy steps from ``text`` with scores that strongly prefer the tokens of ``prefer`` in order."""
    ids = _ids(text)
    wanted = TOK(prefer, add_special_tokens=False)["input_ids"]
    for step in range(steps):
        scores = torch.randn(1, len(TOK), generator=torch.Generator().manual_seed(step))
        if step < len(wanted):
            scores[0, wanted[step]] = 100.0
        ids.append(int(processor(torch.tensor([ids]), scores)[0].argmax()))
        if "]" in TOK.decode(ids[len(PROMPT):])[len(text):]:
            break
    return TOK.decode(ids[len(PROMPT):])


def test_an_open_citation_follows_the_tokens_of_a_shown_accession():
    c = CitationConstraint(TOK, [["P69905", "Q9NUX5"]], prompt_length=len(PROMPT))
    canon = TOK("[UniProt:P69905]", add_special_tokens=False)["input_ids"]
    assert _finite_after(c, "It binds heme [UniProt:P6") == {canon[TOK("[UniProt:P6", add_special_tokens=False)[
        "input_ids"].__len__()]}
    # a garbled citation the model prefers ("[UniProc:MF: ...") is steered to a shown accession, canonically
    text = _greedy(c, "It binds heme", " [UniProc:MF: DNA")
    assert text.startswith("It binds heme [UniProt:") and text.endswith(("[UniProt:P69905]", "[UniProt:Q9NUX5]"))
    tail = _ids(text)[len(_ids("It binds heme")):]
    assert tail in (TOK(" [UniProt:P69905]", add_special_tokens=False)["input_ids"],
                    TOK(" [UniProt:Q9NUX5]", add_special_tokens=False)["input_ids"])
    # a required token that another processor banned stays possible
    ids = torch.tensor([_ids("It binds heme [UniProt:P6")])
    banned = torch.zeros(1, len(TOK))
    banned[0, list(_finite_after(c, "It binds heme [UniProt:P6"))] = float("-inf")
    assert torch.isfinite(c(ids, banned)[0]).sum() == 1


def test_non_citations_and_rows_without_retrieval_are_free():
    c = CitationConstraint(TOK, [["P69905"]], prompt_length=len(PROMPT))
    assert _finite_after(c, "It holds a [2Fe-2S") is None  # a bracket that is no citation
    assert _finite_after(c, "It binds heme.") is None and _finite_after(c, "See [UniProt:P69905] for") is None
    after_bracket = _finite_after(c, "It binds heme [")  # only U/u tokens other than the right one are masked
    masked = set(range(len(TOK))) - after_bracket
    assert masked and all(TOK.decode([i])[:1] in ("U", "u") for i in masked)
    assert _finite_after(CitationConstraint(TOK, [None], len(PROMPT)), "It binds heme [Uni") is None
    nothing = _finite_after(CitationConstraint(TOK, [[]], len(PROMPT)), "It binds heme [")  # no hits
    assert not any(TOK.decode([i]).startswith(("U", "u")) for i in nothing)


def test_ngram_guard_looks_at_the_answer_only():
    guard = AnswerNoRepeatNGram(3, prompt_length=len(PROMPT))
    # copying "[UniProt:P69905] heme binding" from the prompt is allowed
    assert _finite_after(guard, "[UniProt:P69905] heme") is None
    a, b, c = (TOK(w, add_special_tokens=False)["input_ids"][0] for w in (" heme", " iron", " zinc"))
    out = guard(torch.tensor([PROMPT + [a, b, c, a, b]]), torch.zeros(1, len(TOK)))
    assert set((~torch.isfinite(out[0])).nonzero().flatten().tolist()) == {c}  # "a b c" again is banned
    out = guard(torch.tensor([PROMPT + [a, b]]), torch.zeros(1, len(TOK)))
    assert torch.isfinite(out[0]).all()  # too short to repeat anything


def test_ngram_guard_equals_transformers_on_the_answer():
    from transformers import NoRepeatNGramLogitsProcessor

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 6, (3, 40), generator=gen)  # small alphabet: many repeats
    for n in (2, 3, 4):
        ours = AnswerNoRepeatNGram(n, prompt_length=10)(ids, torch.zeros(3, 6))
        theirs = NoRepeatNGramLogitsProcessor(n)(ids[:, 10:], torch.zeros(3, 6))
        assert torch.equal(ours, theirs)
