"""``sepit demo``: the whole system on real data on one CPU — build the dataset (homology-aware split, or random
with ``--split random``) and the reference index of its training split, train stages 0-2 with the ``demo`` preset
(prompts hold retrieved evidence), answer the test split with retrieval and without it (the "w/o retrieval" row),
score them against the nearest-neighbour and LLM-only baselines, and answer three example questions with their
evidence. Every step is resumable: rerun to continue.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from sepit.errors import ConfigError


@dataclass
class DemoPlan:
    data: Path
    out: Path
    quick: bool = False
    seed: int = 0
    split: str = "homology"  # "random": neighbours are close and copying is strong (retrieval's other test)
    eval_per_task: dict = field(default_factory=lambda: {"caption": 8, "open": 24, "closed": 24})
    max_new_tokens: int = 64
    timings: dict = field(default_factory=dict)  # step -> seconds (kept across resumed runs)
    persist: bool = False  # write timings to ``timings_file`` (the demo itself; not scripts reusing its plan)

    @property
    def dataset(self) -> Path:
        return self.out / "dataset"

    @property
    def index(self) -> Path:
        return self.out / "index"

    @property
    def timings_file(self) -> Path:
        return self.out / "demo_timings.json"

    def load_timings(self) -> None:
        self.persist = True
        if self.timings_file.is_file():
            self.timings = json.loads(self.timings_file.read_text())

    def record(self, name: str, seconds: float, done_before: bool) -> None:
        """A step's wall-clock time; a step done by an earlier (interrupted) run keeps that run's time."""
        if not (done_before and name in self.timings):
            self.timings[name] = round(seconds, 1)
        if self.persist:
            self.timings_file.write_text(json.dumps(self.timings, indent=2))


SAMPLE_QUERY = "reviewed:true AND proteome:UP000000625 AND length:[80 TO 300]"  # E. coli K-12, Swiss-Prot
SAMPLE_STRUCTURES = 150


def download_sample(out: Path, endpoints=None, retries: int = 2) -> Path:
    """A small real sample: Swiss-Prot entries of one proteome and AlphaFold DB models for some of them."""
    from sepit.data.download import Downloader, DownloadError
    from sepit.data.uniprot import parse_flatfile

    raw = out / "raw"
    dl = Downloader(raw, endpoints, retries=retries, backoff=0.5, timeout=30)
    try:
        flat = dl.uniprot(SAMPLE_QUERY, name="sample")
    except DownloadError as err:
        raise ConfigError(f"no data and no download ({err}). Pass --data DIR (Swiss-Prot .dat/.dat.gz and/or "
                          "UniProt .tsv[.gz] files, plus a structures/ folder) or set SEPIT_DATA.") from None
    for rec in [r for _, r in zip(range(SAMPLE_STRUCTURES), parse_flatfile(flat), strict=False)]:
        try:
            dl.alphafold(rec.accession)
        except DownloadError as err:
            print(f"  no AlphaFold model for {rec.accession}: {err}")
    return raw


def find_data(data: str | None, out: Path | None = None) -> Path:
    """``--data``, else ``$SEPIT_DATA``, else a downloaded sample (needs network)."""
    root = data or os.environ.get("SEPIT_DATA")
    if not root:
        print("no --data and no SEPIT_DATA: downloading a small sample from UniProt and AlphaFold DB")
        return download_sample(out or Path("runs/demo"))
    path = Path(root)
    if not path.is_dir():
        raise ConfigError(f"data folder not found: {path}")
    return path


def demo_inputs(root: Path) -> tuple[list[str], Path | None, Path | None]:
    """(flat/TSV files, structures folder, structure index). The layout of ../shared/data is recognised
    (Swiss-Prot flat files + the TSV of proteins with structures); otherwise every .dat/.tsv file at the top."""
    inputs = sorted(str(p) for sub in ("swissprot_flatfiles", "uniprot") for p in (root / sub).glob("*.dat*"))
    inputs += sorted(str(p) for p in (root / "uniprot_tsv").glob("*with_structure*.tsv*"))
    if not inputs:
        inputs = sorted(str(p) for p in root.iterdir() if p.name.endswith((".dat", ".dat.gz", ".tsv", ".tsv.gz")))
    if not inputs:
        raise ConfigError(f"{root}: no Swiss-Prot flat files (.dat/.dat.gz) or UniProt TSV files found")
    structures = root / "structures" if (root / "structures").is_dir() else None
    index = structures / "INDEX.tsv" if structures and (structures / "INDEX.tsv").is_file() else None
    return inputs, structures, index


def step(plan: DemoPlan, name: str, done: bool):
    """Context for a timed step; prints what it does (or that it is already done)."""
    class _Step:
        def __enter__(self_inner):
            self_inner.start = time.time()
            print(f"\n== {name}{' (already done)' if done else ''}", flush=True)
            return self_inner

        def __exit__(self_inner, *exc):
            if exc[0] is None:
                plan.record(name, time.time() - self_inner.start, done)
            return False
    return _Step()


def split_words(split: str) -> str:
    return "homology-aware split at 30% identity" if split == "homology" else "random split"


def build_data(plan: DemoPlan) -> None:
    from sepit.data.build import BuildConfig, build_dataset
    from sepit.resources import default_go_ontology

    done = (plan.dataset / "summary.json").is_file()
    with step(plan, f"1. build the dataset ({split_words(plan.split)})", done):
        if done:
            return
        inputs, structures, index = demo_inputs(plan.data)
        build_dataset(BuildConfig(inputs=inputs, out=str(plan.dataset), structures=str(structures or "") or None,
                                  structure_index=str(index) if index else None, split=plan.split,
                                  identity=0.3, seed=plan.seed, go_ontology=default_go_ontology()))


def build_reference(plan: DemoPlan) -> None:
    """The reference index of the training split (never the test split), used by training, answers and the
    nearest-neighbour baseline."""
    from sepit.retrieval.index import ReferenceIndex, build_index

    done = (plan.index / "meta.json").is_file()
    with step(plan, "1b. build the reference index of the training split (retrieval)", done):
        if done:
            ReferenceIndex(plan.index).check_dataset(plan.dataset)  # a rebuilt dataset: stale index is an error
            return
        build_index(plan.dataset, plan.index, "train")


def demo_config(plan: DemoPlan, extra: list[str] | None = None):
    from sepit.train.config import load_train_config

    overrides = [f"dataset={plan.dataset}", f"output_dir={plan.out / 'run'}", f"seed={plan.seed}",
                 f"retrieval.index={plan.index}"]
    if plan.quick:
        overrides += ["stage0.data.max_items=64", "stage1.data.max_items=48", "stage2.data.max_items=64"]
    return load_train_config("demo", overrides + list(extra or []))


def train_all(plan: DemoPlan, cfg) -> Path:
    from sepit.train.run import train_stage

    for stage in (0, 1, 2):
        done = (cfg.model_dir(stage) / "config.json").is_file()
        with step(plan, f"2.{stage} train stage {stage}", done):
            if not done:
                ckpt = cfg.stage_dir(stage) / "checkpoints"
                train_stage(cfg, stage, resume=ckpt.is_dir() and any(ckpt.glob("checkpoint-*")))
    return cfg.model_dir(2)


def eval_ids(plan: DemoPlan) -> list[str]:
    """A fixed, seeded sample of the test split per task (the same items for every model)."""
    from sepit.data.store import DatasetStore

    rows = DatasetStore(plan.dataset).instructions("test")
    per_task = {k: max(2, v // 3) if plan.quick else v for k, v in plan.eval_per_task.items()}
    rng = random.Random(plan.seed)
    chosen: list[str] = []
    for task, n in per_task.items():
        ids = [i for i, t in zip(rows["id"], rows["task"], strict=True) if t == task]
        chosen += rng.sample(ids, min(n, len(ids)))
    return chosen


def demo_retriever(plan: DemoPlan, model_dir: Path):
    """Evidence for the test items, as the model was trained (None when it was trained without retrieval)."""
    from sepit.retrieval.evidence import Retriever, trained_settings
    from sepit.retrieval.index import ReferenceIndex

    trained = trained_settings(model_dir)
    if trained is None:
        return None
    index = ReferenceIndex(plan.index)
    index.check_dataset(plan.dataset, "test")
    return Retriever.from_settings(index, trained)


def evaluate_all(plan: DemoPlan, model_dir: Path) -> Path:
    """SEPIT predictions with and without retrieval, the two baselines on the same items, and the report."""
    from sepit.api import Sepit
    from sepit.data.store import DatasetStore
    from sepit.eval.baselines import llm_prior_predictions, load_labels, load_split, nearest_neighbour_predictions
    from sepit.eval.generate import GenerationSettings
    from sepit.eval.predict import dataset_items, predict_items
    from sepit.eval.records import read_predictions, write_predictions

    preds = plan.out / "predictions"
    ids = set(eval_ids(plan))
    files = {"sepit": preds / "sepit.jsonl", "plain": preds / "sepit_no_retrieval.jsonl",
             "nn": preds / "nearest_neighbour.jsonl", "llm": preds / "llm_only.jsonl",
             "naive": preds / "naive.jsonl"}
    retriever = demo_retriever(plan, model_dir)
    if retriever is None:
        files.pop("plain")
    runs = [("sepit", "3.1 SEPIT answers the test items" + (" with retrieval" if retriever else ""), retriever,
             "sepit (demo)")]
    if retriever is not None:
        runs.append(("plain", "3.1b SEPIT answers them without retrieval (ablation)", None, "sepit w/o retrieval"))
    for key, title, ret, name in runs:
        with step(plan, title, files[key].is_file()):
            if not files[key].is_file():
                sepit = Sepit.from_pretrained(model_dir)
                items = [it for it in dataset_items(DatasetStore(plan.dataset), "test",
                                                    max_residues=sepit.processor.max_residues) if it["id"] in ids]
                predict_items(sepit.model, sepit.processor, items, files[key], name, batch_size=8,
                              settings=GenerationSettings(max_new_tokens=plan.max_new_tokens), retriever=ret)
    train, train_seqs = load_split(plan.dataset, "train")
    test, test_seqs = load_split(plan.dataset, "test")
    test = [it for it in test if it.id in ids]
    with step(plan, "3.2 baseline: nearest-neighbour homology transfer", files["nn"].is_file()):
        if not files["nn"].is_file():
            from sepit.retrieval.index import ReferenceIndex

            labels = load_labels(plan.dataset, train_seqs)
            index = ReferenceIndex(plan.index)  # one search code path with sepit's retrieval
            write_predictions(nearest_neighbour_predictions(train, train_seqs, test, test_seqs, train_labels=labels,
                                                            index=index), files["nn"])
    with step(plan, "3.3 baseline: the LLM alone (no protein)", files["llm"].is_file()):
        if not files["llm"].is_file():
            write_predictions(llm_prior_predictions(test, max_new_tokens=plan.max_new_tokens), files["llm"])
    ontology = ontology_context(plan)
    with step(plan, "3.4 baseline: naive (the training label distribution)", files["naive"].is_file()):
        if not files["naive"].is_file():
            from sepit.eval.naive import naive_predictions

            labels = load_labels(plan.dataset, train_seqs)
            write_predictions(naive_predictions(train, test, train_labels=labels, lexicon=ontology.lexicon),
                              files["naive"])
    report = plan.out / "report"
    with step(plan, "3.5 score and write the report", False):
        from sepit.eval.identity_bins import load_or_compute
        from sepit.eval.metrics import Scorers, evaluate
        from sepit.eval.report import write_report

        rows = read_predictions(files.values())
        results = evaluate(rows, Scorers(), ontology=ontology, identity=load_or_compute(plan.dataset))
        results["demo"] = training_summary(plan)
        write_report(results, report, overwrite=True)
        write_audit(rows, report)
    return report


def ontology_context(plan: DemoPlan):
    """GO lexicon (the cached GO graph, if any) with information accretion from the demo's training split."""
    from sepit.eval.go_metrics import OntologyContext
    from sepit.resources import default_go_ontology

    return OntologyContext.build(default_go_ontology(), plan.dataset)


