"""Batched inference with a SEPIT model (DESIGN 2.7): generation (left-padded, KV cache, greedy by default)
and likelihood scoring of closed-set options (gives a probability per option).

An *item* is a dict with ``sequence``, ``question``, optional ``coords`` [L, 3] (NaN rows = missing),
``plddt`` [L], ``choices`` (list of options) and ``context`` (retrieved evidence, rendered by
:func:`sepit.prompts.format_context`; None without retrieval). The prompt is :func:`sepit.prompts.format_question`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from sepit.prompts import format_question


@dataclass
class GenerationSettings:
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float = 1.0
    use_cache: bool = True

    def kwargs(self) -> dict:
        out = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample, "use_cache": self.use_cache,
               "repetition_penalty": self.repetition_penalty}
        if self.do_sample:
            out.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            out.update(temperature=None, top_p=None, top_k=None)
        return out


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _inputs(processor, items: Sequence[dict], answers: list[str] | None, side: str, device) -> dict:
    batch = processor([it["sequence"] for it in items],
                      questions=[format_question(it["question"], it.get("choices"), it.get("context")) for it in items],
                      answers=answers, coords=[it.get("coords") for it in items],
                      plddt=[it.get("plddt") for it in items], padding_side=side)
    return {k: v.to(device) for k, v in batch.items()}


@torch.inference_mode()
def generate_answers(model, processor, items: Sequence[dict], settings: GenerationSettings | None = None,
                     batch_size: int = 8) -> list[str]:
    """Generated continuation per item (never the prompt), batched with left padding."""
    settings = settings or GenerationSettings()
    device = next(model.parameters()).device
    out: list[str] = []
    for chunk in batches(items, batch_size):
        inputs = _inputs(processor, chunk, None, "left", device)
        generated = model.generate(**inputs, **settings.kwargs())
        out.extend(t.strip() for t in processor.decode_continuation(generated, inputs["input_ids"]))
    return out


def _answer_logprob(logits_BTV: torch.Tensor, labels_BT: torch.Tensor) -> torch.Tensor:
    """Sum of log-probabilities of the labelled (answer) tokens per row: [B]."""
    logp_BTV = torch.log_softmax(logits_BTV[:, :-1].float(), dim=-1)
    target_BT = labels_BT[:, 1:]
    keep_BT = target_BT != -100
    picked_BT = logp_BTV.gather(-1, target_BT.clamp(min=0)[..., None])[..., 0]
    return (picked_BT * keep_BT).sum(dim=1)


@torch.inference_mode()
def score_options(model, processor, items: Sequence[dict], batch_size: int = 8) -> list[dict[str, float]]:
    """P(option | protein, question) per item: softmax over the options' answer log-likelihoods."""
    device = next(model.parameters()).device
    pairs = [(i, opt) for i, it in enumerate(items) for opt in it["choices"]]
    scores: list[float] = []
    for chunk in batches(pairs, batch_size):
        rows = [items[i] for i, _ in chunk]
        inputs = _inputs(processor, rows, [opt for _, opt in chunk], "right", device)
        labels = inputs.pop("labels")
        logits = model(**inputs, use_cache=False).logits
        scores.extend(_answer_logprob(logits, labels).tolist())
    out: list[dict[str, float]] = [{} for _ in items]
    for (i, opt), s in zip(pairs, scores, strict=True):
        out[i][opt] = s
    return [_softmax(d) for d in out]


def _softmax(logps: dict[str, float]) -> dict[str, float]:
    values = torch.softmax(torch.tensor(list(logps.values())), dim=0).tolist()
    return {k: round(v, 6) for k, v in zip(logps, values, strict=True)}
