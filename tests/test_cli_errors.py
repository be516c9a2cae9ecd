"""Issue 10 regressions on the CLI: each user-caused failure ends as ``sepit <verb>: error: <what and where>``
with exit code 2 (no traceback), is found before any long work, and leaves no half-written output."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sepit.cli import main
from sepit.io_utils import _HOST, atomic_dir, open_text, remove_stale_tmp_dirs

REPO = Path(__file__).resolve().parents[1]
MINI_DAT = REPO / "tests" / "data" / "fixtures" / "mini.dat"
PDB = REPO / "tests" / "data" / "fixtures" / "1xyz.pdb"


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    return code, capsys.readouterr().err


def assert_user_error(argv: list[str], capsys, verb: str, *fragments: str) -> str:
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"sepit {verb}: error: "), err
    for fragment in fragments:
        assert fragment in last, last
    return last


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    sys.path.insert(0, str(REPO / "tests" / "model"))
    from tiny_sepit import tiny_sepit

    from sepit.model.build import save_sepit

    return save_sepit(tmp_path_factory.mktemp("cli") / "model", *tiny_sepit(seed=0))


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a command loads a model (checks must come first)."""
    from sepit.api import Sepit

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(Sepit, "from_pretrained", refuse)


def truncated_gzip(path: Path, text: bytes) -> Path:
    data = gzip.compress(text)
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_gzip(path: Path, text: bytes) -> Path:
    data = bytearray(gzip.compress(text))
    data[20:60] = b"\x00" * 40
    path.write_bytes(bytes(data))
    return path


# --- missing input files ---
def test_missing_fasta_input_and_structure_index(tmp_path, capsys, no_model_load):
    missing = tmp_path / "nope.fasta"
    assert_user_error(["ask", "q?", "--model", str(tmp_path), "--fasta", str(missing)], capsys, "ask",
                      "--fasta", "file not found", str(missing))
    assert_user_error(["data", "build", "--input", str(tmp_path / "x.dat"), "--out", str(tmp_path / "o")], capsys,
                      "data build", "--input", "x.dat")
    assert_user_error(["data", "build", "--input", str(MINI_DAT), "--out", str(tmp_path / "o"),
                       "--structure-index", str(tmp_path / "index.tsv")], capsys, "data build",
                      "--structure-index", "index.tsv")
    assert_user_error(["ask", "q?", "--model", str(tmp_path / "no-model"), "--sequence", "MKT"], capsys, "ask",
                      "--model", "folder not found")
    assert not (tmp_path / "o").exists()


# --- truncated or corrupt .gz ---
def test_truncated_and_corrupt_gzip_name_the_file(tmp_path, capsys, no_model_load):
    fasta = b">P1\n" + b"MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQ\n" * 400
    cut = truncated_gzip(tmp_path / "cut.fa.gz", fasta)
    assert_user_error(["ask", "q?", "--model", str(tmp_path), "--fasta", str(cut)], capsys, "ask",
                      str(cut), "truncated")
    bad = corrupt_gzip(tmp_path / "bad.fa.gz", fasta)
    assert_user_error(["ask", "q?", "--model", str(tmp_path), "--fasta", str(bad)], capsys, "ask",
                      str(bad), "corrupt gzip")
    flat = truncated_gzip(tmp_path / "mini.dat.gz", MINI_DAT.read_bytes() * 50)
    assert_user_error(["data", "build", "--input", str(flat), "--out", str(tmp_path / "ds"), "--no-progress"],
                      capsys, "data build", str(flat), "truncated")
    assert not (tmp_path / "ds").exists()


def test_open_text_names_the_file_on_bad_gzip(tmp_path):
    from sepit.errors import InputFormatError

    path = corrupt_gzip(tmp_path / "x.tsv.gz", b"".join(b"P%05d\tkinase %d\n" % (i, i * 7) for i in range(5000)))
    with pytest.raises(InputFormatError, match=r"x.tsv.gz: (corrupt gzip|truncated)"), open_text(path) as fh:
        fh.read()
    plain = gzip.compress(b">a\nMKT\n")
    (tmp_path / "ok.fa.gz").write_bytes(plain)
    with open_text(tmp_path / "ok.fa.gz") as fh:
        assert fh.read(1) == ">"
        fh.seek(0)  # read_fasta peeks, then rewinds
        assert fh.read() == ">a\nMKT\n"


# --- truncated, header-corrupt or missing safetensors ---
@pytest.mark.parametrize("damage", ["truncated", "header", "missing"])
def test_damaged_model_weights(model_dir, tmp_path, capsys, damage):
    folder = Path(shutil.copytree(model_dir, tmp_path / damage))
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "header":
        weights.write_bytes(b"\xff" * 8 + data[8:])
    else:
        weights.unlink()
    last = assert_user_error(["ask", "q?", "--model", str(folder), "--sequence", "MKTAYIAKQR"], capsys, "ask",
                             f"--model {folder}")
    assert ("safetensors" in last) if damage != "missing" else ("model.safetensors" in last)


