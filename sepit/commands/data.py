"""``sepit data build|download|inspect``: build an instruction dataset, fetch public files, look at a build."""

from __future__ import annotations

import argparse

from sepit.commands import existing_dir, existing_file, existing_path, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="build, download or inspect instruction datasets",
                                   description="Build an instruction dataset from UniProt entries and structures,"
                                   " download public files, or inspect a built dataset.")
    sub = parser.add_subparsers(dest="data_verb", metavar="<action>", required=True)
    _register_build(sub)
    _register_download(sub)
    _register_inspect(sub)


def _register_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="flat files / UniProt XML / TSV exports + structures -> dataset folder",
                       description="Build proteins + instructions tables (written atomically).")
    p.add_argument("--input", nargs="+", required=True, metavar="FILE", type=existing_file,
                   help="Swiss-Prot flat files (.dat/.dat.gz), UniProt XML (.xml/.xml.gz) and/or UniProt TSV "
                        "exports (.tsv/.tsv.gz), mixed")
    p.add_argument("--out", required=True, metavar="DIR", help="output dataset folder")
    p.add_argument("--structures", metavar="DIR|TAR", type=existing_path,
                   help="folder searched (recursively) for AlphaFold models named by accession and PDB/mmCIF files"
                        " named by PDB id, or an uncompressed .tar of such files"
                        " (the AlphaFold DB Swiss-Prot tarball of .pdb.gz/.cif.gz), read in place")
    p.add_argument("--structure-index", metavar="FILE", type=existing_file,
                   help="TSV with columns accession, file[, chain] (file relative to the index's folder or to"
                        " --structures)")
    p.add_argument("--split", choices=["homology", "random"], default="homology",
                   help="homology: whole sequence clusters on one side (default); random: per protein")
    p.add_argument("--identity", type=float, default=0.3,
                   help="identity threshold of homology clusters (identical residues / shorter length)")
    p.add_argument("--fractions", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VALID", "TEST"),
                   help="share of proteins per split")
    p.add_argument("--cluster-method", choices=["auto", "mmseqs", "opal"], default="auto",
                   help="pair search: mmseqs (fast), opal (exhaustive, in-process), "
                        "auto (opal up to 2000 proteins, else mmseqs)")
    p.add_argument("--coverage", type=float, default=0.0,
                   help="MMseqs2 clustering: share of both sequences an alignment must cover")
    p.add_argument("--no-verify-split", action="store_true",
                   help="after MMseqs2 clustering, skip the checks that repair pairs it missed: a sensitive MMseqs2"
                        " search of held-out vs all proteins, then (up to a few thousand proteins) an exact pyopal"
                        " alignment of every held-out protein with every training one")
    p.add_argument("--split-check-sample", type=int, default=1000, metavar="N",
                   help="at scale, report how many of N random held-out proteins reach the threshold to any"
                        " training protein by exact alignment (pyopal; costs N x training-set alignments)")
    p.add_argument("--split-check-sensitivity", type=float, default=None, metavar="S",
                   help="MMseqs2 sensitivity (-s, 1-7.5) of the search check of held-out proteins; default 7.5 up to"
                        " 100,000 proteins, 5.7 (MMseqs2's default, its prefilter about 4x faster) above")
    p.add_argument("--split-check-max-seqs", type=positive_int, default=100, metavar="N",
                   help="candidates aligned per held-out protein in the search check (proteins of the other"
                        " sides only, so its own cluster cannot crowd them out)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, phrasings and negatives")
    p.add_argument("--min-structure-identity", type=float, default=0.9,
                   help="reject a structure whose chain aligns below this identity to the protein")
    p.add_argument("--yes-no-pairs", type=int, default=1, help="yes+no question pairs per protein and category")
    p.add_argument("--num-choices", type=positive_int, default=4, help="options per multiple-choice question")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="threads for MMseqs2/pyopal and processes for structure parsing")
    p.add_argument("--batch-size", type=positive_int, default=2000,
                   help="proteins per streamed batch (memory of the build grows with it, not with the input)")
    p.add_argument("--go-ontology", metavar="FILE", default=None,
                   help="GO graph (go-basic.obo[.gz] or GO.db's GO.sqlite): GO 'no' answers and distractors then "
                        "avoid ancestors of the protein's terms (default: $SEPIT_GO or the copy installed by "
                        "scripts/install.sh, when present; 'none' disables)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_build)


def _register_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="fetch Swiss-Prot entries, AlphaFold models and RCSB mmCIF files",
                       description="Download into a cache folder (files already there are reused).")
    p.add_argument("--out", required=True, metavar="DIR", help="cache folder (uniprot/ and structures/ inside)")
    p.add_argument("--query", action="append", default=[], help="UniProt query, e.g. 'reviewed:true AND"
                   " gene:HBA1' (repeatable)")
    p.add_argument("--alphafold", nargs="*", default=[], metavar="ACC", help="AlphaFold DB models by accession")
    p.add_argument("--pdb", nargs="*", default=[], metavar="ID", help="RCSB mmCIF files by PDB id")
    p.add_argument("--uniprot-url", default=None, help="UniProt stream endpoint (default: rest.uniprot.org)")
    p.add_argument("--alphafold-url", default=None, help="AlphaFold files base URL")
    p.add_argument("--rcsb-url", default=None, help="RCSB download base URL")
    p.add_argument("--retries", type=int, default=3, help="retries per file on network errors and 5xx")
    p.set_defaults(func=_download)


