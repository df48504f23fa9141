"""``python -m cvplay data cifar100`` and :mod:`cvplay.download`, without the internet: a real HTTP
server on 127.0.0.1 serves the files, or a fake opener stands in for ``urlopen``."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import urllib.error

import pytest

from cvplay import download
from cvplay.cli import main
from cvplay.datasets import cifar100_test_source, load_dataset
from cvplay.download import DownloadError, PublishedFile, download_verified
from test_datasets import official  # noqa: F401  (fixture: an official-format CIFAR-100 archive)


class FileServer:
    """Serves ``files`` {path: bytes} on 127.0.0.1; ``lie_about_length`` announces more than it sends."""

    def __init__(self, files: dict[str, bytes], lie_about_length: bool = False):
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) + (1000 if lie_about_length else 0)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def published(body: bytes, url: str, **overrides) -> PublishedFile:
    fields = {"url": url, "filename": "data.bin", "sha256": hashlib.sha256(body).hexdigest(),
              "md5": hashlib.md5(body).hexdigest(), **overrides}
    return PublishedFile(**fields)


BODY = bytes(range(256)) * 4096  # 1 MiB: several chunks


def test_downloads_verifies_and_does_not_download_twice(tmp_path):
    with FileServer({"/data.bin": BODY}) as server:
        file = published(BODY, server.url("/data.bin"))
        progress = io.StringIO()
        path, downloaded = download_verified(file, tmp_path / "data", progress=progress)
        assert downloaded and path == tmp_path / "data" / "data.bin" and path.read_bytes() == BODY
        assert "data.bin" in progress.getvalue() and "100%" in progress.getvalue()  # the progress bar ran
        again, downloaded_again = download_verified(file, tmp_path / "data")
        assert again == path and not downloaded_again and server.requests == ["/data.bin"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["data.bin"]  # no .part left


@pytest.mark.parametrize("wrong", ["sha256", "md5"])
def test_a_wrong_checksum_keeps_nothing(tmp_path, wrong):
    with FileServer({"/data.bin": BODY}) as server:
        file = published(BODY, server.url("/data.bin"), **{wrong: "0" * (64 if wrong == "sha256" else 32)})
        with pytest.raises(DownloadError, match="does not have the published checksum"):
            download_verified(file, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_file_in_place_is_replaced(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"half a download")
    with FileServer({"/data.bin": BODY}) as server:
        path, downloaded = download_verified(published(BODY, server.url("/data.bin")), tmp_path)
    assert downloaded and path.read_bytes() == BODY


def test_a_cut_off_download_is_reported_and_deleted(tmp_path):
    with FileServer({"/data.bin": BODY}, lie_about_length=True) as server:
        with pytest.raises(DownloadError) as error:
            download_verified(published(BODY, server.url("/data.bin")), tmp_path)
    assert "run the command again" in str(error.value) or "stopped after" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_and_oversized_files_are_one_sentence(tmp_path):
    with FileServer({"/data.bin": BODY}) as server:
        with pytest.raises(DownloadError, match="answered HTTP 404"):
            download_verified(published(BODY, server.url("/missing.bin")), tmp_path)
        with pytest.raises(DownloadError, match="far more than"):
            download_verified(published(BODY, server.url("/data.bin"), max_bytes=1000), tmp_path)
    with pytest.raises(DownloadError, match="Only http and https"):
        download_verified(published(BODY, "file:///etc/passwd"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_offline_is_one_clear_sentence(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    with pytest.raises(DownloadError) as error:
        download_verified(download.CIFAR100, tmp_path, opener=offline)
    message = str(error.value)
    assert message.startswith("Cannot reach www.cs.toronto.edu to download cifar-100-python.tar.gz")
    assert "Temporary failure in name resolution" in message and "\n" not in message
    assert str(tmp_path / "cifar-100-python.tar.gz") in message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_downloads_cifar100_where_the_app_finds_it(tmp_path, monkeypatch, capsys, official):  # noqa: F811
    archive = official.archive.read_bytes()
    monkeypatch.setenv("CVPLAY_DATA", str(tmp_path / "cvplay-data"))
    monkeypatch.delenv("CVPLAY_CIFAR100", raising=False)
    monkeypatch.setenv("CVPLAY_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cifar100_test_source() is None
    with FileServer({"/cifar-100-python.tar.gz": archive}) as server:
        fake = published(archive, server.url("/cifar-100-python.tar.gz"), filename="cifar-100-python.tar.gz")
        monkeypatch.setattr(download, "CIFAR100", fake)
        assert main(["data", "cifar100"]) == 0
    out = capsys.readouterr().out
    target = tmp_path / "cvplay-data" / "cifar-100-python.tar.gz"
    assert f"downloaded, checksums verified: {target}" in out
    assert cifar100_test_source() == target  # the CIFAR-100 page and evaluate find it
    assert len(load_dataset(str(target), subset="test", min_images_per_class=1)) == len(official.x_test)
    # --data cifar100 (train, evaluate) reads the downloaded archive, no Keras involved.
    assert len(load_dataset("cifar100", subset="train", min_images_per_class=1)) == len(official.x_train)


def test_cli_with_dir_says_how_the_app_finds_it_and_offline_fails_in_one_line(tmp_path, monkeypatch, capsys, official):  # noqa: F811
    archive = official.archive.read_bytes()
    monkeypatch.setenv("CVPLAY_DATA", str(tmp_path / "cvplay-data"))
    with FileServer({"/c.tgz": archive}) as server:
        monkeypatch.setattr(download, "CIFAR100", published(archive, server.url("/c.tgz"), filename="cifar-100-python.tar.gz"))
        assert main(["data", "cifar100", "--dir", str(tmp_path / "elsewhere")]) == 0
    assert f"export CVPLAY_CIFAR100={tmp_path / 'elsewhere' / 'cifar-100-python.tar.gz'}" in capsys.readouterr().out

    # Nothing listens on this port: the same failure as no internet, one line, exit status 2.
    monkeypatch.setattr(download, "CIFAR100", published(archive, f"http://127.0.0.1:{closed_port()}/c.tgz",
                                                        filename="cifar-100-python.tar.gz"))
    code = main(["data", "cifar100", "--dir", str(tmp_path / "other")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: Cannot reach 127.0.0.1 to download cifar-100-python.tar.gz")
    assert not (tmp_path / "other" / "cifar-100-python.tar.gz").exists()
