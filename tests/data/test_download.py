"""Downloads against a local HTTP server on 127.0.0.1 serving fixture files (no internet here)."""

from __future__ import annotations

import http.server
import threading
from urllib.parse import parse_qs, urlparse

import pytest

from sepit.cli import main
from sepit.data.download import Downloader, DownloadError, Endpoints


@pytest.fixture
def server(fixtures):
    calls = {"n": 0, "flaky": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            calls["n"] += 1
            url = urlparse(self.path)
            if url.path == "/uniprot/stream":
                assert parse_qs(url.query)["format"] == ["txt"]
                body = (fixtures / "mini.dat").read_bytes()
            elif url.path == "/af/AF-Q00002-F1-model_v4.pdb":
                body = (fixtures / "AF-Q00002-F1-model_v4.pdb").read_bytes()
            elif url.path == "/rcsb/1XYZ.cif":
                calls["flaky"] += 1
                if calls["flaky"] == 1:  # first try fails: retried
                    self.send_error(503)
                    return
                body = b"data_1XYZ\n"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield Endpoints(f"{base}/uniprot/stream", f"{base}/af", f"{base}/rcsb"), calls
    httpd.shutdown()


def test_download_cache_and_retry(server, tmp_path):
    endpoints, calls = server
    dl = Downloader(tmp_path, endpoints, retries=2, backoff=0.01)
    flat = dl.uniprot("accession:Q00001", name="q1")
    assert flat.read_text().startswith("ID   TEST1_HUMAN")
    assert dl.alphafold("Q00002").name == "AF-Q00002-F1-model_v4.pdb"
    assert dl.rcsb("1xyz").read_text() == "data_1XYZ\n" and calls["flaky"] == 2
    before = calls["n"]
    dl.uniprot("accession:Q00001", name="q1")
    assert calls["n"] == before  # cached
    with pytest.raises(DownloadError, match="HTTP 404"):
        dl.alphafold("P99999")
    assert not list((tmp_path / "structures").glob(".*tmp*"))


def test_cli_download(server, tmp_path, capsys):
    endpoints, _ = server
    code = main(["data", "download", "--out", str(tmp_path), "--alphafold", "Q00002",
                 "--alphafold-url", endpoints.alphafold, "--uniprot-url", endpoints.uniprot,
                 "--rcsb-url", endpoints.rcsb, "--query", "gene:TKA"])
    assert code == 0 and "AF-Q00002-F1-model_v4.pdb" in capsys.readouterr().out
