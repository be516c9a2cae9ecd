"""Small I/O helpers shared by every part: atomic output folders/files, gzip-transparent opening."""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import os
import shutil
import socket
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sepit.errors import InputFormatError, describe_read_error

_HOST = socket.gethostname().replace("-", "_") or "host"


def open_text(path: str | Path) -> IO[str]:
    """Open a plain or gzipped text file (by magic bytes, not by name). A truncated or corrupt gzip stream
    raises :class:`InputFormatError` naming the file when the bad part is read."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(io.BufferedReader(_CheckedGzip(path)), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


class _CheckedGzip(io.RawIOBase):
    """A gzip file whose decompression errors (EOFError, BadGzipFile, zlib.error) name the file."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.gz = path, gzip.open(path, "rb")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self.gz.readinto(buffer)
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise InputFormatError(f"{self.path}: {describe_read_error(err)}") from None

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.gz.seek(offset, whence)

    def tell(self) -> int:
        return self.gz.tell()

    def close(self) -> None:
        self.gz.close()
        super().close()


def _tmp_prefix(final: Path) -> str:
    return f".{final.name}.tmp-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_tmp_dirs(final: str | Path) -> list[Path]:
    """Remove ``.<name>.tmp-<host>-<pid>-*`` folders beside ``final`` left by killed runs of :func:`atomic_dir`.

    The rule: a leftover is stale when its name carries this machine's host name and a pid that is no longer
    running. Folders of live runs, of other hosts (shared file systems) and names without host and pid (not
    made by this function's scheme) are left alone. Returns the removed folders."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    prefix, removed = f"{_tmp_prefix(final)}{_HOST}-", []
    for path in final.parent.glob(f"{glob.escape(prefix)}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_dir(final: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; rename it into place only if the block succeeds.

    On any exception (Ctrl-C included) the temporary folder is removed and ``final`` is untouched. The
    temporary folder is named ``.<name>.tmp-<host>-<pid>-<random>``; a kill -9 cannot clean it up, so each
    new run first removes the stale ones of earlier runs (:func:`remove_stale_tmp_dirs`).
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"output already exists: {final} (pass overwrite to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp_dirs(final)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_tmp_prefix(final)}{_HOST}-{os.getpid()}-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


@contextlib.contextmanager
def atomic_file(final: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to ``final.tmp`` and rename on success; remove the temporary file on failure."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode) as fh:
            yield fh
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(final)