def write_audit(rows, report: Path) -> None:
    """Evidence audit of the models answered with retrieval, appended to the report (and as JSON)."""
    from sepit.retrieval.audit import audit, audit_markdown

    models = sorted({r.model for r in rows if isinstance(r.extra.get("evidence"), list)})
    if not models:
        return
    results = {m: audit([r for r in rows if r.model == m]) for m in models}
    (report / "evidence_audit.json").write_text(json.dumps(results, indent=2))
    with open(report / "report.md", "a") as fh:
        fh.write(audit_markdown(results))


def training_summary(plan: DemoPlan) -> dict:
    """What the demo trained on (its scale), for the report."""
    out = {}
    for stage in (0, 1, 2):
        path = plan.out / "run" / f"stage{stage}" / "summary.json"
        if path.is_file():
            out[f"stage{stage}"] = json.loads(path.read_text())
    return out


def describe_training(plan: DemoPlan, cfg) -> str:
    """Markdown section appended to the report: data, model sizes, items and time per stage."""
    summary = json.loads((plan.dataset / "summary.json").read_text())
    lines = ["", "## What the demo trained on", "",
             f"Dataset: {summary['proteins']} proteins, {summary['instructions']} instructions, split "
             f"{summary.get('per_split')} ({split_words(plan.split)}); structures for "
             f"{summary['structure_coverage']['with_structure']} proteins.",
             f"Model: ESM-2 {cfg.encoder.size} architecture (random init, warmed up in stage 0) + "
             f"{cfg.llm.name} (LoRA r={cfg.lora.r} in stages 1-2), {cfg.moe.num_experts} experts top-{cfg.moe.top_k} "
             f"in stage 2, pooling stride {cfg.pooling_stride}, proteins cropped to "
             f"{cfg.stage1.data.max_residues} residues.", "",
             "| stage | items | steps | final train loss | seconds |", "|---|---|---|---|---|"]
    for stage, s in training_summary(plan).items():
        lines.append(f"| {stage} | {s['items']} | {s['steps']} | {s['train_loss']:.3f} | {s['seconds']} |")
    lines += ["", "Wall-clock per demo step (seconds): " + ", ".join(f"{k}: {v}" for k, v in plan.timings.items()),
              "", "At this scale (minutes of CPU training, a randomly initialised protein encoder) the numbers show "
              "that the pipeline works end to end; they are not the paper's figures."]
    return "\n".join(lines) + "\n"


