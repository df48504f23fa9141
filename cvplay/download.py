"""Download a published file and keep it only if its checksums match: the official CIFAR-100
archive for ``python -m cvplay data cifar100``.

Where there is internet, the app's install (no Keras, no TensorFlow) can still fetch the official
``cifar-100-python.tar.gz`` for the CIFAR-100 page's test-image gallery and for ``evaluate``:

    >>> from cvplay.download import download_cifar100
    >>> download_cifar100()            # ~/.cvplay/data/cifar-100-python.tar.gz (or $CVPLAY_DATA)

:func:`download_verified` streams the body over https into ``NAME.part`` beside the target,
hashing as it goes (SHA-256, and MD5 where the publisher gives only that), shows a progress bar on
a terminal, and renames the file into place only when every checksum matches; a wrong or cut-off
download is deleted and reported as one sentence (:class:`DownloadError`). A file already in place
with the right checksums is not downloaded again. Offline, the error says so in one sentence.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

__all__ = [
    "CIFAR100",
    "DownloadError",
    "PublishedFile",
    "default_data_dir",
    "download_cifar100",
    "download_verified",
]

DEFAULT_DATA_DIR = "~/.cvplay/data"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0


class DownloadError(RuntimeError):
    """The file could not be downloaded or verified; the message is one sentence for a person."""


@dataclass(frozen=True)
class PublishedFile:
    """A file as its publisher lists it: where it is and the checksums it must have."""

    url: str
    filename: str
    sha256: str
    md5: str = ""
    size_hint: str = ""  # for messages only ("161 MB")
    max_bytes: int = 400 * 1024 * 1024  # refuse anything far larger than the real file


#: The official CIFAR-100 python archive (Krizhevsky, 2009): URL and MD5 as published on
#: https://www.cs.toronto.edu/~kriz/cifar.html; SHA-256 as Keras' ``cifar100.load_data`` checks it.
CIFAR100 = PublishedFile(
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    filename="cifar-100-python.tar.gz",
    sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    size_hint="161 MB",
)

Opener = Callable[..., object]  # urllib.request.urlopen's signature: (url, timeout=...) -> response


def default_data_dir() -> Path:
    """Where downloaded datasets go and where the app looks for them: ``$CVPLAY_DATA`` or ``~/.cvplay/data``."""
    return Path(os.environ.get("CVPLAY_DATA") or DEFAULT_DATA_DIR).expanduser()


def file_checksums(path: Path) -> tuple[str, str]:
    """(SHA-256, MD5) of a file, read in chunks."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _matches(published: PublishedFile, sha256: str, md5: str) -> bool:
    return sha256 == published.sha256 and (not published.md5 or md5 == published.md5)


def _offline_reason(error: BaseException) -> str:
    reason = getattr(error, "reason", error)
    return str(reason).strip() or type(reason).__name__


def _progress_bar(total: int | None, name: str, stream: TextIO | None):
    """A tqdm bar on ``stream``, or on stderr when that is a terminal (none in logs and pipes)."""
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                file=stream if stream is not None else sys.stderr, disable=False if stream is not None else None,
                mininterval=0.5, leave=True)


def download_verified(published: PublishedFile, directory: str | Path | None = None, *,
                      opener: Opener | None = None, progress: TextIO | None = None,
                      url: str | None = None) -> tuple[Path, bool]:
    """Download ``published`` into ``directory`` (default :func:`default_data_dir`) and verify it.

    Returns ``(path, downloaded)``: ``downloaded`` is False when a verified copy was already there.
    ``opener`` replaces :func:`urllib.request.urlopen` (tests), ``url`` a mirror of the same file
    (http or https; the checksums still decide). Raises :class:`DownloadError`.
    """
    directory = Path(directory).expanduser() if directory is not None else default_data_dir()
    target = directory / published.filename
    if target.is_file() and _matches(published, *file_checksums(target)):
        return target, False
    source = url or published.url
    if not source.lower().startswith(("https://", "http://")):
        raise DownloadError(f"Only http and https downloads are supported, not {source}.")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"Cannot create {directory}: {error.strerror or error}.") from None
    partial = target.with_name(target.name + ".part")
    opener = opener or urllib.request.urlopen
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        response = opener(source, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{source} answered HTTP {error.code} ({error.reason}) instead of the file.") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        host = urllib.parse.urlsplit(source).hostname or source
        raise DownloadError(
            f"Cannot reach {host} to download {published.filename} ({_offline_reason(error)}): without "
            f"internet, download {source} on a machine that has it and copy it to {target}."
        ) from None
    try:
        with response:  # type: ignore[attr-defined]
            status = getattr(response, "status", 200)
            if status is not None and not 200 <= int(status) < 300:
                raise DownloadError(f"{source} answered HTTP {status} instead of the file.")
            length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            total = int(length) if length and str(length).isdigit() else None
            if total is not None and total > published.max_bytes:
                raise DownloadError(f"{source} offers {total} bytes, far more than {published.filename} should be.")
            with open(partial, "wb") as out, _progress_bar(total, published.filename, progress) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    received += len(chunk)
                    if received > published.max_bytes:
                        raise DownloadError(f"{source} sent more than {published.max_bytes} bytes; stopped.")
                    sha256.update(chunk)
                    md5.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(f"The download of {published.filename} stopped after {received} of {total} bytes; "
                                "run the command again.")
        if not _matches(published, sha256.hexdigest(), md5.hexdigest()):
            raise DownloadError(
                f"The downloaded {published.filename} does not have the published checksum (SHA-256 "
                f"{sha256.hexdigest()[:12]}..., expected {published.sha256[:12]}...): it was corrupted or "
                "changed on the way, so it was deleted."
            )
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise DownloadError(f"The download of {published.filename} failed after {received} bytes "
                            f"({_offline_reason(error)}); run the command again.") from None
    finally:
        if partial.exists():
            partial.unlink()
    return target, True


def download_cifar100(directory: str | Path | None = None, **kwargs) -> tuple[Path, bool]:
    """The official ``cifar-100-python.tar.gz``, verified; see :func:`download_verified`."""
    return download_verified(CIFAR100, directory, **kwargs)
