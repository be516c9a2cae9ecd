"""The Python entry point for answering questions about proteins.

    from sepit import Sepit
    model = Sepit.from_pretrained("runs/demo/stage2/model")
    model.ask(sequence="MKT...", question="What is the function of this protein?").text
    model.ask(sequence="MKT...", structure="AF-P12345-F1-model_v4.pdb",
              question="Does this protein bind heme?", choices=["yes", "no"]).probabilities

With a reference index (``sepit index build``) answers are grounded in annotated homologs and carry them:
    model = Sepit.from_pretrained("runs/demo/stage2/model", index="runs/demo/index")
    answer = model.ask(sequence="MKT...", question="What is the function of this protein?")
    answer.evidence, answer.citations, answer.unsupported_citations
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sepit.errors import InputFormatError, SepitError, StructureError
from sepit.eval.generate import GenerationSettings, answer_items


@dataclass
class Answer:
    """``text``: the generated answer. Closed-set: ``choice`` (the most probable option by likelihood,
    else parsed from the text) and ``probabilities`` (option -> probability)."""

    text: str
    choice: str | None = None
    probabilities: dict[str, float] | None = None
    structure: dict = field(default_factory=dict)
    evidence: list | None = None  # retrieval: the hits shown (sepit.retrieval.evidence.Evidence); None without
    citations: list[str] = field(default_factory=list)  # accessions cited in the text that are in the evidence
    unsupported_citations: list[str] = field(default_factory=list)  # cited but not in the evidence (flagged)

    def to_dict(self) -> dict:
        out = {"answer": self.text, "choice": self.choice, "probabilities": self.probabilities,
               "structure": self.structure}
        if self.evidence is not None:
            out.update(evidence=[e.to_dict() for e in self.evidence], citations=self.citations,
                       unsupported_citations=self.unsupported_citations)
            if not self.evidence:
                out["evidence_note"] = "no annotated homolog found in the reference index"
        return out


def protein_input(sequence: str | None, structure: str | Path | None = None, chain: str | None = None) -> dict:
    """Sequence (+ aligned C-alpha coordinates and pLDDT when a structure file is given).

    With a structure and no sequence, the sequence is the chain's own residues (``chain`` or the first)."""
    from sepit.data.structure import read_chains, structure_for_sequence

    if structure is None:
        if not sequence:
            raise SepitError("give a protein sequence or a structure file")
        return {"sequence": sequence.strip().upper(), "structure": {}}
    if not sequence:
        chains = read_chains(structure)
        name = chain or next(iter(chains))
        if name not in chains:
            raise StructureError(f"{structure}: no protein chain {name!r} (chains: {sorted(chains)})")
        sequence = chains[name].sequence
    sequence = sequence.strip().upper()
    result = structure_for_sequence(structure, sequence, chain)
    plddt = None if result.plddt_L is None else np.nan_to_num(result.plddt_L, nan=0.0)
    info = {"file": str(structure), "chain": result.chain, "identity": round(result.identity, 3),
            "residues_with_point": result.n_points, "length": len(sequence)}
    return {"sequence": sequence, "coords": result.coords_L3, "plddt": plddt, "structure": info}


def _check_folder(folder: Path) -> None:
    config = folder / "config.json"
    if not config.is_file():
        raise InputFormatError(f"{folder} is not a sepit model folder (no config.json)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{config} is not valid JSON: {err}") from None
    if model_type != "sepit":
        raise InputFormatError(f"{folder} holds a {model_type!r} model, not a sepit model "
                               "(stage-0 folders hold only the encoder; use a stage-1 or stage-2 model)")


