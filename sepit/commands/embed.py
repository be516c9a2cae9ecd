"""``sepit embed``: structure-aware protein embeddings (pooled, optionally per residue) to Parquet or NumPy."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "embed", help="protein embeddings from a sepit encoder",
        description="Embed proteins with the structure-aware encoder of a stage-0, 1 or 2 model: the mean of "
                    "its (penultimate-layer) residue states, optionally every residue's state. Proteins come "
                    "from a FASTA file (structures matched by accession or id in --structures) or a built "
                    "dataset (its aligned structures). The output (.parquet or .npz, by name) says per protein "
                    "whether a structure was used. An interrupted run resumes from OUT.partial/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="stage-0 folder (encoder/ inside) or stage-1/2 sepit folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fasta", help="FASTA file of the proteins (unique ids)")
    src.add_argument("--data", help="built dataset folder (`sepit data build`): all its proteins")
    p.add_argument("--structures", default=None,
                   help="folder of structure files (AlphaFold models, PDB/mmCIF named by accession or FASTA id)")
    p.add_argument("--out", required=True, help="output file: OUT.parquet or OUT.npz")
    p.add_argument("--per-residue", action="store_true", help="also write each residue's embedding")
    p.add_argument("--layer", type=int, default=None,
                   help="encoder hidden state to use; none given = the layer the LLM reads (the penultimate)")
    p.add_argument("--batch-size", type=int, default=8, help="proteins per forward pass")
    p.add_argument("--max-residues", type=int, default=None,
                   help="crop longer proteins to this many residues; none given = the encoder's limit")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def dataset_proteins(folder: str) -> list:
    from sepit.data.fasta import Protein
    from sepit.data.store import DatasetStore

    store = DatasetStore(folder)
    out = []
    for acc in store.accessions():
        entry = store.protein(acc)
        out.append(Protein(acc, entry.sequence, acc, entry.coords, entry.plddt, entry.structure_source))
    return out


def run(args) -> int:
    from sepit.data.fasta import attach_structures, read_proteins
    from sepit.embed import ProteinEmbedder, embed_to_file, output_format
    from sepit.errors import SepitError

    output_format(args.out)
    if args.batch_size < 1:
        raise SepitError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.data and args.structures:
        raise SepitError("--structures goes with --fasta; a built dataset already holds its structures")
    proteins = read_proteins(args.fasta) if args.fasta else dataset_proteins(args.data)
    attach_structures(proteins, args.structures)
    kwargs = {"layer": args.layer} if args.layer is not None else {}
    embedder = ProteinEmbedder.from_folder(args.model, max_residues=args.max_residues, device=args.device, **kwargs)
    counts = embed_to_file(embedder, proteins, args.out, args.batch_size, args.per_residue,
                           overwrite=args.overwrite, progress=not args.no_progress)
    print(f"{args.out}: {counts['proteins']} proteins ({counts['with_structure']} with a structure"
          + (f", {counts['resumed']} from an earlier run" if counts["resumed"] else "") + ")")
    return 0