# --- bad option values, caught while parsing ---
@pytest.mark.parametrize(("argv", "fragment"), [
    (["--max-new-tokens", "0"], "argument --max-new-tokens: must be at least 1, got 0"),
    (["--sample", "--temperature", "-0.5"], "argument --temperature: must be greater than 0, got -0.5"),
    (["--top-p", "1.5"], "argument --top-p: must be in (0, 1]"),
])
def test_bad_generation_values(tmp_path, capsys, no_model_load, argv, fragment):
    assert_user_error(["ask", "q?", "--model", str(tmp_path), "--sequence", "MKT", *argv], capsys, "ask", fragment)


def test_residues_structure_and_choices_are_checked_before_the_model_loads(tmp_path, capsys, no_model_load):
    model = str(tmp_path)
    assert_user_error(["ask", "q?", "--model", model, "--sequence", "MKT1AY", "--structure", str(PDB)], capsys,
                      "ask", "--sequence", "invalid residue '1' at position 4")
    assert_user_error(["ask", "q?", "--model", model, "--sequence", "MKTAY", "--choices", "yes|yes"], capsys, "ask",
                      "--choices", "distinct")
    assert_user_error(["ask", "q?", "--model", model, "--sequence", "MKTAY", "--choices", "yes"], capsys, "ask",
                      "at least two")
    broken = tmp_path / "broken.pdb"
    broken.write_text("this is not a structure\n")
    assert_user_error(["ask", "q?", "--model", model, "--structure", str(broken)], capsys, "ask", str(broken))
    assert_user_error(["ask", "q?", "--model", model], capsys, "ask", "give the protein")


def test_valid_ask_still_answers(model_dir, capsys):
    code, _ = run_cli(["ask", "What is it?", "--model", str(model_dir), "--sequence", "MKTAYIAKQR",
                       "--choices", "yes|no", "--max-new-tokens", "2", "--json"], capsys)
    assert code == 0


# --- configs with unknown names ---
@pytest.mark.parametrize(("override", "fragment"), [
    (["--encoder.size", "huge"], "encoder.size: unknown ESM-2 size 'huge'"),
    (["--stage1.optim.scheduler", "bogus"], "stage1.optim.scheduler: unknown scheduler 'bogus'"),
])
def test_unknown_encoder_size_or_scheduler(tmp_path, capsys, monkeypatch, override, fragment):
    import sepit.train.run

    monkeypatch.setattr(sepit.train.run, "train_stage", lambda *a, **k: pytest.fail("training started"))
    assert_user_error(["train", "--stage", "1", "--config", "debug", "--output-dir", str(tmp_path / "run"),
                       *override], capsys, "train", fragment)


# --- predict --batch-size 0 ---
def test_predict_batch_size_zero_leaves_nothing(tmp_path, capsys, no_model_load):
    out = tmp_path / "preds.jsonl"
    assert_user_error(["predict", "--model", str(tmp_path), "--data", str(tmp_path), "--out", str(out),
                       "--batch-size", "0"], capsys, "predict", "--batch-size", "at least 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- existing output folder: refused before the build reads anything ---
def test_existing_output_folder_is_refused_before_the_build(tmp_path, capsys, monkeypatch):
    import sepit.data.build

    monkeypatch.setattr(sepit.data.build, "read_records", lambda *a, **k: pytest.fail("the build started"))
    out = tmp_path / "ds"
    out.mkdir()
    assert_user_error(["data", "build", "--input", str(MINI_DAT), "--out", str(out)], capsys, "data build",
                      f"output folder {out} already exists", "--overwrite")


# --- atomic_dir removes the leftovers of killed runs, and only those ---
KILLED_RUN = """
import os, signal, sys
from sepit.io_utils import atomic_dir
with atomic_dir(sys.argv[1]) as tmp:
    (tmp / "half-written").write_text("x")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_atomic_dir_cleans_stale_leftovers_of_killed_runs(tmp_path):
    final = tmp_path / "dataset"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(final)], cwd=REPO, check=False)
    assert killed.returncode == -signal.SIGKILL
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".dataset.tmp-")]
    assert len(leftovers) == 1 and (leftovers[0] / "half-written").exists() and not final.exists()
    live = tmp_path / f".dataset.tmp-{_HOST}-{os.getppid()}-abc"  # a run still going (our parent is alive)
    other_host = tmp_path / ".dataset.tmp-otherhost-1-abc"
    foreign = tmp_path / ".dataset.tmp-handmade"
    unrelated = tmp_path / f".other.tmp-{_HOST}-999999999-abc"
    for path in (live, other_host, foreign, unrelated):
        path.mkdir()
    with atomic_dir(final) as tmp:
        (tmp / "done").write_text("ok")
    assert (final / "done").read_text() == "ok"
    assert not leftovers[0].exists()
    assert all(p.exists() for p in (live, other_host, foreign, unrelated))
    assert remove_stale_tmp_dirs(final) == []
