"""Offline WordNet 3.0 for METEOR, built from the Debian ``wordnet-base`` + ``wordnet-sense-index`` packages.

NLTK cannot download its corpora here. Its ``WordNetCorpusReader`` reads the same database files the Debian
packages install in ``/usr/share/wordnet``, plus ``index.sense`` and a ``lexnames`` file (the 45 WordNet 3.0
lexicographer files, in order), which Debian lacks. We assemble those into
``cache_dir()/nltk_data/corpora/wordnet`` once and open the reader from there.
"""

from __future__ import annotations

import shutil
import warnings
from functools import lru_cache
from pathlib import Path

from sepit.errors import ConfigError
from sepit.io_utils import atomic_dir
from sepit.resources import cache_dir

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# files NLTK's reader opens (lexnames is generated below)
_DB_FILES = [f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")]
_DB_FILES += [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")] + ["index.sense"]

# WordNet 3.0 lexicographer files: number, name, syntactic category (1 noun, 2 verb, 3 adj, 4 adv)
_LEXFILES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>lexfile<TAB>category``, 45 lines from ``00 adj.all 3``."""
    lines = [f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}" for i, name in enumerate(_LEXFILES)]
    return "\n".join(lines) + "\n"


def _check_source(source: Path) -> None:
    missing = [name for name in _DB_FILES if not (source / name).is_file()]
    if not missing:
        return
    packages = "wordnet-sense-index" if missing == ["index.sense"] else "wordnet-base wordnet-sense-index"
    raise ConfigError(
        f"WordNet files missing from {source}: {', '.join(missing)}. METEOR needs WordNet 3.0: "
        f"apt-get install {packages} (or pass --no-meteor)"
    )


def nltk_wordnet_dir(source: Path = DEBIAN_WORDNET, root: Path | None = None) -> Path:
    """Return ``<root>/corpora/wordnet`` (default root: ``cache_dir()/nltk_data``), building it once."""
    root = root or cache_dir() / "nltk_data"
    target = root / "corpora" / "wordnet"
    if (target / "lexnames").is_file() and all((target / n).is_file() for n in _DB_FILES):
        return target
    _check_source(Path(source))
    with atomic_dir(target, overwrite=True) as tmp:
        for name in _DB_FILES:
            shutil.copyfile(Path(source) / name, tmp / name)
        (tmp / "lexnames").write_text(lexnames_text())
    return target


@lru_cache(maxsize=2)
def load_wordnet(source: str = str(DEBIAN_WORDNET)):
    """An NLTK ``WordNetCorpusReader`` over the offline copy (loaded once per process)."""
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    folder = nltk_wordnet_dir(Path(source))
    root = str(folder.parents[1])
    if root not in nltk.data.path:  # NLTK only opens corpora under its registered data roots
        nltk.data.path.append(root)
    with warnings.catch_warnings():  # "multilingual functions are not available": we need English only
        warnings.simplefilter("ignore")
        return WordNetCorpusReader(str(folder), None)