class Sepit:
    """A loaded SEPIT model and its processor, ready to answer."""

    def __init__(self, model, processor, device: str | torch.device | None = None, index=None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.retriever = _retriever(index)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | None = None, dtype: torch.dtype | None = None,
                        max_residues: int | None = None, index=None) -> Sepit:
        """Load a stage-1/2 folder for inference: LoRA adapters folded into the weights, decoding defaults
        (loop guards) from the folder's generation config (:func:`sepit.model.build.load_sepit`). ``index``: a
        reference index folder (or loaded ``ReferenceIndex`` / ``Retriever``) for evidence-grounded answers;
        None answers without retrieval (the paper's model)."""
        from sepit.model.build import load_sepit
        from sepit.retrieval.evidence import trained_settings

        folder = Path(folder)
        _check_folder(folder)
        model, processor = load_sepit(folder, **({"dtype": dtype} if dtype else {}))
        if max_residues is not None:
            processor.max_residues = max_residues
        if index is not None and not isinstance(index, bool):
            trained = trained_settings(folder)
            if trained is not None:
                index = _retriever(index, trained)
            else:
                import warnings

                warnings.warn(f"{folder} was trained without retrieval: the evidence in its prompts is new to it "
                              "(train with retrieval.enabled for evidence-grounded answers)", stacklevel=2)
        return cls(model, processor, device, index=index)

    def ask(self, question: str, sequence: str | None = None, structure: str | Path | None = None,
            chain: str | None = None, choices: list[str] | None = None, category: str | None = None,
            index=None, **generation) -> Answer:
        """``category`` (e.g. ``function``, ``go_mf``) picks the annotation shown from each hit (default: a
        summary); ``index`` overrides the model's index for this call (``False``: no retrieval)."""
        return self.ask_many([{"question": question, "sequence": sequence, "structure": structure,
                               "chain": chain, "choices": choices, "category": category}], index=index,
                             **generation)[0]

    def ask_many(self, requests: list[dict], batch_size: int = 8, score: bool = True, index=None,
                 **generation) -> list[Answer]:
        """Each request: ``question`` and ``sequence`` and/or ``structure`` (+ ``chain``, ``choices``,
        ``category``)."""
        items = []
        for r in requests:
            if not str(r.get("question") or "").strip():
                raise SepitError("the question is empty")
            items.append({**protein_input(r.get("sequence"), r.get("structure"), r.get("chain")),
                          "question": r["question"], "choices": list(r.get("choices") or []),
                          "category": r.get("category")})
        retriever = self.retriever if index is None else _retriever(index or None)
        evidence = retriever.evidence(items) if retriever else [None] * len(items)
        _add_context(items, evidence)
        from sepit.eval.closed_set import parse_choice

        answers = []
        for it, ev, a in zip(items, evidence, answer_items(self.model, self.processor, items,
                                                           GenerationSettings(**generation), batch_size, score,
                                                           retriever), strict=True):
            answer, probs = _answer(a["text"], it, ev), a["option_probs"]
            if probs:
                answer.probabilities, answer.choice = probs, max(probs, key=probs.get)
            elif it["choices"]:
                answer.choice = parse_choice(answer.text, it["choices"])
            answers.append(answer)
        return answers

    def embed(self, sequence: str | None = None, structure: str | Path | None = None, chain: str | None = None,
              per_residue: bool = False) -> dict:
        """One protein's encoder embedding: ``pooled`` [D] float32, ``structure`` (bool: a structure was used),
        ``length`` and, with ``per_residue``, ``per_residue`` [L, D] (see :mod:`sepit.embed`)."""
        return self.embed_many([{"sequence": sequence, "structure": structure, "chain": chain}],
                               per_residue=per_residue)[0]

    def embed_many(self, requests: list[dict], batch_size: int = 8, per_residue: bool = False) -> list[dict]:
        """Each request: ``sequence`` and/or ``structure`` (+ ``chain``, ``id``); rows in request order."""
        from sepit.data.fasta import Protein
        from sepit.embed import ProteinEmbedder

        proteins = []
        for i, r in enumerate(requests):
            item = protein_input(r.get("sequence"), r.get("structure"), r.get("chain"))
            proteins.append(Protein(str(r.get("id", i)), item["sequence"], coords=item.get("coords"),
                                    plddt=item.get("plddt"), structure_source=item["structure"].get("file", "")))
        embedder = ProteinEmbedder(self.model.encoder, self.processor.protein_tokenizer,
                                   self.model.config.protein_feature_layer, device=self.device)
        return list(embedder.embed(proteins, batch_size, per_residue))

def _retriever(index, trained: dict | None = None):
    """A Retriever from an index folder, a loaded ReferenceIndex or a Retriever (None: no retrieval);
    ``trained``: the model folder's retrieval.json (hits shown and annotation length as in training)."""
    if index is None:
        return None
    from sepit.retrieval.evidence import Retriever
    from sepit.retrieval.index import ReferenceIndex

    if isinstance(index, Retriever):
        return index
    return Retriever.from_settings(index if isinstance(index, ReferenceIndex) else ReferenceIndex(index), trained)


def _add_context(items: list[dict], evidence: list) -> None:
    from sepit.retrieval.evidence import prompt_fields

    for it, ev in zip(items, evidence, strict=True):
        it.update(evidence=ev, **prompt_fields(ev))


def _answer(text: str, item: dict, evidence) -> Answer:
    from sepit.retrieval.evidence import check_citations

    cited = check_citations(text, evidence)
    return Answer(text, structure=item["structure"], evidence=evidence, citations=cited.supported,
                  unsupported_citations=cited.unsupported)
