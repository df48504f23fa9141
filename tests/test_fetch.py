"""cvplay.fetch: the SSRF-guarded URL fetcher.

Nothing here touches the internet: the servers are http.server instances on 127.0.0.1
in a thread, and host names such as ``images.example`` go through a fake resolver.
"""

from __future__ import annotations

import http.server
import ipaddress
import shutil
import ssl
import subprocess
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from cvplay import fetch
from cvplay.fetch import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    MAX_REDIRECTS,
    FetchError,
    UnsafeURLError,
    fetch_image_bytes,
    fetch_url,
    is_public_address,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"pretend-png-data" * 8
LOCALHOST = ipaddress.ip_address("127.0.0.1")


def only_localhost(ip) -> bool:
    return ip == LOCALHOST


def assert_person_message(error: BaseException) -> None:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message and "Errno" not in message
    assert message[0].isupper() and message.endswith("."), message


# --------------------------------------------------------------------------- test server


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status, body=b"", content_type="image/png", length=True, headers=()):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length is True:
            self.send_header("Content-Length", str(len(body)))
        elif length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def _stream(self, total, chunk=64 * 1024):
        sent = 0
        try:
            while sent < total:
                piece = b"\x00" * min(chunk, total - sent)
                self.wfile.write(piece)
                sent += len(piece)
        except OSError:  # the client hung up, as it should
            pass
        self.server.streamed.append(sent)

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        self.server.requests.append((parts.path, dict(self.headers)))
        path = parts.path
        if path == "/img.png":
            self._send(200, PNG, "image/png; charset=binary")
        elif path == "/redirect":
            self._send(int(query.get("status", 302)), content_type=None, headers=[("Location", query["to"])])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self._send(200, PNG)
            else:
                self._send(301, content_type=None, headers=[("Location", f"/chain/{left - 1}")])
        elif path == "/loop":
            self._send(302, content_type=None, headers=[("Location", "/loop")])
        elif path == "/big":  # no Content-Length: the body ends when the connection closes
            self._send(200, content_type="image/png", length=None)
            self._stream(int(query["n"]))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.close_connection = True
            sent = 0
            try:
                for _ in range(int(query["chunks"])):
                    self.wfile.write(b"4000\r\n" + b"\x00" * 0x4000 + b"\r\n")
                    sent += 0x4000
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.server.streamed.append(sent)
        elif path == "/lying-short":  # says 50 bytes, sends 5000
            self._send(200, b"A" * 50 + b"B" * 4950, length=50)
        elif path == "/lying-long":  # says 100000 bytes, sends 100 and hangs up
            self._send(200, b"A" * 100, length=100_000)
        elif path == "/declared-huge":
            self._send(200, b"A" * 100, length=10**9)
        elif path == "/page":
            self._send(200, b"<!doctype html><title>cat</title>", "text/html; charset=utf-8")
        elif path == "/no-type":
            self._send(200, PNG, content_type=None)
        elif path == "/gzip":
            self._send(200, PNG, headers=[("Content-Encoding", "gzip")])
        elif path == "/slow":
            self.server.release.wait(5)
            self._send(200, PNG)
        elif path == "/drip":
            self._send(200, content_type="image/png", length=None)
            try:
                for _ in range(200):
                    if self.server.release.wait(0.05):
                        break
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:
                pass
        elif path == "/teapot":
            self._send(418, b"short and stout", "text/plain")
        else:
            self._send(404, b"not here", "text/plain")


class RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections = 0
        self.requests: list[tuple[str, dict]] = []
        self.streamed: list[int] = []
        self.release = threading.Event()
        self.errors: list[BaseException] = []

    def handle_error(self, request, client_address):  # a handler bug fails the test that met it
        import sys

        self.errors.append(sys.exc_info()[1])

    def verify_request(self, request, client_address):
        self.connections += 1
        return True


