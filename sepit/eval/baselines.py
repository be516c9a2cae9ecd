"""Baselines scored by the same code as sepit (DESIGN.md section 4); each returns predictions-file rows.

- :func:`nearest_neighbour_predictions`: homology transfer from the most similar training protein that can
  answer, among the ``top_k`` most similar found by the retrieval search (a reference index; or pyopal's
  exhaustive Smith-Waterman, or MMseqs2 for large training sets, BLOSUM62 11/1); its sequence identity
  (identical aligned residues over the shorter length, as in the homology split) goes in ``identity``. Open and
  caption items: that protein's answer in the same category. Closed-set items, when the training proteins'
  labels are given (``load_labels``): the nearest protein annotated in the item's category answers from its
  own labels: "yes" to a yes/no question iff it carries the asked label, and for a multiple-choice question the
  option it carries (the nearest protein carrying any option). Without labels (datasets built before labels
  were stored): its answer to the same question, else its answer in the category among the options.
- :func:`llm_prior_predictions`: the LLM alone, without protein input (the text prior). Chat template;
  answers come from sepit's own generation path and option scores from sepit's option-likelihood function
  (:mod:`sepit.eval.generate`: same decoding settings and loop guards, same option tokens through the
  end-of-turn token), so the two differ only by the protein input.
- :func:`load_split`: items and sequences of one split of a built dataset folder (``DatasetStore``).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sepit.eval.records import Prediction
from sepit.resources import SMOLLM2

NN_NAME = "nearest-neighbour"
AUTO_MMSEQS_MIN = 20000  # search "auto": pyopal (exhaustive) below this many training proteins, else MMseqs2
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


@contextlib.contextmanager
def _training_search(index, train: dict[str, str], search: str, threads: int):
    """The search over the training proteins: ``index`` when given, else pyopal or a temporary MMseqs2 database
    (``search``; auto: mmseqs from ``AUTO_MMSEQS_MIN`` proteins)."""
    from sepit.retrieval.search import MmseqsSearch, OpalSearch, create_mmseqs_db

    if index is not None:
        yield index
        return
    method = search if search != "auto" else ("mmseqs" if len(train) >= AUTO_MMSEQS_MIN else "opal")
    if method == "opal":
        yield OpalSearch(list(train), list(train.values()), threads)
        return
    with tempfile.TemporaryDirectory(prefix="sepit-nn-") as tmp:
        fasta = Path(tmp) / "train.fasta"
        with open(fasta, "w") as fh:
            fh.writelines(f">{acc}\n{seq.upper()}\n" for acc, seq in train.items())
        create_mmseqs_db(fasta, Path(tmp) / "db" / "targets", threads=threads)
        yield MmseqsSearch(Path(tmp) / "db" / "targets", threads)


def nearest_neighbour_predictions(
    train_items: Sequence[Item],
    train_sequences: dict[str, str],
    test_items: Sequence[Item],
    test_sequences: dict[str, str],
    model: str = NN_NAME,
    threads: int = 1,
    train_labels: dict[str, dict[str, list[str]]] | None = None,
    search: str = "auto",
    top_k: int = 50,
    index=None,
) -> list[Prediction]:
    """Homology transfer; items without any hit of their category among the ``top_k`` nearest training
    proteins get the category's most common answer (``identity`` null). ``train_labels``: accession ->
    category -> labels of the training proteins.

    The search is the retrieval search (:mod:`sepit.retrieval.search`, one code path): ``index`` (a
    ``ReferenceIndex`` built from the training split), else over ``train_sequences`` with ``search``: opal
    (exhaustive Smith-Waterman), mmseqs (MMseqs2, streamed top-k) or auto (mmseqs from ``AUTO_MMSEQS_MIN``
    training proteins). A test protein never finds its own accession."""
    answers = _TrainingAnswers(train_items)
    used = sorted({it.accession for it in train_items})
    missing = [a for a in used if a not in train_sequences]
    if missing:
        raise ValueError(f"training proteins without a sequence: {', '.join(missing[:5])}")
    if search not in ("auto", "opal", "mmseqs"):
        raise ValueError(f"unknown search {search!r} (auto, opal, mmseqs)")
    queries = {}
    for item in test_items:
        if item.accession not in test_sequences:
            raise ValueError(f"test item {item.id!r}: no sequence for protein {item.accession!r}")
        queries[item.accession] = test_sequences[item.accession]
    with _training_search(index, {a: train_sequences[a] for a in used}, search, threads) as searcher:
        found = searcher.search(queries, top_k, exclude_self=True, max_evalue=None)
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

    from sepit.generation_defaults import apply_generation_defaults
    from sepit.resources import resolve_model

    path = resolve_model(model)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"  # generation continues from the last prompt token of every row
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    llm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device or "cpu").eval()
    llm.generation_config.pad_token_id = tok.pad_token_id
    apply_generation_defaults(llm.generation_config)  # the same loop guards as sepit's models
    return tok, llm


def chat_prompt(tok, item: Item, context: str | None = None) -> str:
    """The user turn (same question format as sepit, without protein; with retrieval, the same evidence block)
    in the LLM's chat template."""
    from sepit.prompts import format_question

    messages = [{"role": "user", "content": format_question(item.question, list(item.choices), context)}]
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _prompt_inputs(tok, llm, prompts: Sequence[str]) -> dict:
    enc = tok(list(prompts), return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    return {k: v.to(llm.device) for k, v in enc.items()}


def generate_answers(tok, llm, prompts: Sequence[str], batch_size: int = 8, settings=None) -> list[str]:
    """Batched generation through sepit's generation path; decoded continuations only (never the prompt)."""
    from sepit.eval.generate import GenerationSettings, batches, generate_continuations

    settings = settings or GenerationSettings(max_new_tokens=64)
    out: list[str] = []
    for chunk in batches(prompts, batch_size):
        out += generate_continuations(llm, tok, _prompt_inputs(tok, llm, chunk), settings)[0]
    return out


def option_probabilities(tok, llm, items: Sequence[Item], batch_size: int = 8, normalize: str = "sum",
                         contexts: Sequence[str | None] | None = None) -> list[dict[str, float]]:
    """P(option | question) per closed-set item by sepit's option-likelihood function (same option tokens,
    end-of-turn included, same length normalisation), without the protein; ``contexts``: each item's retrieved
    evidence (None: none)."""
    from sepit.eval.generate import answer_token_ids, batches, option_logprobs
    from sepit.eval.generate import option_probabilities as softmax_options
    from sepit.prompts import format_question

    pairs = list(zip(items, contexts if contexts is not None else [None] * len(items), strict=True))
    out: list[dict[str, float]] = []
    for chunk in batches(pairs, batch_size):
        options = [answer_token_ids(tok, format_question(it.question, list(it.choices), ctx), it.choices)
                   for it, ctx in chunk]
        prompts = [chat_prompt(tok, it, ctx) for it, ctx in chunk]
        logps = option_logprobs(llm, _prompt_inputs(tok, llm, prompts), options, normalize)
        out += [softmax_options(lp, it.choices) for lp, (it, _) in zip(logps, chunk, strict=True)]
    return out


def llm_prior_predictions(
    items: Sequence[Item],
    model: str = SMOLLM2,
    name: str = LLM_NAME,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    score_options: bool = True,
    device: str | None = None,
    settings=None,
    retriever=None,
    sequences: dict[str, str] | None = None,
) -> list[Prediction]:
    """The LLM alone answers every question without seeing the protein (``settings``: a
    :class:`sepit.eval.generate.GenerationSettings`, default greedy with ``max_new_tokens``). With ``retriever``
    (and the items' ``sequences``) it sees the evidence sepit sees (retrieved annotated homologs, never the
    protein itself): retrieval without any protein model; rows then carry ``evidence`` and checked citations."""
    from sepit.eval.generate import GenerationSettings
    from sepit.retrieval.evidence import context_for, grounding

    evidence = [None] * len(items)
    if retriever is not None:
        if sequences is None:
            raise ValueError("retrieval needs the items' sequences")
        evidence = retriever.evidence([{"sequence": sequences[it.accession], "accession": it.accession,
                                        "category": it.category} for it in items], exclude_self=True)
    tok, llm = _load_llm(model, device)
    prompts = [chat_prompt(tok, it, context_for(ev)) for it, ev in zip(items, evidence, strict=True)]
    settings = settings or GenerationSettings(max_new_tokens=max_new_tokens)
    texts = generate_answers(tok, llm, prompts, batch_size, settings)
    closed = [i for i, it in enumerate(items) if it.choices] if score_options else []
    scored = option_probabilities(tok, llm, [items[i] for i in closed], batch_size,
                                  contexts=[context_for(evidence[i]) for i in closed])
    probs = dict(zip(closed, scored, strict=True))
    out = []
    for i, (item, text, ev) in enumerate(zip(items, texts, evidence, strict=True)):
        row = item.predict(text, name, option_probs=probs.get(i))
        extra = {**grounding(text, ev), **({"label": item.label} if ev is not None else {})}
        out.append(replace(row, extra={**row.extra, **extra}) if extra else row)
    return out
