"""Baselines scored by the same code as sepit (DESIGN.md section 4); each returns predictions-file rows.

- :func:`nearest_neighbour_predictions`: homology transfer from the most similar training protein that can
  answer, found by the retrieval search (a reference index, or Smith-Waterman with pyopal, BLOSUM62 11/1);
  its sequence identity (identical aligned residues over
  the shorter length, as in the homology split) goes in ``identity``. Open and
  caption items: that protein's answer in the same category. Closed-set items, when the training proteins'
  labels are given (``load_labels``): the nearest protein annotated in the item's category answers from its
  own labels: "yes" to a yes/no question iff it carries the asked label, and for a multiple-choice question the
  option it carries (the nearest protein carrying any option). Without labels (datasets built before labels
  were stored): its answer to the same question, else its answer in the category among the options.
- :func:`llm_prior_predictions`: the LLM alone, without protein input (the text prior). Chat template, batched
  greedy generation with left padding; only the generated continuation is decoded (never the prompt); for
  closed-set items every option is also scored by likelihood (``option_probs``).
- :func:`load_split`: items and sequences of one split of a built dataset folder (``DatasetStore``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from sepit.eval.records import Prediction
from sepit.resources import SMOLLM2

NN_NAME = "nearest-neighbour"
LLM_NAME = "llm-only"


@dataclass(frozen=True)
class Item:
    """One instruction (the columns of the built dataset's ``instructions`` table that we need)."""

    id: str
    accession: str
    task: str
    category: str
    question: str
    answer: str
    choices: tuple[str, ...] = field(default_factory=tuple)
    label: str = ""  # the annotation a yes/no question asks about ("" otherwise, and in older datasets)

    def predict(
        self, text: str, model: str, option_probs=None, identity=None, mark_identity=False
    ) -> Prediction:
        extra = {"identity": identity} if mark_identity else {}
        return Prediction(
            id=self.id,
            accession=self.accession,
            task=self.task,
            category=self.category,
            question=self.question,
            answer=self.answer,
            prediction=text,
            model=model,
            choices=self.choices,
            option_probs=option_probs,
            identity=identity,
            extra=extra,
        )


def load_split(data_dir, split: str) -> tuple[list[Item], dict[str, str]]:
    """Items of ``split`` and the sequences of their proteins from a built dataset folder."""
    from sepit.data.store import DatasetStore

    store = DatasetStore(data_dir)
    table = store.instructions(split)
    items = [
        Item(
            id=str(r["id"]),
            accession=r["accession"],
            task=r["task"],
            category=r["category"],
            question=r["question"],
            answer=r["answer"],
            choices=tuple(r["choices"] or ()),
            label=r.get("label") or "",
        )
        for r in table
    ]
    sequences = {acc: store.protein(acc).sequence for acc in sorted({i.accession for i in items})}
    return items, sequences


def load_labels(data_dir, accessions: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """Closed-set labels (category -> labels) of these proteins of a built dataset folder."""
    from sepit.data.store import DatasetStore

    store = DatasetStore(data_dir)
    return {acc: store.labels(acc) for acc in sorted(set(accessions))}


class _TrainingAnswers:
    """Training answers indexed by (task, category[, question]) -> accession -> answer (first seen)."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.by_question: dict[tuple, dict[str, str]] = {}
        self.by_category: dict[tuple, dict[str, str]] = {}
        self.counts: dict[tuple, Counter] = {}
        for it in items:
            self.by_question.setdefault((it.task, it.category, it.question), {}).setdefault(
                it.accession, it.answer
            )
            self.by_category.setdefault((it.task, it.category), {}).setdefault(it.accession, it.answer)
            self.counts.setdefault((it.task, it.category), Counter())[it.answer] += 1

    def candidates(self, item: Item) -> list[dict[str, str]]:
        """Answer tables to try in order: same question (closed), category within the options, category."""
        category = self.by_category.get((item.task, item.category), {})
        out = []
        if item.task == "closed":
            out.append(self.by_question.get((item.task, item.category, item.question), {}))
            out.append({a: ans for a, ans in category.items() if ans in item.choices})
        out.append(category)
        return [c for c in out if c]

    def most_common(self, item: Item) -> str:
        counts = self.counts.get((item.task, item.category), Counter())
        allowed = [(n, a) for a, n in counts.items() if item.task != "closed" or a in item.choices]
        return max(allowed, key=lambda x: x[0])[1] if allowed else ""


NN_POOL = 50  # hits searched per test protein; the nearest that can answer the item's category answers


def nearest_neighbour_predictions(
    train_items: Sequence[Item],
    train_sequences: dict[str, str],
    test_items: Sequence[Item],
    test_sequences: dict[str, str],
    model: str = NN_NAME,
    threads: int = 1,
    train_labels: dict[str, dict[str, list[str]]] | None = None,
    index=None,
) -> list[Prediction]:
    """Homology transfer; items without any hit of their category get the category's most common answer
    (``identity`` null). ``train_labels``: accession -> category -> labels of the training proteins.

    The search is the retrieval search (:mod:`sepit.retrieval.search`, one code path): ``index`` (a
    ``ReferenceIndex`` built from the training split) or pyopal over ``train_sequences``; a test protein never
    finds its own accession."""
    from sepit.retrieval.search import OpalSearch

    answers = _TrainingAnswers(train_items)
    used = sorted({it.accession for it in train_items})
    missing = [a for a in used if a not in train_sequences]
    if missing:
        raise ValueError(f"training proteins without a sequence: {', '.join(missing[:5])}")
    searcher = index if index is not None else OpalSearch(used, [train_sequences[a] for a in used], threads)
    queries = {}
    for item in test_items:
        if item.accession not in test_sequences:
            raise ValueError(f"test item {item.id!r}: no sequence for protein {item.accession!r}")
        queries[item.accession] = test_sequences[item.accession]
    found = searcher.search(queries, NN_POOL, exclude_self=True, max_evalue=None)
    out = []
    for item in test_items:
        hits = [h for h in found[item.accession] if h.bits > 0]
        ranking = [h.accession for h in hits]
        hit = _label_hit(ranking, item, train_labels) if train_labels else None
        hit = hit or _best_hit(ranking, answers.candidates(item))
        if hit is None:
            out.append(item.predict(answers.most_common(item), model, mark_identity=True))
        else:
            target, answer = hit
            identity = next(h.identity for h in hits if h.accession == target)
            out.append(item.predict(answer, model, identity=identity, mark_identity=True))
    return out


def _label_hit(ranking: list[str], item: Item, labels: dict[str, dict[str, list[str]]]) -> tuple[str, str] | None:
    """(neighbour, answer) of a closed-set item from the nearest neighbours' own labels, or None."""
    if item.task != "closed" or not (item.label or item.choices):
        return None
    for acc in ranking:
        carried = {value.lower() for value in labels.get(acc, {}).get(item.category, [])}
        if not carried:
            continue  # not annotated in this category: ask the next neighbour
        if item.label:  # yes/no on one label
            return acc, "yes" if item.label.lower() in carried else "no"
        options = [c for c in item.choices if c.lower() in carried]
        if options:
            return acc, options[0]
    return None


def _best_hit(ranking: list[str], candidates: list[dict[str, str]]) -> tuple[str, str] | None:
    for table in candidates:
        for acc in ranking:
            if acc in table:
                return acc, table[acc]
    return None


def _load_llm(model: str, device: str | None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sepit.resources import resolve_model

    path = resolve_model(model)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"  # generation continues from the last prompt token of every row
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    llm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device or "cpu").eval()
    return tok, llm


def chat_prompt(tok, item: Item, context: str | None = None) -> str:
    """The user turn (same question format as sepit, without protein; with retrieval, the same evidence block)
    in the LLM's chat template."""
    from sepit.prompts import format_question

    messages = [{"role": "user", "content": format_question(item.question, list(item.choices), context)}]
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate_answers(
    tok, llm, prompts: Sequence[str], batch_size: int = 8, max_new_tokens: int = 64
) -> list[str]:
    """Greedy generation in batches; returns the decoded continuations only (bug #6: never the prompt)."""
    import torch

    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        enc = tok(
            list(prompts[start : start + batch_size]),
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        ).to(llm.device)
        with torch.no_grad():
            ids_BT = llm.generate(
                **enc, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id
            )
        new_BN = ids_BT[:, enc["input_ids"].shape[1] :]  # continuation only
        out += [t.strip() for t in tok.batch_decode(new_BN, skip_special_tokens=True)]
    return out


def option_probabilities(tok, llm, prompt: str, choices: Sequence[str]) -> dict[str, float]:
    """Softmax over options of the summed log-likelihood of each option's tokens after the prompt."""
    import torch

    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    option_ids = [tok(c, add_special_tokens=False)["input_ids"] for c in choices]
    width = len(prompt_ids) + max(len(o) for o in option_ids)
    ids_BT = torch.full((len(choices), width), tok.pad_token_id, dtype=torch.long)
    mask_BT = torch.zeros_like(ids_BT)
    for b, opt in enumerate(option_ids):  # right padding: positions stay aligned with the prompt
        row = prompt_ids + opt
        ids_BT[b, : len(row)] = torch.tensor(row)
        mask_BT[b, : len(row)] = 1
    with torch.no_grad():
        logp_BTV = llm(
            input_ids=ids_BT.to(llm.device), attention_mask=mask_BT.to(llm.device)
        ).logits.log_softmax(-1)
    scores = []
    for b, opt in enumerate(option_ids):
        pos = torch.arange(
            len(prompt_ids) - 1, len(prompt_ids) - 1 + len(opt)
        )  # logits predicting opt tokens
        scores.append(logp_BTV[b, pos, torch.tensor(opt)].sum())
    probs = torch.stack(scores).softmax(0).tolist()
    return dict(zip(choices, probs, strict=True))


def llm_prior_predictions(
    items: Sequence[Item],
    model: str = SMOLLM2,
    name: str = LLM_NAME,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    score_options: bool = True,
    device: str | None = None,
    retriever=None,
    sequences: dict[str, str] | None = None,
) -> list[Prediction]:
    """The LLM alone answers every question without seeing the protein. With ``retriever`` (and the items'
    ``sequences``) it sees the evidence sepit sees (retrieved annotated homologs, never the protein itself):
    retrieval without any protein model; rows then carry ``evidence`` and checked citations."""
    from sepit.retrieval.evidence import context_for, grounding

    evidence = [None] * len(items)
    if retriever is not None:
        if sequences is None:
            raise ValueError("retrieval needs the items' sequences")
        evidence = retriever.evidence([{"sequence": sequences[it.accession], "accession": it.accession,
                                        "category": it.category} for it in items], exclude_self=True)
    tok, llm = _load_llm(model, device)
    prompts = [chat_prompt(tok, it, context_for(ev)) for it, ev in zip(items, evidence, strict=True)]
    texts = generate_answers(tok, llm, prompts, batch_size, max_new_tokens)
    out = []
    for item, prompt, text, ev in zip(items, prompts, texts, evidence, strict=True):
        probs = (
            option_probabilities(tok, llm, prompt, item.choices) if score_options and item.choices else None
        )
        row = item.predict(text, name, option_probs=probs)
        extra = {**grounding(text, ev), **({"label": item.label} if ev is not None else {})}
        out.append(replace(row, extra={**row.extra, **extra}) if extra else row)
    return out
