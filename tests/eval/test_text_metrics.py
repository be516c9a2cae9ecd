"""Open-ended metrics against hand-computed values."""

import math

import pytest
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

from sepit.errors import ConfigError
from sepit.eval.text_metrics import (
    RougeScorer,
    corpus_bleu,
    paper_bleu_items,
    tokenize,
)
from sepit.eval.wordnet import lexnames_text, load_wordnet, nltk_wordnet_dir

REF = "the cat is on the mat"
HYP = "the cat sat on the mat"


def test_bleu_by_hand():
    # unigrams 5/6 match; bigrams: the cat, on the, the mat = 3/5; equal length so no brevity penalty
    scores = corpus_bleu([HYP], [REF])
    assert scores["bleu1"] == pytest.approx(5 / 6, abs=1e-6)
    assert scores["bleu2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), abs=1e-6)


def test_bleu_brevity_penalty():
    scores = corpus_bleu(["the cat"], [REF])  # 2/2 unigrams match, BP = exp(1 - 6/2)
    assert scores["bleu1"] == pytest.approx(math.exp(1 - 3), abs=1e-6)


def test_paper_bleu_per_item_average():
    # per-item scores (averaged later): item 1 as above with whitespace tokens; item 2 identical -> 1.0
    out = paper_bleu_items([HYP, "a b c d"], [REF, "a b c d"], str.split)
    assert out["bleu1"] == pytest.approx([5 / 6, 1.0])
    assert out["bleu2"] == pytest.approx([math.sqrt(0.5), 1.0])


def test_rouge1_by_hand_with_stemming():
    # "binds" and "binding" both stem to "bind": 4 of 4 hyp tokens match, 4 of 5 ref tokens
    out = RougeScorer().items(["protein binds the heme"], ["the protein binding to heme"])
    p, r = 4 / 4, 4 / 5
    assert out["rouge1"][0] == pytest.approx(2 * p * r / (p + r))


def test_rouge_matches_rouge_score_default():
    ref = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    pairs = [("Catalyzes the hydrolysis of ATP, coupled with transport.", "ATP hydrolysis coupled to transport"),
             ("Binds DNA; regulates transcription of genes.", "Transcriptional regulators binding DNA.")]
    ours = RougeScorer().items([h for h, _ in pairs], [r for _, r in pairs])
    for i, (hyp, target) in enumerate(pairs):
        expected = ref.score(target, hyp)
        for key in ("rouge1", "rouge2", "rougeL"):
            assert ours[key][i] == pytest.approx(expected[key].fmeasure)


def test_tokenize_regex():
    assert tokenize("Binds Zn(2+).") == ["binds", "zn", "(", "2", "+)."]


def test_meteor_exact_match_known_value():
    from sepit.eval.text_metrics import MeteorScorer

    wn = load_wordnet()
    tokens = "the protein binds heme".split()
    # exact match of 4 unigrams in one chunk: Fmean = 1, penalty = 0.5 * (1/4)^3
    expected = 1 - 0.5 * (1 / 4) ** 3
    assert meteor_score([tokens], tokens, wordnet=wn) == pytest.approx(expected)
    scores = MeteorScorer(wn).items(["The protein binds heme.", "kinase"], ["the protein binds heme.", "ligase"])
    assert scores[0] == pytest.approx(1 - 0.5 * (1 / 5) ** 3)  # 5 tokens with the final "."
    assert scores[1] == 0.0


def test_meteor_uses_wordnet_synonyms():
    wn = load_wordnet()
    ref = "the protein binds heme".split()
    syn = meteor_score([ref], "the protein attaches heme".split(), wordnet=wn)  # bind ~ attach in WordNet
    other = meteor_score([ref], "the protein banana heme".split(), wordnet=wn)
    assert syn == pytest.approx(1 - 0.5 * (1 / 4) ** 3) and syn > other


def test_lexnames_file():
    lines = lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"


def test_missing_debian_wordnet_names_packages(tmp_path):
    with pytest.raises(ConfigError, match="apt-get install wordnet-base wordnet-sense-index"):
        nltk_wordnet_dir(source=tmp_path / "nowhere", root=tmp_path / "nltk")