def start_server(ssl_context: ssl.SSLContext | None = None):
    server = RecordingServer(("127.0.0.1", 0), Handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def stop_server(server, thread):
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(2)
    assert server.errors == []


@pytest.fixture
def server():
    server, thread = start_server()
    server.port = server.server_address[1]
    server.url = f"http://127.0.0.1:{server.port}"
    yield server
    stop_server(server, thread)


@pytest.fixture
def connections(monkeypatch):
    """Every address the fetcher opens a TCP connection to."""
    opened = []
    real = fetch._open_socket

    def recording(ip, port, timeout):
        opened.append((str(ip), port))
        return real(ip, port, timeout)

    monkeypatch.setattr(fetch, "_open_socket", recording)
    return opened


def fake_resolver(table):
    calls = []

    def resolve(host, port):
        calls.append(host)
        if host not in table:
            raise OSError("no such host")
        return table[host]

    resolve.calls = calls
    return resolve


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address,public",
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("93.184.216.34", True),
        ("2001:4860:4860::8888", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("100.64.0.1", False),  # CGNAT
        ("100.127.255.254", False),
        ("192.0.0.1", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2001::1", False),  # Teredo
        ("2001:db8::1", False),
        ("3fff::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("fe80::1%1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("ff0e::1", False),
        ("100::1", False),
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public
    assert is_public_address(address) is public


def test_is_public_address_rejects_garbage():
    assert is_public_address("not an address") is False


def test_constants():
    assert DEFAULT_TIMEOUT == 10.0
    assert DEFAULT_MAX_BYTES == 20 * 1024 * 1024
    assert MAX_REDIRECTS == 5
    assert issubclass(UnsafeURLError, FetchError) and issubclass(FetchError, ValueError)


# --------------------------------------------------------------------------- (a) default policy


def test_loopback_is_refused_before_any_connection(server, connections):
    urls = [
        f"{server.url}/img.png",
        f"http://localhost:{server.port}/img.png",  # the system resolver reads /etc/hosts
        f"http://[::1]:{server.port}/img.png",
        f"http://[::ffff:127.0.0.1]:{server.port}/img.png",
        f"http://127.0.0.2:{server.port}/img.png",
    ]
    for url in urls:
        with pytest.raises(UnsafeURLError) as caught:
            fetch_url(url)
        assert "private or local network address" in str(caught.value)
        assert_person_message(caught.value)
    time.sleep(0.05)
    assert connections == []
    assert server.connections == 0 and server.requests == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "0x7f.0.0.1"])
def test_unusual_ipv4_spellings_are_refused(host, connections):
    with pytest.raises(UnsafeURLError):
        fetch_url(f"http://{host}/img.png")
    assert connections == []


def test_any_private_answer_refuses_the_host(connections):
    resolver = fake_resolver({"images.example": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(UnsafeURLError) as caught:
        fetch_url("http://images.example/cat.png", resolver=resolver)
    assert str(caught.value) == (
        "The host images.example points to a private or local network address (10.0.0.1), which is not allowed."
    )
    assert connections == []


def test_unknown_host_is_a_fetch_error():
    with pytest.raises(FetchError) as caught:
        fetch_url("https://nowhere.example/cat.png", resolver=fake_resolver({}))
    assert not isinstance(caught.value, UnsafeURLError)
    assert "could not be found" in str(caught.value)


# --------------------------------------------------------------------------- (b) allowed fetch, pinning


def test_fetch_from_an_allowed_address(server, connections):
    body, content_type = fetch_url(f"{server.url}/img.png", address_allowed=only_localhost)
    assert body == PNG and content_type == "image/png"
    assert fetch_image_bytes(f"{server.url}/img.png", address_allowed=only_localhost) == PNG
    path, headers = server.requests[0]
    assert path == "/img.png"
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["Accept-Encoding"] == "identity"
    assert connections == [("127.0.0.1", server.port)] * 2


def test_upper_case_scheme_and_odd_path_characters(server):
    body, _ = fetch_url(f"HTTP://127.0.0.1:{server.port}/img.png?size=big&x=ü y", address_allowed=only_localhost)
    assert body == PNG
    assert server.requests[0][0] == "/img.png"


def test_host_name_is_resolved_once_and_the_checked_address_is_used(server, connections):
    # A resolver that would answer differently the second time ("DNS rebinding"): the
    # fetcher must ask once and connect to the address it checked.
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    calls = []

    def rebinding(host, port):
        calls.append((host, port))
        return next(answers)

    body, _ = fetch_url(f"http://images.example:{server.port}/img.png", resolver=rebinding, address_allowed=only_localhost)
    assert body == PNG
    assert calls == [("images.example", server.port)]
    assert connections == [("127.0.0.1", server.port)]
    assert server.requests[0][1]["Host"] == f"images.example:{server.port}"


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:{port}/img.png",
        "http://[::ffff:169.254.169.254]/",
        "http://private.example/x.png",  # resolves to 192.168.0.10
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/",
    ],
)
def test_redirects_are_checked_again_before_connecting(server, connections, target):
    target = target.format(port=server.port)
    resolver = fake_resolver({"private.example": ["192.168.0.10"]})
    with pytest.raises(UnsafeURLError) as caught:
        fetch_url(f"{server.url}/redirect?to={target}", address_allowed=only_localhost, resolver=resolver)
    assert_person_message(caught.value)
    assert connections == [("127.0.0.1", server.port)]  # only the first hop
    assert [path for path, _ in server.requests] == ["/redirect"]


def test_redirects_are_followed_to_allowed_places(server, connections):
    resolver = fake_resolver({"images.example": ["127.0.0.1"]})
    target = f"http://images.example:{server.port}/img.png"
    for status in (301, 302, 303, 307, 308):
        body, _ = fetch_url(
            f"{server.url}/redirect?to={target}&status={status}", address_allowed=only_localhost, resolver=resolver
        )
        assert body == PNG
    assert server.requests[-1][1]["Host"] == f"images.example:{server.port}"
    # A relative Location is resolved against the current URL.
    assert fetch_url(f"{server.url}/redirect?to=/img.png", address_allowed=only_localhost)[0] == PNG


# --------------------------------------------------------------------------- (c) byte cap


def test_body_without_length_is_capped_while_streaming(server):
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{server.url}/big?n=20000000", address_allowed=only_localhost, max_bytes=100_000)
    assert str(caught.value) == "The file at the URL is larger than the 98 KB limit."
    # The download stopped early: nowhere near 20 MB went through.
    deadline = time.monotonic() + 2
    while not server.streamed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.streamed and server.streamed[0] < 20_000_000
    body, _ = fetch_url(f"{server.url}/big?n=1000", address_allowed=only_localhost, max_bytes=1000)
    assert len(body) == 1000


def test_chunked_body_is_capped_while_streaming(server):
    with pytest.raises(FetchError, match="larger than"):
        fetch_url(f"{server.url}/chunked?chunks=100", address_allowed=only_localhost, max_bytes=50_000)


def test_declared_length_over_the_cap_is_refused_up_front(server):
    with pytest.raises(FetchError, match="larger than the 20 MB limit"):
        fetch_url(f"{server.url}/declared-huge", address_allowed=only_localhost)


def test_lying_content_length(server):
    # Says 50, sends 5000: only the declared 50 bytes are read, never more.
    body, _ = fetch_url(f"{server.url}/lying-short", address_allowed=only_localhost, max_bytes=1000)
    assert body == b"A" * 50
    # Says 100000 (under the cap), sends 100 and hangs up: a cut-off download.
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{server.url}/lying-long", address_allowed=only_localhost)
    assert "cut off" in str(caught.value)
    assert_person_message(caught.value)


# --------------------------------------------------------------------------- (d, e) content type, status


def test_web_page_is_not_an_image(server):
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{server.url}/page", address_allowed=only_localhost)
    assert str(caught.value) == "The URL returned a web page (text/html), not an image."
    body, content_type = fetch_url(f"{server.url}/page", address_allowed=only_localhost, content_types=("text/",))
    assert content_type == "text/html" and body.startswith(b"<!doctype")
    assert fetch_url(f"{server.url}/page", address_allowed=only_localhost, content_types=None)[1] == "text/html"


def test_missing_content_type_and_compression_are_refused(server):
    with pytest.raises(FetchError, match="did not say what kind of file"):
        fetch_url(f"{server.url}/no-type", address_allowed=only_localhost)
    with pytest.raises(FetchError, match="compressed"):
        fetch_url(f"{server.url}/gzip", address_allowed=only_localhost)


def test_http_errors(server):
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{server.url}/missing.png", address_allowed=only_localhost)
    assert str(caught.value) == "The server answered 404 Not Found for this URL."
    assert not isinstance(caught.value, UnsafeURLError)
    with pytest.raises(FetchError, match="418"):
        fetch_url(f"{server.url}/teapot", address_allowed=only_localhost)


# --------------------------------------------------------------------------- (f) time


def test_timeout_on_a_server_that_does_not_answer(server):
    start = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{server.url}/slow", address_allowed=only_localhost, timeout=0.5)
    assert time.monotonic() - start < 2
    assert str(caught.value) == "The server 127.0.0.1 did not answer within 0.5 seconds."


def test_slow_drip_is_stopped_by_the_total_time_limit(server):
    start = time.monotonic()
    with pytest.raises(FetchError, match="took too long"):
        fetch_url(f"{server.url}/drip", address_allowed=only_localhost, timeout=0.3)
    assert time.monotonic() - start < 2


def test_connection_refused():
    with pytest.raises(FetchError) as caught:
        # Port 9 on loopback: nothing listens there in the test environment.
        fetch_url("http://127.0.0.1:9/x.png", address_allowed=only_localhost, timeout=1)
    assert_person_message(caught.value)


# --------------------------------------------------------------------------- (g) redirect loops


def test_redirect_limit(server):
    assert fetch_url(f"{server.url}/chain/{MAX_REDIRECTS}", address_allowed=only_localhost)[0] == PNG
    server.requests.clear()
    with pytest.raises(FetchError) as caught:
        fetch_url(f"{server.url}/chain/{MAX_REDIRECTS + 1}", address_allowed=only_localhost)
    assert str(caught.value) == "The URL redirected more than 5 times."
    assert len(server.requests) == MAX_REDIRECTS + 1
    server.requests.clear()
    with pytest.raises(FetchError, match="more than 5 times"):
        fetch_url(f"{server.url}/loop", address_allowed=only_localhost)
    assert len(server.requests) == MAX_REDIRECTS + 1


def test_redirect_without_location(server):
    with pytest.raises(FetchError, match="without saying where"):
        fetch_url(f"{server.url}/redirect?to=", address_allowed=only_localhost)


# --------------------------------------------------------------------------- (h) bad URLs


@pytest.mark.parametrize(
    "url,words",
    [
        ("file:///etc/passwd", "not file://"),
        ("ftp://images.example/cat.png", "not ftp://"),
        ("gopher://images.example/", "not gopher://"),
        ("data:image/png;base64,iVBORw0KGgo=", "must start with http"),
        ("javascript:alert(1)", "must start with http"),
        ("images.example/cat.png", "must start with http"),
        ("//images.example/cat.png", "must start with http"),
        ("", "empty"),
        ("http://user:secret@images.example/cat.png", "user name or password"),
        ("http://user@images.example/cat.png", "user name or password"),
        ("http:///cat.png", "no host name"),
        ("http://images.example:0/cat.png", "port"),
        ("http://images.example:99999/cat.png", "not valid"),
        ("http://images.example\\@evil.example/", "not allowed"),
        ("http://images.example/cat\r\nX-Injected: 1", "not allowed"),
        ("http://[fe80::1%25eth0]/", "zone"),
    ],
)
def test_bad_urls_are_refused(url, words, connections):
    resolver = fake_resolver({"images.example": ["93.184.216.34"]})
    with pytest.raises(UnsafeURLError) as caught:
        fetch_url(url, resolver=resolver)
    assert words in str(caught.value)
    assert_person_message(caught.value)
    assert resolver.calls == [] and connections == []


# --------------------------------------------------------------------------- https


@pytest.fixture
def tls_server(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=images.example",
         "-addext", "subjectAltName=DNS:images.example"],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    server, thread = start_server(context)
    server.port = server.server_address[1]
    server.cert = cert
    server.server_names = server_names
    yield server
    stop_server(server, thread)


def test_https_checks_the_certificate_against_the_host_name(tls_server, monkeypatch, connections):
    resolver = fake_resolver({"images.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]})
    url = f"https://images.example:{tls_server.port}/img.png"

    # Untrusted by the system's CAs: refused with a clear message.
    with pytest.raises(FetchError) as caught:
        fetch_url(url, resolver=resolver, address_allowed=only_localhost)
    assert "certificate" in str(caught.value)
    assert_person_message(caught.value)

    # Trusting the test certificate: fetched over the pinned address, with SNI and the
    # certificate check done for images.example, not for 127.0.0.1.
    monkeypatch.setattr(fetch, "_ssl_context", lambda: ssl.create_default_context(cafile=str(tls_server.cert)))
    body, content_type = fetch_url(url, resolver=resolver, address_allowed=only_localhost)
    assert body == PNG and content_type == "image/png"
    assert "images.example" in tls_server.server_names
    assert tls_server.requests[-1][1]["Host"] == f"images.example:{tls_server.port}"
    assert set(connections) == {("127.0.0.1", tls_server.port)}

    with pytest.raises(FetchError, match="certificate"):  # same server, wrong name
        fetch_url(f"https://other.example:{tls_server.port}/img.png", resolver=resolver, address_allowed=only_localhost)