def _register_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print the summary of a built dataset and sample items")
    p.add_argument("dir", metavar="DIR", type=existing_dir, help="built dataset folder")
    p.add_argument("--samples", type=int, default=3, help="number of sample items to print")
    p.add_argument("--seed", type=int, default=0, help="which samples")
    p.set_defaults(func=_inspect)


def _build(args: argparse.Namespace) -> int:
    from sepit.data.build import BuildConfig, build_dataset
    from sepit.data.summary import format_summary
    from sepit.resources import default_go_ontology

    cfg = BuildConfig(
        inputs=list(args.input), out=args.out, structures=args.structures, structure_index=args.structure_index,
        split=args.split, identity=args.identity, coverage=args.coverage, fractions=list(args.fractions),
        cluster_method=args.cluster_method,
        seed=args.seed, min_structure_identity=args.min_structure_identity, yes_no_pairs=args.yes_no_pairs,
        num_choices=args.num_choices, threads=args.threads, overwrite=args.overwrite, progress=not args.no_progress,
        go_ontology=default_go_ontology(args.go_ontology), verify_split=not args.no_verify_split,
        split_check_sample=args.split_check_sample, split_check_sensitivity=args.split_check_sensitivity,
        split_check_max_seqs=args.split_check_max_seqs, batch_size=args.batch_size)
    print(format_summary(build_dataset(cfg)))
    print(f"written: {args.out}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from sepit.data.download import Downloader, Endpoints

    defaults = Endpoints()
    endpoints = Endpoints(args.uniprot_url or defaults.uniprot, args.alphafold_url or defaults.alphafold,
                          args.rcsb_url or defaults.rcsb)
    dl = Downloader(args.out, endpoints, retries=args.retries)
    paths = [dl.uniprot(q) for q in args.query]
    paths += [dl.alphafold(acc) for acc in args.alphafold]
    paths += [dl.rcsb(pdb) for pdb in args.pdb]
    for path in paths:
        print(path)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import random

    from sepit.data.store import DatasetStore
    from sepit.data.summary import format_summary

    store = DatasetStore(args.dir)
    print(format_summary(store.summary))
    items = store.instructions()
    rng = random.Random(args.seed)
    for idx in rng.sample(range(len(items)), min(args.samples, len(items))):
        item = items[idx]
        entry = store.protein(item["accession"])
        points = "none" if entry.coords is None else f"{entry.coords.shape[0]} residues, {entry.structure_source}"
        print(f"\n[{item['split']}] {item['id']}  ({len(entry.sequence)} aa; structure: {points})")
        print(f"  Q: {item['question']}" + (f"  choices: {item['choices']}" if item["choices"] else ""))
        print(f"  A: {item['answer'][:300]}")
    return 0

