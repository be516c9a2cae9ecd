"""`sepit embed` / `Sepit.embed`: padding does not change a protein's embedding, a structure does, every row
says whether a structure was used, runs resume from their partial shards, and bad FASTA input is named."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from tiny_sepit import pdb_text, random_coords

from sepit.cli import main
from sepit.data.fasta import Protein
from sepit.embed import ProteinEmbedder, write_shard

SHORT, MID, LONG = "MKTAYIAKQRGAVLIPF", "MVLSPADKTNVKAAWGKVGAHAGEY", "GAVLIPFMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"


@pytest.fixture(scope="module")
def embedder(sepit_dir):
    return ProteinEmbedder.from_folder(sepit_dir, device="cpu")


def test_padding_does_not_change_an_embedding(embedder):
    coords = random_coords(len(MID), seed=3)
    alone = embedder.embed_batch([Protein("s", SHORT)], per_residue=True)[0]
    alone_mid = embedder.embed_batch([Protein("m", MID, coords=coords)], per_residue=True)[0]
    batch = embedder.embed_batch([Protein("l", LONG), Protein("s", SHORT), Protein("m", MID, coords=coords)],
                                 per_residue=True)
    assert batch[1]["per_residue"].shape == (len(SHORT), alone["pooled"].shape[0])
    np.testing.assert_allclose(batch[1]["pooled"], alone["pooled"], atol=1e-5)
    np.testing.assert_allclose(batch[1]["per_residue"], alone["per_residue"], atol=1e-5)
    np.testing.assert_allclose(batch[2]["pooled"], alone_mid["pooled"], atol=1e-5)
    np.testing.assert_allclose(batch[1]["pooled"], batch[1]["per_residue"].mean(0), atol=1e-5)


def test_a_structure_changes_the_embedding_and_is_reported(embedder):
    plain, folded = embedder.embed_batch([Protein("a", MID), Protein("b", MID, coords=random_coords(len(MID)))])
    assert not plain["structure"] and folded["structure"]
    assert np.abs(plain["pooled"] - folded["pooled"]).max() > 1e-4


def test_sepit_folder_stage0_folder_and_api_agree(sepit_dir, stage0_dir, tiny_parts, embedder):
    from sepit.api import Sepit

    proteins = [Protein("s", SHORT), Protein("l", LONG, coords=random_coords(len(LONG), seed=1))]
    from_sepit = [r["pooled"] for r in embedder.embed(proteins)]
    from_stage0 = [r["pooled"] for r in ProteinEmbedder.from_folder(stage0_dir, device="cpu").embed(proteins)]
    api = Sepit(*tiny_parts, device="cpu").embed_many([{"sequence": SHORT}])
    for a, b in zip(from_sepit, from_stage0, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(api[0]["pooled"], from_sepit[0], atol=1e-6)


def _fasta(tmp_path, records) -> str:
    path = tmp_path / "proteins.fasta"
    path.write_text("".join(f">{rid} some description\n{seq}\n" for rid, seq in records))
    return str(path)


def test_cli_writes_parquet_and_npz_with_structure_flags_and_resumes(sepit_dir, tmp_path):
    fasta = _fasta(tmp_path, [("sp|P11111|ONE_HUMAN", LONG), ("two", SHORT), ("three", MID)])
    structures = tmp_path / "structures"
    structures.mkdir()
    (structures / "two.pdb").write_text(pdb_text(SHORT))
    out = tmp_path / "emb.parquet"
    # an interrupted earlier run had finished protein "three": its (marker) row must be kept, not recomputed
    write_shard(out, [{"accession": "three", "length": len(MID), "structure": False, "structure_source": "",
                       "pooled": np.full(32, 7.0, np.float32)}])
    assert main(["embed", "--model", str(sepit_dir), "--fasta", fasta, "--structures", str(structures),
                 "--out", str(out), "--batch-size", "2", "--no-progress"]) == 0
    table = pq.read_table(out).to_pydict()
    assert table["accession"] == ["sp|P11111|ONE_HUMAN", "two", "three"]
    assert table["structure"] == [False, True, False] and table["structure_source"][1] == "two.pdb:A"
    assert table["embedding"][2] == [7.0] * 32 and len(table["embedding"][0]) == 32
    assert not (tmp_path / "emb.parquet.partial").exists()
    npz = tmp_path / "emb.npz"
    assert main(["embed", "--model", str(sepit_dir), "--fasta", fasta, "--out", str(npz), "--per-residue",
                 "--no-progress"]) == 0
    data = np.load(npz)
    assert list(data["accessions"]) == table["accession"] and not data["structure"].any()
    assert data["embeddings"].shape == (3, 32) and data["residues"].shape == (len(LONG + SHORT + MID), 32)
    first = data["residues"][data["offsets"][1]:data["offsets"][2]]  # protein "two", no structure this time
    np.testing.assert_allclose(first.mean(0), data["embeddings"][1], atol=1e-5)
    assert main(["embed", "--model", str(sepit_dir), "--fasta", fasta, "--out", str(npz), "--no-progress"]) == 2


@pytest.mark.parametrize("text, message", [
    (">a\nMKV\n>b\nGAV\n>a\nMKT\n", "duplicate id 'a' (first at line 1)"),
    (">a\nMKV\n>b\n>c\nGAV\n", "record b: empty sequence"),
    (">a\nMKV1\n", "invalid residue '1'"),
    ("MKV\n", "not a FASTA file"),
])
def test_bad_fasta_is_named(sepit_dir, tmp_path, capsys, text, message):
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(text)
    out = tmp_path / "emb.parquet"
    assert main(["embed", "--model", str(sepit_dir), "--fasta", str(fasta), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_cli_embeds_a_built_dataset_with_its_structures(sepit_dir, tiny_store_dir, tmp_path):
    from sepit.data.store import DatasetStore

    store = DatasetStore(tiny_store_dir)
    out = tmp_path / "ds.parquet"
    assert main(["embed", "--model", str(sepit_dir), "--data", str(tiny_store_dir), "--out", str(out),
                 "--max-residues", "48", "--batch-size", "16", "--no-progress"]) == 0
    table = pq.read_table(out).to_pydict()
    assert table["accession"] == store.accessions()
    assert table["structure"] == [store.protein(a).coords is not None for a in table["accession"]]
    assert table["length"] == [len(store.protein(a).sequence) for a in table["accession"]]