EXAMPLES = (
    ("What is the function of this protein?", None),
    ("Where in the cell is this protein located?", None),
)


def example_questions(plan: DemoPlan, model_dir: Path) -> list[dict]:
    """Three questions about one test protein (one with a structure when possible); the last is closed-set."""
    from sepit.api import Sepit
    from sepit.data.store import DatasetStore

    store = DatasetStore(plan.dataset)
    test = store.instructions("test")
    closed = [r for r in test if r["task"] == "closed" and r["choices"] == ["yes", "no"]]
    with_structure = [r for r in closed if store.protein(r["accession"]).coords is not None]
    row = (with_structure or closed or list(test))[0]
    protein = store.protein(row["accession"])
    retriever = demo_retriever(plan, model_dir)
    sepit = Sepit.from_pretrained(model_dir, index=retriever)
    asks = [*EXAMPLES, (row["question"], list(row["choices"]) or None)]
    categories = ["function", "subcellular_location", row["category"]]
    out = []
    for (question, choices), category in zip(asks, categories, strict=True):
        answer = sepit.ask(question, sequence=protein.sequence[:256], choices=choices, category=category,
                           max_new_tokens=64)
        out.append({"accession": protein.accession, "has_structure": protein.coords is not None,
                    "question": question, **answer.to_dict(),
                    "reference": row["answer"] if question == row["question"] else None})
    return out


