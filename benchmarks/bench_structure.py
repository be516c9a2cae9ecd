"""Structure reading: sepit.data.structure.read_chains (gemmi) vs Biopython's PDBParser / MMCIFParser on the
same files, one run.

Files: real PDB files from ../shared/data/structures (experimental chains and AlphaFold models), decompressed
into a temporary folder, plus mmCIF versions of the same structures written by gemmi. Both sides parse the
file and extract one C-alpha per amino-acid residue of the first model. The full sepit path (read + chain
choice + alignment to the UniProt sequence) is timed too, for reference.

    python benchmarks/bench_structure.py [--files 40] [--out benchmarks/results/data.md]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
import warnings
from pathlib import Path

import gemmi
from bench_flatfile import write_section
from Bio.PDB import MMCIFParser, PDBParser
from Bio.PDB.Polypeptide import is_aa

from sepit.data.structure import read_chains, structure_for_sequence

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "structures"


def bio_ca(parser, path: Path) -> int:
    structure = parser.get_structure("x", str(path))
    model = next(iter(structure))
    return sum(1 for chain in model for res in chain if is_aa(res, standard=False) and "CA" in res)


def timed(fn, paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        fn(path)
    return (time.perf_counter() - start) / len(paths)


def prepare(tmp: Path, n: int) -> tuple[list[Path], list[Path]]:
    picks = sorted((DATA / "theseus_examples").rglob("*.pdb.gz"))[: n // 2]
    picks += sorted((DATA / "graphsite_af2_dna").glob("*.pdb.gz"))[: n - len(picks)]
    pdbs, cifs = [], []
    for i, src in enumerate(picks):
        pdb = tmp / f"s{i}.pdb"
        pdb.write_bytes(gzip.decompress(src.read_bytes()))
        try:
            n_bio = bio_ca(PDBParser(QUIET=True), pdb)
            st = gemmi.read_structure(str(pdb))
        except (RuntimeError, ValueError) as err:  # a few SCOP-style files: bad charge column
            print(f"skipped {src.name}: {err}")
            continue
        assert n_bio
        st.setup_entities()
        cif = tmp / f"s{i}.cif"
        cif.write_text(st.make_mmcif_document().as_string())
        pdbs.append(pdb)
        cifs.append(cif)
    return pdbs, cifs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=40, help="number of real structure files")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data.md")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        pdbs, cifs = prepare(Path(tmp), args.files)
        residues = sum(len(c.sequence) for p in pdbs for c in read_chains(p).values())
        rows = []
        for kind, files, parser in (("PDB", pdbs, PDBParser(QUIET=True)), ("mmCIF", cifs, MMCIFParser(QUIET=True))):
            ours = timed(read_chains, files)
            bio = timed(lambda p, parser=parser: bio_ca(parser, p), files)
            rows.append(f"| {kind} | {len(files)} | {1e3 * ours:.2f} | {1e3 * bio:.2f} | {bio / ours:.1f}x |")
            print(rows[-1], flush=True)
        seqs = {p: "".join(c.sequence for c in list(read_chains(p).values())[:1]) for p in pdbs}
        full = timed(lambda p: structure_for_sequence(p, seqs[p]), pdbs)
    text = "\n".join([
        "## Structure reading (bench_structure.py)",
        f"{len(pdbs)} real files ({residues} residues in all), read + one C-alpha per residue, first model;"
        " mean ms per file, one process.", "",
        "| format | files | sepit (gemmi) ms | Biopython ms | speed-up |", "|---|---|---|---|---|", *rows, "",
        f"Full sepit path on the PDB files (read + best chain + alignment to the sequence): {1e3 * full:.2f} ms"
        " per file."])
    write_section(args.out, "bench_structure", text)


if __name__ == "__main__":
    main()
