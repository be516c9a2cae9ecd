"""Baselines: nearest-neighbour homology transfer on a tiny known case; the LLM alone with SmolLM2."""

import json
import random

import pytest

from sepit.eval.baselines import Item, llm_prior_predictions, nearest_neighbour_predictions

ALPHABET = "ADEGKNPQRST"  # no F/Y/W: a poly-W query then has no positive Smith-Waterman score


def _random_seq(rng, n=120):
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def _mutate(seq, rng, n_mut):
    seq = list(seq)
    for pos in rng.sample(range(10, len(seq) - 10), n_mut):  # keep the ends so the local alignment is global
        seq[pos] = rng.choice([a for a in ALPHABET if a != seq[pos]])
    return "".join(seq)


def _data():
    rng = random.Random(0)
    train_seqs = {f"T{i}": _random_seq(rng) for i in range(4)}
    train = []
    for i, acc in enumerate(train_seqs):
        train += [
            Item(f"t{i}c", acc, "caption", "function", "Describe this protein.", f"function of {acc}"),
            Item(f"t{i}h", acc, "closed", "heme", "Does it bind heme?", "yes" if i == 2 else "no", ("yes", "no")),
        ]
    test_seqs = {"Q1": _mutate(train_seqs["T2"], rng, 12), "Q2": "W" * 30}
    test = [
        Item("q1c", "Q1", "caption", "function", "What does this protein do?", "function of T2"),
        Item("q1h", "Q1", "closed", "heme", "Does it bind heme?", "yes", ("yes", "no")),
        Item("q2h", "Q2", "closed", "heme", "Does it bind heme?", "no", ("yes", "no")),
    ]
    return train, train_seqs, test, test_seqs


def test_nearest_neighbour_transfers_from_mutated_parent():
    train, train_seqs, test, test_seqs = _data()
    rows = {r.id: r for r in nearest_neighbour_predictions(train, train_seqs, test, test_seqs)}
    assert rows["q1c"].prediction == "function of T2" and rows["q1h"].prediction == "yes"
    assert rows["q1c"].identity == pytest.approx(108 / 120, abs=0.02)  # 12 substitutions in 120 residues
    # no hit at all: most common training answer of the category, identity null (but present)
    assert rows["q2h"].prediction == "no" and rows["q2h"].identity is None
    assert rows["q2h"].to_json()["identity"] is None and rows["q1c"].model == "nearest-neighbour"


def test_nearest_neighbour_answers_closed_items_from_the_neighbours_labels():
    """With labels, yes/no follows whether the nearest annotated neighbour carries the asked label, and a
    multiple-choice item gets the option the nearest neighbour carrying any option has."""
    train, train_seqs, _, test_seqs = _data()
    labels = {"T0": {"location": ["Cytoplasm"]}, "T1": {}, "T2": {"cofactor": ["Heme"]},
              "T3": {"location": ["Nucleus"], "cofactor": ["Zn(2+)"]}}
    test = [
        Item("yes", "Q1", "closed", "cofactor", "Does it use heme as a cofactor?", "yes", ("yes", "no"), "heme"),
        Item("no", "Q1", "closed", "cofactor", "Does it use Mg(2+)?", "no", ("yes", "no"), "Mg(2+)"),
        # T2 (the parent) has no location: the nearest neighbour carrying one of the options answers
        Item("mc", "Q1", "closed", "location", "Where is it?", "Nucleus", ("Membrane", "Nucleus", "Secreted")),
    ]
    rows = {r.id: r for r in nearest_neighbour_predictions(train, train_seqs, test, test_seqs, train_labels=labels)}
    assert rows["yes"].prediction == "yes" and rows["no"].prediction == "no"
    assert rows["yes"].identity == pytest.approx(108 / 120, abs=0.02)  # answered by T2, the parent
    assert rows["mc"].prediction == "Nucleus" and rows["mc"].identity < 0.8  # answered by T3, unrelated


