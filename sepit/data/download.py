"""``sepit data download``: Swiss-Prot entries by UniProt query (REST stream, ``format=txt``), AlphaFold DB
models and RCSB mmCIF files by id; with retries and a file cache. Base URLs are configurable (tests point
them at a local HTTP server)."""

from __future__ import annotations

import gzip
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sepit.errors import SepitError
from sepit.io_utils import atomic_file


@dataclass
class Endpoints:
    """Public endpoints (override for mirrors or tests)."""

    uniprot: str = "https://rest.uniprot.org/uniprotkb/stream"
    alphafold: str = "https://alphafold.ebi.ac.uk/files"
    rcsb: str = "https://files.rcsb.org/download"


class DownloadError(SepitError):
    """A download failed after all retries (names the URL)."""


class Downloader:
    """Fetch files into ``cache`` (an existing file is reused, never fetched again)."""

    def __init__(self, cache: str | Path, endpoints: Endpoints | None = None, retries: int = 3,
                 backoff: float = 1.0, timeout: float = 60.0):
        self.cache = Path(cache)
        self.endpoints = endpoints or Endpoints()
        self.retries, self.backoff, self.timeout = retries, backoff, timeout

    def uniprot(self, query: str, name: str | None = None) -> Path:
        """Swiss-Prot flat file of every entry matching ``query`` -> ``<cache>/uniprot/<name>.dat``."""
        params = urllib.parse.urlencode({"query": query, "format": "txt"})
        safe = name or "".join(c if c.isalnum() else "_" for c in query)[:80]
        path = self.fetch(f"{self.endpoints.uniprot}?{params}", self.cache / "uniprot" / f"{safe}.dat")
        if path.stat().st_size and not path.read_text(errors="replace").lstrip().startswith("ID   "):
            path.unlink()
            raise DownloadError(f"{self.endpoints.uniprot}: answer to query {query!r} is not a flat file")
        return path

    def alphafold(self, accession: str, version: int = 4) -> Path:
        """``AF-<ACC>-F1-model_v<version>.pdb``."""
        name = f"AF-{accession}-F1-model_v{version}.pdb"
        return self.fetch(f"{self.endpoints.alphafold}/{name}", self.cache / "structures" / name)

    def rcsb(self, pdb_id: str) -> Path:
        """``<ID>.cif`` from RCSB."""
        name = f"{pdb_id.upper()}.cif"
        return self.fetch(f"{self.endpoints.rcsb}/{name}", self.cache / "structures" / name)

    def fetch(self, url: str, dest: Path) -> Path:
        """GET ``url`` into ``dest`` atomically, retrying on network errors and 5xx/429 answers."""
        if dest.is_file():
            return dest
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp, atomic_file(dest, "wb") as fh:
                    data = resp.read()
                    if resp.headers.get("Content-Encoding") == "gzip":
                        data = gzip.decompress(data)
                    fh.write(data)
                return dest
            except urllib.error.HTTPError as err:
                if err.code < 500 and err.code != 429:
                    raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
                last = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last = str(err)
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise DownloadError(f"{url}: failed after {self.retries + 1} attempts ({last})")
