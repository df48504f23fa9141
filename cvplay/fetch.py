"""Fetch a file (an image, by default) from a URL a person typed, without SSRF.

The app runs on a server, so a URL from a visitor must not make that server talk to
itself or to its private network (cloud metadata at 169.254.169.254, databases on 10.x,
services on localhost). :func:`fetch_url` therefore:

* accepts only ``http://`` and ``https://`` URLs, without a user name or password;
  any port number is allowed (the address check below is what protects the network);
* resolves the host once and refuses the URL if *any* of its addresses is not allowed
  (by default: anything but a public unicast address, see :func:`is_public_address`);
* connects to exactly the address it checked (so a DNS answer that changes between the
  check and the connection, "DNS rebinding", cannot sneak in), while sending the real
  ``Host`` header and, for https, checking the certificate against the real host name
  (SNI included);
* follows at most :data:`MAX_REDIRECTS` redirects itself, checking every hop again;
* never uses proxies from the environment (it is built on :mod:`http.client`);
* applies ``timeout`` to the connection and to every read, and gives up once the whole
  fetch has taken more than ``TOTAL_TIME_FACTOR * timeout`` (checked between reads);
* refuses a body over ``max_bytes`` (from ``Content-Length`` up front, and while
  streaming), a compressed body, a non-2xx answer, and a ``Content-Type`` that does not
  start with one of ``content_types``.

Every error is a :class:`FetchError` (a :class:`ValueError`) whose text is one sentence
for a person; URLs refused by policy raise its subclass :class:`UnsafeURLError`.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence
from urllib.parse import quote, urljoin, urlsplit

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "MAX_REDIRECTS",
    "FetchError",
    "UnsafeURLError",
    "fetch_image_bytes",
    "fetch_url",
    "is_public_address",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 5
#: The whole fetch, redirects included, is abandoned after this many ``timeout``\ s.
TOTAL_TIME_FACTOR = 3
USER_AGENT = "cvplay/0.1 (image fetch)"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolver(host, port)`` -> the host's addresses (strings or ipaddress objects).
Resolver = Callable[[str, int], Iterable["str | Address"]]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(ValueError):
    """A URL could not be fetched; ``str(error)`` is one sentence for a person."""


class UnsafeURLError(FetchError):
    """A URL refused by policy: bad scheme, credentials, or a non-public address."""


# --------------------------------------------------------------------------- addresses

_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", incl. 0.0.0.0
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata lives here)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. 255.255.255.255
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, incl. Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public_address(ip: Address | str) -> bool:
    """Whether ``ip`` is a public unicast address a server may connect to for a visitor.

    False for loopback, private, shared (CGNAT 100.64/10), link-local, multicast,
    reserved, documentation, benchmarking and unspecified addresses; for IPv6 anything
    outside global unicast 2000::/3 (so ``::``, ``::1``, fc00::/7, fe80::/10, ff00::/8)
    and scoped addresses. IPv4 addresses embedded in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``,
    NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``) are judged as that IPv4
    address; IPv4-compatible ``::a.b.c.d`` and Teredo addresses are refused.
    """
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            return False
    if isinstance(ip, ipaddress.IPv4Address):
        if any(ip in net for net in _BLOCKED_V4):
            return False
        return ip.is_global and not ip.is_multicast
    if not isinstance(ip, ipaddress.IPv6Address):
        return False
    if ip.scope_id:
        return False
    if ip.ipv4_mapped is not None:
        return is_public_address(ip.ipv4_mapped)
    if ip in _NAT64_V6:
        return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        return is_public_address(ip.sixtofour)
    if ip not in _GLOBAL_UNICAST_V6 or any(ip in net for net in _BLOCKED_V6):
        return False
    return ip.is_global and not ip.is_multicast


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal without brackets
    port: int
    request_target: str  # path and query, percent-encoded
    literal: Address | None  # the host as an IP address, when it is one


def _parse_url(url: str) -> _Target:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    url = url.strip()
    if not url:
        raise UnsafeURLError("The URL is empty.")
    if any(ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in url):
        raise UnsafeURLError("The URL contains characters that are not allowed in a URL.")
    if "://" not in url:
        raise UnsafeURLError("The URL must start with http:// or https://.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURLError("The URL is not valid (check the host name and port number).") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}://" if scheme else "this kind of URL"
        raise UnsafeURLError(f"Only http:// and https:// URLs can be fetched, not {shown}.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UnsafeURLError("URLs with a user name or password in them are not allowed.")
    hostname = parts.hostname or ""
    if not hostname:
        raise UnsafeURLError("The URL has no host name.")
    if port == 0:
        raise UnsafeURLError("The URL's port number is not valid.")
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if "%" in hostname:
        raise UnsafeURLError("IPv6 addresses with a zone (%) are not allowed in URLs.")

    literal: Address | None
    try:
        literal = ipaddress.ip_address(hostname)
    except ValueError:
        literal = None
    if literal is not None:
        host = str(literal)
    else:
        if ":" in hostname:
            raise UnsafeURLError("The URL's host name is not valid.")
        try:
            host = hostname.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UnsafeURLError("The URL's host name is not valid.") from None
        if not host or host.startswith(".") or ".." in host:
            raise UnsafeURLError("The URL's host name is not valid.")
        last_label = host.rstrip(".").rsplit(".", 1)[-1]
        if last_label.isdigit() or last_label.startswith("0x"):
            # 2130706433, 0x7f000001, 127.1, 0177.0.0.1: IPv4 in forms resolvers accept
            # but people do not write; no real host name ends in a numeric label.
            raise UnsafeURLError("The URL's host is an IP address written in an unusual form, which is not allowed.")

    path = quote(parts.path or "/", safe="/%!$&'()*+,;=:@-._~")
    if not path.startswith("/"):
        path = "/" + path
    if parts.query:
        path += "?" + quote(parts.query, safe="/?%!$&'()*+,;=:@-._~")
    return _Target(scheme, host, port, path, literal)


def _default_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _checked_addresses(
    target: _Target,
    resolver: Resolver | None,
    address_allowed: Callable[[Address], bool],
) -> list[Address]:
    """The addresses to connect to, all of them allowed, or an error."""
    if target.literal is not None:
        addresses: list[Address] = [target.literal]
    else:
        try:
            answers = list((resolver or _default_resolver)(target.host, target.port))
        except (OSError, UnicodeError):
            raise FetchError(f"The host name {target.host} could not be found.") from None
        addresses = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer if isinstance(answer, (int, str)) else str(answer))
            except ValueError:
                raise FetchError(f"The host name {target.host} resolved to an invalid address.") from None
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise FetchError(f"The host name {target.host} could not be found.")
    for address in addresses:
        if not address_allowed(address):
            if target.literal is not None:
                raise UnsafeURLError(
                    f"The URL points to a private or local network address ({address}), which is not allowed."
                )
            raise UnsafeURLError(
                f"The host {target.host} points to a private or local network address ({address}), "
                "which is not allowed."
            )
    return addresses


# --------------------------------------------------------------------------- connections


def _open_socket(ip: Address, port: int, timeout: float) -> socket.socket:
    """A TCP connection to exactly ``ip`` (no name resolution happens here)."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(ip), port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _ssl_context() -> ssl.SSLContext:
    """The TLS settings for https URLs (system CAs, hostname checking)."""
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a fixed address; ``host`` only goes into the Host header."""

    def __init__(self, host: str, port: int, ip: Address, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._pinned_ip = ip

    def connect(self) -> None:
        self.sock = _open_socket(self._pinned_ip, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a fixed address whose certificate must match ``host``."""

    def __init__(self, host: str, port: int, ip: Address, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._pinned_ip = ip
        self._pinned_context = context

    def connect(self) -> None:
        sock = _open_socket(self._pinned_ip, self.port, self.timeout)
        try:
            self.sock = self._pinned_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _connection(target: _Target, ip: Address, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target.host, target.port, ip, timeout, _ssl_context())
    return _PinnedHTTPConnection(target.host, target.port, ip, timeout)


def _describe_network_error(error: BaseException, target: _Target, timeout: float) -> FetchError:
    host = target.host
    if isinstance(error, FetchError):
        return error
    if isinstance(error, TimeoutError):
        return FetchError(f"The server {host} did not answer within {timeout:g} seconds.")
    if isinstance(error, ssl.SSLCertVerificationError):
        return FetchError(f"The secure connection to {host} failed because its certificate is not valid for it.")
    if isinstance(error, ssl.SSLError):
        return FetchError(f"The secure connection to {host} could not be set up.")
    if isinstance(error, ConnectionRefusedError):
        return FetchError(f"The server {host} refused the connection.")
    if isinstance(error, http.client.IncompleteRead):
        return FetchError(f"The download from {host} was cut off before it finished.")
    if isinstance(error, http.client.HTTPException):
        return FetchError(f"The server {host} sent an answer that is not valid HTTP.")
    return FetchError(f"The server {host} could not be reached.")


def _format_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB" if n % (1024 * 1024) == 0 else f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _check_content_type(content_type: str, content_types: Sequence[str] | None) -> None:
    if not content_types:
        return
    wanted = [prefix.lower() for prefix in content_types]
    if any(content_type.startswith(prefix) for prefix in wanted):
        return
    what = "an image" if all(prefix.startswith("image/") for prefix in wanted) else "the expected kind of file"
    if not content_type:
        raise FetchError(f"The URL did not say what kind of file it returned, so it is not treated as {what}.")
    if content_type in ("text/html", "application/xhtml+xml"):
        raise FetchError(f"The URL returned a web page ({content_type}), not {what}.")
    raise FetchError(f"The URL returned {content_type} content, not {what}.")


def _read_body(response: http.client.HTTPResponse, target: _Target, max_bytes: int, deadline: float) -> bytes:
    too_large = FetchError(f"The file at the URL is larger than the {_format_size(max_bytes)} limit.")
    declared = response.length  # None when chunked or ended by closing the connection
    if declared is not None and declared > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError(f"The download from {target.host} took too long and was stopped.")
        chunk = response.read1(_CHUNK_SIZE)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise too_large
        chunks.append(chunk)
    if declared is not None and total < declared:
        raise http.client.IncompleteRead(b"", declared - total)
    return b"".join(chunks)


# --------------------------------------------------------------------------- fetch


def _accept_header(content_types: Sequence[str] | None) -> str:
    if content_types and all(prefix.lower().startswith("image/") for prefix in content_types):
        return "image/*"
    return "*/*"


def fetch_url(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    content_types: Sequence[str] | None = ("image/",),
    address_allowed: Callable[[Address], bool] = is_public_address,
    resolver: Resolver | None = None,
) -> tuple[bytes, str]:
    """GET ``url`` safely and return ``(body, content_type)``.

    ``content_type`` is the media type, lower-cased and without parameters
    (``"image/png"``). ``content_types`` lists accepted prefixes (empty or None: any).
    ``address_allowed`` decides which IP addresses may be connected to;
    ``resolver(host, port)`` returns a host's addresses (default: the system resolver).
    Raises :class:`UnsafeURLError` for URLs refused by policy and :class:`FetchError`
    for every other problem.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    deadline = time.monotonic() + TOTAL_TIME_FACTOR * timeout
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        target = _parse_url(current)
        addresses = _checked_addresses(target, resolver, address_allowed)
        if time.monotonic() > deadline:
            raise FetchError(f"The download from {target.host} took too long and was stopped.")

        connection: http.client.HTTPConnection | None = None
        response: http.client.HTTPResponse | None = None
        try:
            last_error: BaseException | None = None
            for ip in addresses:
                connection = _connection(target, ip, timeout)
                try:
                    connection.connect()
                    break
                except OSError as error:
                    last_error = error
                    connection.close()
                    connection = None
            if connection is None:
                assert last_error is not None
                raise last_error
            connection.request(
                "GET",
                target.request_target,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": _accept_header(content_types),
                    "Accept-Encoding": "identity",
                    "Connection": "close",
                },
            )
            response = connection.getresponse()
            status = response.status

            if status in _REDIRECT_STATUSES:
                location = (response.getheader("Location") or "").strip()
                if not location:
                    raise FetchError(f"The server sent a redirect ({status}) without saying where to.")
                current = urljoin(current, location)
                continue
            if not 200 <= status < 300:
                reason = (response.reason or "").strip()
                shown = f"{status} {reason}" if reason else str(status)
                raise FetchError(f"The server answered {shown} for this URL.")

            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
            _check_content_type(content_type, content_types)
            encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                raise FetchError(f"The server sent compressed data ({encoding}), which is not supported.")
            body = _read_body(response, target, max_bytes, deadline)
            return body, content_type
        except FetchError:
            raise
        except (OSError, http.client.HTTPException) as error:
            raise _describe_network_error(error, target, timeout) from None
        finally:
            if response is not None:
                response.close()
            if connection is not None:
                connection.close()
    raise FetchError(f"The URL redirected more than {MAX_REDIRECTS} times.")


def fetch_image_bytes(url: str, **kwargs) -> bytes:
    """The body of an image URL (see :func:`fetch_url` for the keyword arguments)."""
    body, _content_type = fetch_url(url, **kwargs)
    return body