def _fake_dataset(folder, train, train_seqs, test, test_seqs):
    """A built dataset folder following docs/ARCHITECTURE.md (only the columns the baselines read)."""
    from datasets import Dataset, Features, List, Value

    seqs = {**train_seqs, **test_seqs}
    features = Features({
        "accession": Value("string"), "sequence": Value("string"),
        "coords": List(List(Value("float32"), length=3)), "plddt": List(Value("float32")),
        "structure_source": Value("string"),
    })
    Dataset.from_dict({
        "accession": list(seqs), "sequence": list(seqs.values()), "coords": [[] for _ in seqs],
        "plddt": [[] for _ in seqs], "structure_source": ["" for _ in seqs],
    }, features=features).save_to_disk(str(folder / "proteins"))
    items = [(it, "train") for it in train] + [(it, "test") for it in test]
    Dataset.from_dict({
        "id": [it.id for it, _ in items], "accession": [it.accession for it, _ in items],
        "task": [it.task for it, _ in items], "category": [it.category for it, _ in items],
        "question": [it.question for it, _ in items], "answer": [it.answer for it, _ in items],
        "choices": [list(it.choices) for it, _ in items], "split": [s for _, s in items],
    }).save_to_disk(str(folder / "instructions"))
    (folder / "summary.json").write_text("{}")


def test_baseline_nn_cli_on_built_dataset(tmp_path):
    from sepit.cli import main  # a broken import must fail the test, not skip it

    _fake_dataset(tmp_path, *_data())
    out = tmp_path / "nn.jsonl"
    assert main(["baseline", "nn", "--data", str(tmp_path), "--out", str(out)]) == 0
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["q1h"]["prediction"] == "yes" and rows["q1c"]["identity"] > 0.85


@pytest.mark.slow
def test_llm_alone_smollm2_decodes_continuation_only():
    items = [
        Item("a", "P1", "closed", "heme", "Does this protein bind heme?", "yes", ("yes", "no")),
        Item("b", "P1", "open", "function", "What is the function of this protein?", "Kinase."),
    ]
    rows = llm_prior_predictions(items, batch_size=3, max_new_tokens=4)
    for row in rows:
        assert row.prediction and "assistant" not in row.prediction and "Answer yes or no" not in row.prediction
        assert row.model == "llm-only"
    assert rows[1].option_probs is None
    assert set(rows[0].option_probs) == {"yes", "no"}
    assert sum(rows[0].option_probs.values()) == pytest.approx(1.0)


def test_option_scores_and_batched_generation_match_unbatched_tiny_llama():
    """The baseline scores options with sepit's function: each option's answer turn through end-of-turn, as a
    full forward of the whole chat would; left-padded batch generation == one prompt at a time."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from sepit.eval.baselines import chat_prompt, generate_answers, option_probabilities
    from sepit.eval.generate import GenerationSettings
    from sepit.prompts import format_question
    from sepit.resources import smollm2_path

    tok = AutoTokenizer.from_pretrained(smollm2_path())
    tok.padding_side = "left"
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id)
    llm = LlamaForCausalLM(cfg).eval()
    items = [Item("c", "P1", "closed", "loc", "Where is it?", "nucleus", ("nucleus", "outer membrane of cell")),
             Item("e", "P1", "closed", "heme", "Does it bind heme?", "no", ("yes", "no"))]
    got = option_probabilities(tok, llm, items, batch_size=2)
    for item, probs in zip(items, got, strict=True):
        user = [{"role": "user", "content": format_question(item.question, list(item.choices))}]
        p_ids = tok(chat_prompt(tok, item), add_special_tokens=False)["input_ids"]
        manual = []
        for choice in item.choices:
            full = tok.apply_chat_template(user + [{"role": "assistant", "content": choice}], tokenize=False)
            ids = tok(full, add_special_tokens=False)["input_ids"]
            answer = ids[len(p_ids):ids.index(tok.eos_token_id, len(p_ids)) + 1]  # through <|im_end|>
            assert tok.decode(answer) == choice + tok.eos_token
            with torch.no_grad():
                logp = llm(input_ids=torch.tensor([p_ids + answer])).logits.log_softmax(-1)[0]
            manual.append(sum(logp[len(p_ids) - 1 + k, t] for k, t in enumerate(answer)))
        expected = torch.stack(manual).softmax(0).tolist()
        assert [probs[c] for c in item.choices] == pytest.approx(expected, abs=1e-5)
    prompt, short = chat_prompt(tok, items[0]), chat_prompt(tok, Item("d", "P1", "open", "f", "Hi?", "x"))
    settings = GenerationSettings(max_new_tokens=5)
    batched = generate_answers(tok, llm, [prompt, short], batch_size=2, settings=settings)
    single = [generate_answers(tok, llm, [p], batch_size=1, settings=settings)[0] for p in (prompt, short)]
    assert batched == single and "Where is it?" not in batched[0]
