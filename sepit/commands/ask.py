"""``sepit ask``: one question about one protein."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("ask", help="ask a question about a protein",
                       description="Answer a question about a protein given by sequence, FASTA file and/or "
                                   "structure file (PDB, mmCIF, AlphaFold model; gzipped too).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("question", help="the question, e.g. 'What is the function of this protein?'")
    p.add_argument("--model", required=True, help="sepit model folder (stage 1 or 2 output)")
    p.add_argument("--sequence", default=None, help="protein sequence (one-letter codes)")
    p.add_argument("--fasta", default=None, help="FASTA file holding the protein")
    p.add_argument("--id", default=None, help="record id in --fasta (default: the first record)")
    p.add_argument("--structure", default=None, help="structure file aligned to the sequence")
    p.add_argument("--chain", default=None, help="chain of the structure (default: best match)")
    p.add_argument("--choices", default=None, help="closed-set options separated by '|', e.g. 'yes|no'")
    p.add_argument("--max-new-tokens", type=int, default=128, help="generation length limit")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (with --sample)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling (with --sample)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--index", default=None, help="reference index (sepit index build): ground the answer in "
                                                 "annotated homologs and show them as evidence")
    p.add_argument("--category", default=None, help="annotation shown from each hit (e.g. function, go_mf; "
                                                    "default: a summary of several fields)")
    p.add_argument("--top-k", type=int, default=3, help="hits shown (with --index)")
    p.add_argument("--no-retrieval", action="store_true", help="ignore --index (the model without retrieval)")
    p.set_defaults(func=run)


def read_fasta(path: str, record_id: str | None = None) -> str:
    """Sequence of ``record_id`` (or the first record) in a FASTA file; errors name the file."""
    from Bio import SeqIO

    from sepit.errors import InputFormatError
    from sepit.io_utils import open_text

    with open_text(path) as fh:
        head = fh.read(1)
        if head != ">":
            raise InputFormatError(f"{path}: not a FASTA file (first character {head!r}, expected '>')")
        fh.seek(0)
        for rec in SeqIO.parse(fh, "fasta"):
            if record_id is None or rec.id == record_id or record_id in rec.description.split("|"):
                if not len(rec.seq):
                    raise InputFormatError(f"{path}: record {rec.id} has an empty sequence")
                return str(rec.seq)
    raise InputFormatError(f"{path}: no record {record_id!r}" if record_id else f"{path}: no FASTA record")


def run(args) -> int:
    import json

    from sepit.api import Sepit
    from sepit.errors import SepitError

    if args.sequence and args.fasta:
        raise SepitError("give --sequence or --fasta, not both")
    sequence = read_fasta(args.fasta, args.id) if args.fasta else args.sequence
    choices = [c.strip() for c in args.choices.split("|") if c.strip()] if args.choices else None
    if choices is not None and len(choices) < 2:
        raise SepitError(f"--choices needs at least two options separated by '|', got {args.choices!r}")
    index = None
    if args.index and not args.no_retrieval:
        from sepit.retrieval.evidence import Retriever
        from sepit.retrieval.index import ReferenceIndex

        index = Retriever(ReferenceIndex(args.index), k=args.top_k)
    model = Sepit.from_pretrained(args.model, device=args.device, index=index)
    answer = model.ask(args.question, sequence=sequence, structure=args.structure, chain=args.chain,
                       choices=choices, category=args.category, max_new_tokens=args.max_new_tokens,
                       do_sample=args.sample, temperature=args.temperature, top_p=args.top_p)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2))
        return 0
    print(answer.text)
    if answer.probabilities:
        for option, prob in sorted(answer.probabilities.items(), key=lambda kv: -kv[1]):
            print(f"  {prob:6.1%}  {option}")
    if answer.evidence is not None:
        print(evidence_table(answer))
    return 0


def evidence_table(answer) -> str:
    """Plain-text evidence: the hits shown, and any citation that is not among them."""
    if not answer.evidence:
        return "evidence: none (no annotated homolog found in the reference index)"
    lines = ["evidence:"]
    for e in answer.evidence:
        mark = "*" if e.accession in answer.citations else " "
        lines.append(f" {mark} UniProt:{e.accession}  {e.identity:.0%} id  {e.query_coverage:.0%} cov  "
                     f"E={e.evalue:.1g}  {e.annotation}  {e.url}")
    if answer.unsupported_citations:
        lines.append("  cited but NOT in the evidence (not a source): " + ", ".join(answer.unsupported_citations))
    return "\n".join(lines)
