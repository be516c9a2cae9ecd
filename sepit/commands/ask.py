"""``sepit ask``: one question about one protein, or (``--fasta F --out answers.jsonl``) several questions about
every protein of a FASTA file (:mod:`sepit.annotate`)."""

from __future__ import annotations

import argparse

from sepit.commands import existing_dir, existing_file, positive_float, positive_int, probability, unit_interval


def register(sub) -> None:
    p = sub.add_parser("ask", help="ask a question about a protein",
                       description="Answer a question about a protein given by sequence, FASTA file and/or "
                                   "structure file (PDB, mmCIF, AlphaFold model; gzipped too).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("question", nargs="+",
                   help="the question, e.g. 'What is the function of this protein?' (several with --out)")
    p.add_argument("--model", required=True, type=existing_dir, help="sepit model folder (stage 1 or 2 output)")
    p.add_argument("--sequence", default=None, help="protein sequence (one-letter codes)")
    p.add_argument("--fasta", default=None, type=existing_file, help="FASTA file holding the protein")
    p.add_argument("--id", default=None, help="record id in --fasta (default: the first record)")
    p.add_argument("--structure", default=None, type=existing_file, help="structure file aligned to the sequence")
    p.add_argument("--chain", default=None, help="chain of the structure (default: best match)")
    p.add_argument("--choices", action="append", default=None,
                   help="closed-set options separated by '|', e.g. 'yes|no'; with several questions give it once "
                        "per question, in order ('' = open question)")
    p.add_argument("--out", default=None,
                   help="answers.jsonl: answer every question for every protein of --fasta (one row per pair; "
                        "resumes an interrupted run)")
    p.add_argument("--structures", default=None, type=existing_dir,
                   help="with --out: folder of structure files matched by accession or FASTA id")
    p.add_argument("--batch-size", type=positive_int, default=8, help="with --out: pairs answered per batch")
    p.add_argument("--overwrite", action="store_true", help="with --out: start again instead of resuming")
    p.add_argument("--no-progress", action="store_true", help="with --out: no progress bar")
    p.add_argument("--max-new-tokens", type=positive_int, default=128, help="generation length limit")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=positive_float, default=0.7, help="sampling temperature (with --sample)")
    p.add_argument("--top-p", type=probability, default=0.9, help="nucleus sampling (with --sample)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--index", default=None, help="reference index (sepit index build): ground the answer in "
                                                 "annotated homologs and show them as evidence")
    p.add_argument("--category", default=None, help="annotation shown from each hit (e.g. function, go_mf; "
                                                    "default: a summary of several fields)")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="hits shown (with --index; default: as the model was trained, else 3)")
    p.add_argument("--vote-weight", type=unit_interval, default=None,
                   help="closed-set: weight of the evidence's label vote mixed with the model's option "
                        "probabilities (0 = the model alone; default: the model's retrieval.vote_weight, else 0.5)")
    p.add_argument("--no-retrieval", action="store_true", help="ignore --index (the model without retrieval)")
    p.set_defaults(func=run)


def read_fasta(path: str, record_id: str | None = None) -> str:
    """Sequence of ``record_id`` (or the first record) in a FASTA file; errors name the file."""
    from Bio import SeqIO

    from sepit.errors import InputFormatError, reading
    from sepit.io_utils import open_text

    with open_text(path) as fh, reading(path):
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