def run_demo(data: str | None = None, out: str = "runs/demo", quick: bool = False, seed: int = 0,
             split: str = "homology") -> dict:
    if split not in ("homology", "random"):
        raise ConfigError(f"demo split must be 'homology' or 'random', got {split!r}")
    plan = DemoPlan(find_data(data, Path(out)), Path(out), quick=quick, seed=seed, split=split)
    plan.out.mkdir(parents=True, exist_ok=True)
    plan.load_timings()
    started = time.time()
    build_data(plan)
    build_reference(plan)
    cfg = demo_config(plan)
    model_dir = train_all(plan, cfg)
    report = evaluate_all(plan, model_dir)
    with step(plan, "4. three example questions", False):
        examples = example_questions(plan, model_dir)
        (plan.out / "examples.json").write_text(json.dumps(examples, indent=2))
        for ex in examples:
            print(f"\n[{ex['accession']}{', with structure' if ex['has_structure'] else ''}] {ex['question']}")
            print(f"  -> {ex['answer']}")
            if ex["probabilities"]:
                print("     " + ", ".join(f"{k}: {v:.1%}" for k, v in ex["probabilities"].items()))
            if ex["reference"]:
                print(f"     (reference: {ex['reference']})")
            for ev in ex.get("evidence") or []:
                cited = "*" if ev["accession"] in ex.get("citations", []) else " "
                print(f"   {cited} [UniProt:{ev['accession']}] {ev['identity']:.0%} identity, E={ev['evalue']:.0e}: "
                      f"{ev['annotation']}")
            if ex.get("evidence") == []:
                print("     evidence: none (no annotated homolog in the reference)")
    this_run = round(time.time() - started, 1)
    plan.timings["total"] = round(sum(v for k, v in plan.timings.items() if k != "total"), 1)
    with open(report / "report.md", "a") as fh:
        fh.write(describe_training(plan, cfg))
    where = {"dataset": str(plan.dataset), "models": str(plan.out / "run"), "final model": str(model_dir),
             "predictions": str(plan.out / "predictions"), "report": str(report / "report.md"),
             "examples": str(plan.out / "examples.json")}
    print("\n== 5. written")
    for k, v in where.items():
        print(f"  {k:12s} {v}")
    resumed = f" (this run: {this_run / 60:.1f} min, the rest done by an earlier run)" \
        if this_run < plan.timings["total"] - 60 else ""
    print(f"  total time   {plan.timings['total'] / 60:.1f} min{resumed}")
    (plan.out / "demo_summary.json").write_text(json.dumps({"where": where, "timings": plan.timings}, indent=2))
    return where
