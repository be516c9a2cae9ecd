"""Proteome-scale answering (issue 15): `sepit ask --fasta F Q1 Q2 --out answers.jsonl` on real proteins, timed
end to end in one process (model load excluded): proteins per minute and answers per minute, with structures.

Model: the demo's stage-2 model (`--model`, default /work/main/runs/demo/run/stage2/model). When it does not
exist yet, a stand-in of the same shape is built: the demo's stage-0 encoder (ESM-2 t6_8M architecture) + the
real SmolLM2-135M-Instruct, pooling stride 8, upcycled to 4 experts top-1, proteins cropped to 256 residues
(untrained projector: answer lengths are not the trained model's). Proteins: the first N accessions of
shared/data/structures/INDEX.tsv found in swissprot2014_go_with_structure.tsv.gz, each with its structure file
(linked as <accession>.pdb.gz so `--structures` finds it). Questions: one open (generated, up to
--max-new-tokens) and one yes/no (generated + option scoring).

    python benchmarks/bench_ask_fasta.py [--proteins 20] [--model DIR] [--out benchmarks/results/ask_fasta.md]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import tempfile
import time
from pathlib import Path

from machine import LoadWatch  # benchmarks/machine.py (the script's folder is on sys.path)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO = Path("/work/main/runs/demo/run")
QUESTIONS = ["What is the function of this protein?", "Does this protein bind DNA?"]


def proteins(n: int, folder: Path) -> Path:
    """FASTA of n real proteins + a structures folder with each one's file named by accession."""
    with gzip.open(SHARED / "uniprot_tsv" / "swissprot2014_go_with_structure.tsv.gz", "rt") as fh:
        seqs = {row["Entry"]: row["Sequence"] for row in csv.DictReader(fh, delimiter="\t")}
    structures = folder / "structures"
    structures.mkdir()
    records = []
    with open(SHARED / "structures" / "INDEX.tsv") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            acc = row["accession"]
            if acc in seqs and acc not in dict(records) and row["file"].endswith(".pdb.gz"):
                (structures / f"{acc}.pdb.gz").symlink_to(SHARED / "structures" / row["file"])
                records.append((acc, seqs[acc]))
            if len(records) == n:
                break
    fasta = folder / "proteins.fasta"
    fasta.write_text("".join(f">{acc}\n{seq}\n" for acc, seq in records))
    return fasta


def stand_in(folder: Path) -> Path:
    from sepit.model.build import build_sepit, save_sepit
    from sepit.model.moe import upcycle_sepit

    model, processor = build_sepit(str(DEMO / "stage0" / "model"), "smollm2-135m-instruct", pool_stride=8,
                                   max_residues=256, on_too_long="truncate")
    upcycle_sepit(model, 4, 1, 0.01)
    save_sepit(folder, model, processor)
    return folder


def main() -> None:
    watch = LoadWatch()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proteins", type=int, default=20)
    parser.add_argument("--model", default=str(DEMO / "stage2" / "model"))
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--index", help="a reference index (sepit index build): answers with retrieved evidence")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ask_fasta.md"))
    args = parser.parse_args()

    import torch

    from sepit.annotate import annotate, questions_from
    from sepit.api import Sepit
    from sepit.data.fasta import attach_structures, read_proteins

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir, kind = Path(args.model), "demo stage-2 model"
        if not (model_dir / "config.json").is_file():
            model_dir, kind = stand_in(tmp / "model"), "stand-in of the demo's shape (demo stage 2 not trained yet)"
        fasta = proteins(args.proteins, tmp)
        start = time.perf_counter()
        items = read_proteins(fasta)
        attach_structures(items, tmp / "structures")
        prep = time.perf_counter() - start
        index = None
        if args.index:
            from sepit.retrieval.evidence import Retriever
            from sepit.retrieval.index import ReferenceIndex

            index = Retriever(ReferenceIndex(args.index), k=3)
        model = Sepit.from_pretrained(model_dir, device="cpu", index=index)
        questions = questions_from(QUESTIONS, ["", "yes|no"])
        counts = annotate(model, items, questions, tmp / "answers.jsonl", args.batch_size, progress=False,
                          max_new_tokens=args.max_new_tokens)
        rows = [json.loads(line) for line in (tmp / "answers.jsonl").read_text().splitlines()]
    total = prep + counts["seconds"]
    with_structure = sum(bool(r["structure"]) for r in rows) // len(QUESTIONS)
    mean_len = sum(len(p.sequence) for p in items) / len(items)
    text = (f"## Proteome answering: sepit ask --fasta ... --out (bench_ask_fasta.py)\n"
            f"Model: {kind}. {len(items)} real Swiss-Prot proteins (mean length {mean_len:.0f}, cropped to the "
            f"model's limit), {with_structure} with a structure file, x {len(QUESTIONS)} questions (open + yes/no "
            f"with option scoring), greedy, max {args.max_new_tokens} new tokens, batch {args.batch_size}, CPU "
            f"({torch.get_num_threads()} threads); "
            f"{'retrieval from ' + args.index + ' (top 3 hits in the prompt)' if args.index else 'no retrieval'}. "
            f"{watch.note()}\n\n"
            "| proteins | answers | errors | structure matching s | answering s | proteins/min | answers/min |\n"
            "|---|---|---|---|---|---|---|\n"
            f"| {len(items)} | {len(rows)} | {counts['errors']} | {prep:.1f} | {counts['seconds']:.1f} | "
            f"{len(items) / total * 60:.1f} | {len(rows) / total * 60:.1f} |\n")
    Path(args.out).write_text("<!-- bench_ask_fasta -->\n" + text + "<!-- /bench_ask_fasta -->\n")
    print(text)


if __name__ == "__main__":
    main()