def run_many(args) -> int:
    """``--fasta F QUESTION... --out answers.jsonl``: every (protein, question) pair, batched and resumable."""
    from sepit.annotate import annotate, questions_from
    from sepit.api import Sepit
    from sepit.data.fasta import attach_structures, read_proteins
    from sepit.errors import SepitError, reading

    if not args.out or not args.fasta:
        raise SepitError("several questions need --fasta (the proteins) and --out answers.jsonl")
    if args.sequence or args.id or args.structure:
        raise SepitError("--out answers every record of --fasta: --sequence, --id and --structure do not apply "
                         "(use --structures DIR)")
    if args.batch_size < 1:
        raise SepitError(f"--batch-size must be >= 1, got {args.batch_size}")
    questions = questions_from(args.question, args.choices)
    proteins = read_proteins(args.fasta)
    attach_structures(proteins, args.structures)
    with reading(f"--model {args.model}"):
        model = Sepit.from_pretrained(args.model, device=args.device, index=_index(args))
    counts = annotate(model, proteins, questions, args.out, args.batch_size, overwrite=args.overwrite,
                      progress=not args.no_progress, max_new_tokens=args.max_new_tokens, do_sample=args.sample,
                      temperature=args.temperature, top_p=args.top_p)
    rate = counts["proteins_per_minute"]
    print(f"{args.out}: {counts['rows']} answers for {len(proteins)} proteins x {len(questions)} questions"
          + (f", {counts['resumed']} kept from an earlier run" if counts["resumed"] else "")
          + (f", {counts['errors']} failed (see their 'error')" if counts["errors"] else "")
          + (f"; {rate:.1f} proteins/min" if rate else ""))
    return 0


def parse_choices(text: str | None) -> list[str] | None:
    """``'yes|no'`` -> ``['yes', 'no']``; at least two distinct, non-empty options."""
    from sepit.errors import SepitError

    if text is None:
        return None
    choices = [c.strip() for c in text.split("|") if c.strip()]
    if len(choices) < 2:
        raise SepitError(f"--choices needs at least two options separated by '|', got {text!r}")
    repeated = sorted({c for c in choices if choices.count(c) > 1})
    if repeated:
        raise SepitError(f"--choices: options must be distinct, {repeated} given more than once in {text!r}")
    return choices


def check_residues(sequence: str, where: str) -> str:
    """Upper-cased residues; raises :class:`SequenceError` naming the first invalid letter and its position."""
    from sepit.errors import SequenceError
    from sepit.model.esm_tokenizer import RESIDUES

    seq = "".join(sequence.split()).upper()
    if not seq:
        raise SequenceError(f"{where}: empty sequence")
    bad = next(((pos, aa) for pos, aa in enumerate(seq, 1) if aa not in RESIDUES), None)
    if bad is not None:
        raise SequenceError(f"{where}: invalid residue {bad[1]!r} at position {bad[0]} "
                            f"(allowed: {''.join(sorted(RESIDUES))})")
    return seq


def _index(args):
    """The reference index of ``--index`` as a retriever set as the model was trained (its retrieval.json) unless
    ``--top-k`` / ``--vote-weight`` say otherwise (None: no retrieval)."""
    from sepit.errors import reading

    if not args.index or args.no_retrieval:
        return None
    from sepit.retrieval.evidence import Retriever, trained_settings
    from sepit.retrieval.index import ReferenceIndex

    with reading(f"--index {args.index}"):
        return Retriever.from_settings(ReferenceIndex(args.index), trained_settings(args.model), k=args.top_k,
                                       vote_weight=args.vote_weight)


def run(args) -> int:
    import json

    from sepit.api import Sepit, protein_input
    from sepit.errors import SepitError, reading

    if args.out or len(args.question) > 1:
        return run_many(args)
    if args.structures:
        raise SepitError("--structures goes with --fasta ... --out (use --structure FILE for one protein)")
    if args.choices and len(args.choices) > 1:
        raise SepitError("one question takes one --choices")
    args.question = args.question[0]
    args.choices = args.choices[0] if args.choices else None

    if args.sequence and args.fasta:
        raise SepitError("give --sequence or --fasta, not both")
    if not (args.sequence or args.fasta or args.structure):
        raise SepitError("give the protein: --sequence, --fasta and/or --structure")
    sequence = read_fasta(args.fasta, args.id) if args.fasta else args.sequence
    if sequence is not None:
        sequence = check_residues(sequence, f"--fasta {args.fasta}" if args.fasta else "--sequence")
    choices = parse_choices(args.choices)
    with reading(f"--structure {args.structure}"):
        protein_input(sequence, args.structure, args.chain)  # checks the structure before the model loads
    with reading(f"--model {args.model}"):
        model = Sepit.from_pretrained(args.model, device=args.device, index=_index(args))
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
