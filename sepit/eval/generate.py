"""Batched inference (DESIGN 2.7): the one answer-generation path and the one option-likelihood function,
shared by sepit (``ask``, ``predict``, the server) and the LLM-alone baseline.

- :func:`generate_continuations`: ``model.generate`` on left-padded prompts (KV cache, greedy by default); the
  decoded new tokens only, never the prompt. Works for any causal LM; SEPIT adds its protein inputs.
- :func:`option_logprobs`: log-likelihood of closed-set options. The prompt (protein encoder included) runs once
  per item; every option is then scored against a copy of its item's cached prefix, all options of a batch in
  one forward. An option's tokens are the assistant turn as the chat template renders it, through the
  end-of-turn token (:func:`answer_token_ids`: exactly the processor's training labels), so the score says how
  likely the model is to answer exactly this and stop.
- :func:`score_options`: SEPIT items -> P(option | protein, question) (softmax over options).

An *item* is a dict with ``sequence``, ``question``, optional ``coords`` [L, 3] (NaN rows = missing),
``plddt`` [L], ``choices`` (list of options) and ``context`` (retrieved evidence, rendered by
:func:`sepit.prompts.format_context`; None without retrieval). The prompt is :func:`sepit.prompts.format_question`.
Shapes: B items, P prompt tokens, N (item, option) pairs, K option tokens, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from sepit.errors import Cancelled
from sepit.prompts import format_question

LengthNorm = Literal["sum", "mean"]
StopFn = Callable[[], bool]


@dataclass
class GenerationSettings:
    """Decoding settings. ``repetition_penalty`` / ``no_repeat_ngram_size`` left at None use the model's
    generation config (the loop guards of :mod:`sepit.generation_defaults`)."""

    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    use_cache: bool = True

    def kwargs(self) -> dict:
        out = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample, "use_cache": self.use_cache}
        for key in ("repetition_penalty", "no_repeat_ngram_size"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.do_sample:
            out.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            out.update(temperature=None, top_p=None, top_k=None)
        return out


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sepit_inputs(processor, items: Sequence[dict], device, side: str = "left", answers: list[str] | None = None
                 ) -> dict:
    """Model inputs of SEPIT items (prompt only, or with ``answers`` and their labels)."""
    batch = processor([it["sequence"] for it in items],
                      questions=[format_question(it["question"], it.get("choices"), it.get("context"))
                                 for it in items],
                      answers=answers, coords=[it.get("coords") for it in items],
                      plddt=[it.get("plddt") for it in items], padding_side=side)
    return {k: v.to(device) for k, v in batch.items()}


# --- generation ---
@torch.inference_mode()
def generate_continuations(model, tokenizer, inputs: dict, settings: GenerationSettings | None = None,
                           citable: Sequence[list[str] | None] | None = None, **extra
                           ) -> tuple[list[str], torch.Tensor]:
    """``model.generate`` on left-padded ``inputs`` (input_ids [B, P] + any model inputs); ``extra`` goes to
    ``generate`` (streamer, stopping criteria). ``citable[b]``: accessions row b may cite (its evidence; None: no
    retrieval). The n-gram loop guard (``no_repeat_ngram_size``, from ``settings`` or the model's generation
    config) looks at the answer only, so that an answer may copy a hit's annotation from the prompt
    (:mod:`sepit.retrieval.constrain`). Returns the stripped text of the new tokens per row and the new token ids
    [B, N_new]."""
    from transformers import LogitsProcessorList

    from sepit.retrieval.constrain import AnswerNoRepeatNGram, CitationConstraint

    settings = settings or GenerationSettings()
    kwargs, prompt_len = settings.kwargs(), inputs["input_ids"].shape[1]
    n = kwargs.get("no_repeat_ngram_size", getattr(model.generation_config, "no_repeat_ngram_size", 0)) or 0
    processors = LogitsProcessorList(extra.pop("logits_processor", []))
    if n > 0:
        kwargs["no_repeat_ngram_size"] = 0
        processors.append(AnswerNoRepeatNGram(n, prompt_len))
    if citable is not None and any(a is not None for a in citable):
        processors.append(CitationConstraint(tokenizer, list(citable), prompt_len))
    generated_BT = model.generate(**inputs, **kwargs, logits_processor=processors, **extra)
    new_BN = generated_BT[:, prompt_len:]  # continuation only, never the prompt
    return [t.strip() for t in tokenizer.batch_decode(new_BN, skip_special_tokens=True)], new_BN


def generate_answers(model, processor, items: Sequence[dict], settings: GenerationSettings | None = None,
                     batch_size: int = 8) -> list[str]:
    """Generated answer per SEPIT item, batched with left padding; items with ``citable`` (their evidence's
    accessions) can cite only those."""
    device = next(model.parameters()).device
    out: list[str] = []
    for chunk in batches(items, batch_size):
        out += generate_continuations(model, processor.tokenizer, sepit_inputs(processor, chunk, device), settings,
                                      citable=[it.get("citable") for it in chunk])[0]
    return out


# --- option likelihood ---
def answer_token_ids(tokenizer, question: str, answers: Sequence[str]) -> list[list[int]]:
    """Token ids of each answer as an assistant turn of the tokenizer's chat template, through its end-of-turn
    token (the processor's labels for that answer): the template renders the turn after the generation
    prompt, the ids are the full chat's minus the prompt's."""
    user = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    out = []
    for answer in answers:
        full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": answer}], tokenize=False)
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        if not full.startswith(prompt) or ids[:len(prompt_ids)] != prompt_ids:
            raise ValueError(f"the chat template of {tokenizer.name_or_path!r} does not render the answer "
                             "after the generation prompt; cannot score options")
        rest = ids[len(prompt_ids):]
        ends = [k for k, t in enumerate(rest) if t == tokenizer.eos_token_id]
        out.append(rest[:ends[-1] + 1] if ends else rest)
    return out


def _check(stop: StopFn | None) -> None:
    if stop is not None and stop():
        raise Cancelled("option scoring cancelled")


@torch.inference_mode()
def option_logprobs(model, prompt: dict, options: Sequence[Sequence[Sequence[int]]], normalize: LengthNorm = "sum",
                    stop: StopFn | None = None) -> list[list[float]]:
    """Log-likelihood of every option of every item after its prompt.

    ``prompt``: left-padded ``input_ids``/``attention_mask`` [B, P] plus any other model inputs (SEPIT's protein
    inputs), on the model's device. ``options[b][k]``: token ids of option k of item b (:func:`answer_token_ids`).
    ``normalize``: "sum" (default) sums the option's token log-probabilities, end-of-turn included, i.e. the
    log-probability of the whole answer; "mean" divides by the token count (favours long options less;
    use when options differ much in length). ``stop`` is called before each forward; True raises ``Cancelled``.
    """
    if normalize not in ("sum", "mean"):
        raise ValueError(f"normalize must be 'sum' or 'mean', got {normalize!r}")
    _check(stop)
    mask_BP = prompt["attention_mask"]
    pos_BP = (mask_BP.cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
    out = model(**prompt, position_ids=pos_BP, use_cache=True, logits_to_keep=1)
    first_BV = out.logits[:, -1].float().log_softmax(-1)  # predicts each option's first token
    pairs = [(b, list(ids)) for b, opts in enumerate(options) for ids in opts]
    if any(not ids for _, ids in pairs):
        raise ValueError("an option has no tokens")
    item_N = torch.tensor([b for b, _ in pairs], device=mask_BP.device)
    width = max(len(ids) for _, ids in pairs)
    ids_NK = torch.zeros(len(pairs), width, dtype=torch.long, device=mask_BP.device)
    keep_NK = torch.zeros(len(pairs), width, dtype=torch.bool, device=mask_BP.device)
    for n, (_, ids) in enumerate(pairs):  # right padding: option tokens sit right after their prompt
        ids_NK[n, :len(ids)] = torch.tensor(ids)
        keep_NK[n, :len(ids)] = True
    picked_N = first_BV[item_N, ids_NK[:, 0]]
    if width > 1:
        cache = out.cache
        cache.batch_select_indices(item_N)  # each pair gets a copy of its item's cached prefix
        _check(stop)
        rest = model(input_ids=ids_NK[:, :-1], attention_mask=torch.cat([mask_BP[item_N], keep_NK[:, :-1]], 1),
                     position_ids=pos_BP[item_N, -1:] + 1 + torch.arange(width - 1, device=mask_BP.device),
                     cache=cache, use_cache=True).logits.float().log_softmax(-1)  # [N, K-1, V]
        later_NK = rest.gather(-1, ids_NK[:, 1:, None])[..., 0] * keep_NK[:, 1:]
        picked_N = picked_N + later_NK.sum(1)
    if normalize == "mean":
        picked_N = picked_N / keep_NK.sum(1)
    scores = picked_N.tolist()
    grouped, start = [], 0
    for opts in options:
        grouped.append(scores[start:start + len(opts)])
        start += len(opts)
    return grouped


def option_probabilities(logps: Sequence[float], choices: Sequence[str]) -> dict[str, float]:
    """Softmax over the options' log-likelihoods -> option -> probability (6 decimals)."""
    values = torch.softmax(torch.tensor(list(logps), dtype=torch.float64), dim=0).tolist()
    return {c: round(v, 6) for c, v in zip(choices, values, strict=True)}


def score_options(model, processor, items: Sequence[dict], batch_size: int = 8, normalize: LengthNorm = "sum",
                  stop: StopFn | None = None) -> list[dict[str, float]]:
    """P(option | protein, question) per item: softmax over :func:`option_logprobs` (one prompt pass per item)."""
    device = next(model.parameters()).device
    out: list[dict[str, float]] = []
    for chunk in batches(items, batch_size):
        options = [answer_token_ids(processor.tokenizer, format_question(it["question"], it["choices"],
                                                                         it.get("context")), it["choices"])
                   for it in chunk]
        _check(stop)
        logps = option_logprobs(model, sepit_inputs(processor, chunk, device), options, normalize, stop)
        out += [option_probabilities(lp, it["choices"]) for lp, it in zip(logps, chunk, strict=True)]
    return out


@torch.inference_mode()
def score_options_per_option(model, processor, items: Sequence[dict], batch_size: int = 8
                             ) -> list[dict[str, float]]:
    """Reference for :func:`score_options` (tests, benchmarks): one full forward of prompt + option per option,
    labels from the processor, summed log-probabilities."""
    device = next(model.parameters()).device
    pairs = [(i, opt) for i, it in enumerate(items) for opt in it["choices"]]
    scores: list[float] = []
    for chunk in batches(pairs, batch_size):
        inputs = sepit_inputs(processor, [items[i] for i, _ in chunk], device, "right", [o for _, o in chunk])
        labels_BT = inputs.pop("labels")[:, 1:]
        logp_BTV = model(**inputs, use_cache=False).logits[:, :-1].float().log_softmax(-1)
        picked_BT = logp_BTV.gather(-1, labels_BT.clamp(min=0)[..., None])[..., 0]
        scores += (picked_BT * (labels_BT != -100)).sum(1).tolist()
    out = []
    for i, it in enumerate(items):
        out.append(option_probabilities([s for (j, _), s in zip(pairs, scores, strict=True) if j == i],
                                        it["choices"]))
    return out


# --- answers ---
def answer_items(model, processor, items: Sequence[dict], settings: GenerationSettings | None = None,
                 batch_size: int = 8, score: bool = True, retriever=None) -> list[dict]:
    """Each item's answer: ``text`` and ``option_probs`` (closed-set items when ``score``; else None). With a
    ``retriever`` (items carry ``evidence``), closed-set items are answered from their option probabilities
    mixed with the evidence's vote (:meth:`sepit.retrieval.evidence.Retriever.closed_answer`; the row also
    gets ``model_option_probs`` and ``evidence_option_probs``) and are not generated; the others are."""
    closed = [i for i, it in enumerate(items) if it.get("choices")]
    probs = dict(zip(closed, score_options(model, processor, [items[i] for i in closed], batch_size)
                     if closed and score else [], strict=True))
    out: list[dict] = [{"text": "", "option_probs": probs.get(i)} for i in range(len(items))]
    if retriever is not None:
        for i, p in probs.items():
            voted = retriever.closed_answer(p, items[i], items[i]["evidence"])
            out[i] = {"text": voted["text"], "option_probs": voted["option_probs"],
                      "model_option_probs": voted["model_option_probs"],
                      "evidence_option_probs": voted["evidence_option_probs"]}
    ask = [i for i in range(len(items)) if retriever is None or i not in probs]
    for i, text in zip(ask, generate_answers(model, processor, [items[i] for i in ask], settings, batch_size),
                       strict=True):
        out[i]["text"] = text
    return out
