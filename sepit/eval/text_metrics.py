"""Open-ended text metrics (DESIGN.md section 4): BLEU-1..4, ROUGE-1/2/L, METEOR, paper-compatible BLEU.

All scores are fractions in [0, 1]. Per-item functions return one score per (hypothesis, reference) pair so
that any subset (a category) can be averaged without rescoring; corpus BLEU is computed per subset.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache

BLEU_ORDERS = (1, 2, 3, 4)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_TOKEN = re.compile(r"\w+|[^\w\s]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word/punctuation tokens (regex, like NLTK's wordpunct; no punkt data needed)."""
    return _TOKEN.findall(text.lower())


def bleu_weights(n: int) -> tuple[float, ...]:
    """Cumulative BLEU-n: uniform weights over 1..n-grams."""
    return tuple([1.0 / n] * n)


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Standard corpus BLEU-1..4 (sacrebleu, 13a tokenizer, one reference), as fractions."""
    from sacrebleu.metrics import BLEU

    out = {}
    for n in BLEU_ORDERS:
        scorer = BLEU(max_ngram_order=n)
        out[f"bleu{n}"] = scorer.corpus_score(list(hyps), [list(refs)]).score / 100.0
    return out


def sentence_bleu_items(hyp_tokens: Sequence[list[str]], ref_tokens: Sequence[list[str]]) -> dict[str, list]:
    """Per-item BLEU-1..4 on given tokens (NLTK ``sentence_bleu``, no smoothing), for averaging."""
    from nltk.translate.bleu_score import sentence_bleu

    out: dict[str, list[float]] = {f"bleu{n}": [] for n in BLEU_ORDERS}
    with warnings.catch_warnings():  # "0 counts of n-gram overlaps": the score is 0, as intended
        warnings.simplefilter("ignore")
        for hyp, ref in zip(hyp_tokens, ref_tokens, strict=True):
            for n in BLEU_ORDERS:
                score = sentence_bleu([ref], hyp, weights=bleu_weights(n)) if hyp and ref else 0.0
                out[f"bleu{n}"].append(float(score))
    return out


class _CachedStemTokenizer:
    """rouge-score's tokenizer with a memoised Porter stemmer (same tokens, far fewer stem calls)."""

    def __init__(self) -> None:
        from nltk.stem import porter
        from rouge_score import tokenize as rouge_tokenize

        self._tokenize = rouge_tokenize.tokenize
        self._stem = lru_cache(maxsize=200_000)(porter.PorterStemmer().stem)

    def tokenize(self, text: str) -> list[str]:
        tokens = self._tokenize(text, None)
        # rouge-score stems only tokens longer than 3 characters
        return [self._stem(t) if len(t) > 3 else t for t in tokens]


class RougeScorer:
    """ROUGE-1/2/L F1 with Porter stemming (rouge-score), built once."""

    def __init__(self) -> None:
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=_CachedStemTokenizer())

    def items(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
        for hyp, ref in zip(hyps, refs, strict=True):
            scores = self._scorer.score(ref, hyp)  # (target, prediction)
            for t in ROUGE_TYPES:
                out[t].append(scores[t].fmeasure)
        return out


class MeteorScorer:
    """METEOR (NLTK, WordNet 3.0 synonyms from the offline copy), per item on :func:`tokenize` tokens."""

    def __init__(self, wordnet=None) -> None:
        from sepit.eval.wordnet import load_wordnet

        self._wordnet = wordnet if wordnet is not None else load_wordnet()

    def items(self, hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
        from nltk.translate.meteor_score import meteor_score

        out = []
        for hyp, ref in zip(hyps, refs, strict=True):
            h, r = tokenize(hyp), tokenize(ref)
            out.append(float(meteor_score([r], h, wordnet=self._wordnet)) if h and r else 0.0)
        return out


def paper_bleu_items(
    hyps: Sequence[str], refs: Sequence[str], wordpiece: Callable[[str], list[str]]
) -> dict[str, list[float]]:
    """Paper-compatible BLEU: per-item BLEU-1..4 on the BERTScore model's WordPiece tokens (then averaged)."""
    return sentence_bleu_items([wordpiece(h) for h in hyps], [wordpiece(r) for r in refs])
