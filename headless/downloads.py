"""Fetching a catalog file: the only place the pack touches the network, and only when asked
(`grounded-ip2p models --download`). Loading a model never downloads anything.

A download goes to `<name>.part` beside its target, is checked (size, and sha256 where the catalog
has one) and only then renamed to `<name>`; on any failure, Ctrl-C included, the `.part` file is
deleted.

Mirror: `GIP2P_MODEL_MIRROR=http://host:port[/prefix]` replaces the scheme and host of every
official URL and keeps its path, so a mirror serves the same paths (`/timbrooks/instruct-pix2pix/
resolve/main/...`, `/segment_anything/...`, `/clip/models/...`). The checksums are the catalog's
either way. The tests use it to serve stand-in files from 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from .progress import ProgressBar, human_size

MIRROR_ENV = "GIP2P_MODEL_MIRROR"
CHUNK = 1 << 20
QUIET_BELOW = 64 * CHUNK  # off a terminal, smaller files get no "done" line

if TYPE_CHECKING:
    from .model_catalog import ModelFile


class DownloadError(Exception):
    """A download that did not give the expected file (nothing was left behind)."""


def sha256_of(path: Path, progress_stream=None) -> str:
    digest = hashlib.sha256()
    bar = ProgressBar(
        f"hashing {path.name}", path.stat().st_size, progress_stream, unit="bytes", quiet_below=QUIET_BELOW
    )
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            bar.update(done)
    bar.finish()
    return digest.hexdigest()


def check_mirror(mirror: str | None = None) -> None:
    """DownloadError when $GIP2P_MODEL_MIRROR (or `mirror`) is set but not an http(s) URL."""
    download_url("https://example.org/x", mirror)


def download_url(url: str, mirror: str | None = None) -> str:
    """The official `url`, or the same path on `mirror` (default: $GIP2P_MODEL_MIRROR)."""
    from urllib.parse import urlsplit, urlunsplit

    mirror = os.environ.get(MIRROR_ENV) if mirror is None else mirror
    if not mirror:
        return url
    m, u = urlsplit(mirror), urlsplit(url)
    if m.scheme not in ("http", "https") or not m.netloc:
        raise DownloadError(f"{MIRROR_ENV}={mirror!r} is not an http(s) URL")
    return urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))


def download(
    entry: ModelFile, dest: Path, *, mirror: str | None = None, progress_stream=None, timeout: float = 60.0
) -> str:
    """Fetch `entry` to `dest` through `dest.part`: checked (size, sha256 when known) before it is
    renamed. Returns the sha256 of what was written. On any failure, interruption included, the
    .part file is removed and nothing is left at `dest`: DownloadError (or the interruption)."""
    import http.client
    from urllib.error import HTTPError, URLError
    from urllib.request import Request, urlopen

    from .. import __version__

    url = download_url(entry.url, mirror)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if entry.size is not None:
        free = shutil.disk_usage(dest.parent).free
        if free < entry.size:
            raise DownloadError(f"needs {human_size(entry.size)}, only {human_size(free)} free in {dest.parent}")
    bar = ProgressBar(f"downloading {entry.name}", entry.size, progress_stream, unit="bytes", quiet_below=QUIET_BELOW)
    bar.stream.write(f"downloading {entry.name} ({human_size(entry.size)}) from {url}\n")
    done = 0
    try:
        request = Request(url, headers={"User-Agent": f"grounded-ip2p/{__version__}"})
        try:
            response = urlopen(request, timeout=timeout)
        except HTTPError as exc:
            raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(f"cannot reach {url} ({reason})") from None
        with response:
            header = response.headers.get("Content-Length")
            announced = int(header) if header and header.isdigit() else None
            if announced is not None and entry.size is not None and announced != entry.size:
                raise DownloadError(f"{url} serves {announced} bytes, expected {entry.size}")
            digest = hashlib.sha256()
            try:
                with open(part, "wb") as out:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        bar.update(done)
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"the connection failed after {done} bytes ({type(exc).__name__}: {exc})") from None
        expected = entry.size if entry.size is not None else announced
        if expected is not None and done != expected:
            raise DownloadError(f"the connection closed after {done} of {expected} bytes")
        actual = digest.hexdigest()
        if entry.sha256 is not None and actual != entry.sha256:
            raise DownloadError(
                f"checksum mismatch: expected sha256 {entry.sha256}, got {actual}; the file was not kept"
            )
        os.replace(part, dest)
    except BaseException:
        bar.finish(failed=True)
        try:
            part.unlink()
        except FileNotFoundError:
            pass
        raise
    bar.finish()
    return actual
