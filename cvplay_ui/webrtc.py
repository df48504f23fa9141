"""WebRTC connection settings for the webcam page, read from the environment.

The webcam page streams the camera to the server and back over WebRTC. Browser and server must
find a network path to each other (ICE). On one machine or one LAN, their own addresses ("host
candidates") are enough and no outside server is needed. Across NATs or firewalls (a cloud
deployment such as Heroku, or a phone on mobile data) you need a TURN relay, and usually a
STUN server. cvplay reads the relay settings from these environment variables, first match wins:

``CVPLAY_ICE_SERVERS``
    JSON: a list of RTCIceServer objects, or an object ``{"iceServers": [...]}``, exactly as a
    browser's ``RTCPeerConnection`` takes them, e.g.
    ``[{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]``.
    ``[]`` forces host candidates only. The special value ``auto`` hands the choice to
    streamlit-webrtc's ``get_available_ice_servers()``: Cloudflare, then Twilio, then a Hugging
    Face token (``HF_TOKEN``), and Google's public STUN server when none of them works.
``TURN_URL`` (+ ``TURN_USERNAME``, ``TURN_CREDENTIAL``)
    A TURN server of your own (e.g. coturn). ``TURN_URL`` may list several URLs separated by
    commas (``turn:host:3478?transport=udp,turns:host:5349``).
``STUN_URL``
    A STUN server (e.g. ``stun:stun.l.google.com:19302``), alone or added to ``TURN_URL``.
``CLOUDFLARE_TURN_KEY_ID`` + ``CLOUDFLARE_TURN_KEY_API_TOKEN``
    Cloudflare Realtime TURN; short-lived credentials are fetched through streamlit-webrtc
    (cached for an hour).
``TWILIO_ACCOUNT_SID`` + ``TWILIO_AUTH_TOKEN``
    Twilio Network Traversal Service, fetched through streamlit-webrtc's
    ``get_twilio_ice_servers`` (needs ``pip install twilio``; cached for an hour).

With none of these set, cvplay uses **no STUN or TURN server at all** (``{"iceServers": []}``):
host candidates only. That works when the browser and the server share a machine or a network
(``streamlit run app.py`` and open http://localhost:8501), needs no internet, and never stalls
waiting for an unreachable STUN server. (streamlit-webrtc's own default would be Google's
STUN server; set ``STUN_URL`` or ``CVPLAY_ICE_SERVERS=auto`` to get it.) If a provider's
credentials are set but fetching them fails, streamlit-webrtc logs a warning and falls back to
Google's STUN server.

``CVPLAY_WEBRTC_LOOPBACK=1`` is for tests only: it makes the server offer (and accept) only
127.0.0.1 ICE candidates, so a headless Chromium on the same machine (started with
``--allow-loopback-in-peer-connection``) connects over the loopback interface alone.

The camera itself needs a secure page: browsers allow ``getUserMedia`` only on https:// or on
http://localhost / http://127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from typing import Any, Mapping

LOGGER = logging.getLogger(__name__)

ENV_ICE_SERVERS = "CVPLAY_ICE_SERVERS"
ENV_TURN_URL = "TURN_URL"
ENV_TURN_USERNAME = "TURN_USERNAME"
ENV_TURN_CREDENTIAL = "TURN_CREDENTIAL"
ENV_STUN_URL = "STUN_URL"
ENV_LOOPBACK = "CVPLAY_WEBRTC_LOOPBACK"
PROVIDER_PAIRS = (
    ("CLOUDFLARE_TURN_KEY_ID", "CLOUDFLARE_TURN_KEY_API_TOKEN", "Cloudflare Realtime TURN"),
    ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "Twilio"),
)


class IceConfigError(ValueError):
    """An ICE setting in the environment is malformed."""


def _urls(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_server(server: Any, where: str) -> dict[str, Any]:
    if not isinstance(server, dict):
        raise IceConfigError(f"{where}: each ICE server must be a JSON object with 'urls'")
    urls = server.get("urls")
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise IceConfigError(f"{where}: 'urls' must be a URL or a list of URLs")
    for url in urls:
        if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise IceConfigError(f"{where}: {url!r} is not a stun:, stuns:, turn: or turns: URL")
    checked: dict[str, Any] = {"urls": urls}
    for key in ("username", "credential"):
        if server.get(key) is not None:
            if not isinstance(server[key], str):
                raise IceConfigError(f"{where}: '{key}' must be a string")
            checked[key] = server[key]
    if any(url.startswith(("turn:", "turns:")) for url in urls) and not ("username" in checked and "credential" in checked):
        raise IceConfigError(f"{where}: a TURN server needs 'username' and 'credential'")
    return checked


def parse_ice_servers(text: str, where: str = ENV_ICE_SERVERS) -> list[dict[str, Any]]:
    """Validate the JSON of :data:`ENV_ICE_SERVERS`; raises :class:`IceConfigError`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise IceConfigError(f"{where} is not valid JSON ({error.msg} at column {error.colno})") from None
    if isinstance(data, dict):
        data = data.get("iceServers")
    if not isinstance(data, list):
        raise IceConfigError(f"{where} must be a JSON list of ICE servers or an object with 'iceServers'")
    return [_check_server(server, where) for server in data]


def ice_servers_from_env(environ: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], str]:
    """The ICE servers the environment asks for, and a sentence saying where they came from.

    Contacts a provider only when that provider's variables are set.
    """
    env = os.environ if environ is None else environ
    configured = env.get(ENV_ICE_SERVERS, "").strip()
    if configured.lower() == "auto":
        from streamlit_webrtc.credentials import get_available_ice_servers

        return list(get_available_ice_servers()), f"{ENV_ICE_SERVERS}=auto: streamlit-webrtc's provider chain"
    if configured:
        servers = parse_ice_servers(configured)
        return servers, f"{ENV_ICE_SERVERS}: {len(servers)} ICE server(s)"
    turn_url = env.get(ENV_TURN_URL, "").strip()
    stun_url = env.get(ENV_STUN_URL, "").strip()
    if turn_url:
        username = env.get(ENV_TURN_USERNAME, "")
        credential = env.get(ENV_TURN_CREDENTIAL, "")
        if not username or not credential:
            raise IceConfigError(f"{ENV_TURN_URL} is set, so {ENV_TURN_USERNAME} and {ENV_TURN_CREDENTIAL} must be set too")
        servers = [_check_server({"urls": _urls(turn_url), "username": username, "credential": credential}, ENV_TURN_URL)]
        if stun_url:
            servers.append(_check_server({"urls": _urls(stun_url)}, ENV_STUN_URL))
        return servers, f"{ENV_TURN_URL}: your TURN server" + (" and STUN server" if stun_url else "")
    for first, second, provider in PROVIDER_PAIRS:
        if env.get(first) and env.get(second):
            from streamlit_webrtc.credentials import get_available_ice_servers

            return list(get_available_ice_servers()), f"{first}/{second}: {provider} via streamlit-webrtc"
        if env.get(first) or env.get(second):
            missing = second if env.get(first) else first
            LOGGER.warning("%s credentials are half set: %s is missing, so %s is not used", provider, missing, provider)
    if stun_url:
        return [_check_server({"urls": _urls(stun_url)}, ENV_STUN_URL)], f"{ENV_STUN_URL}: a STUN server, no TURN relay"
    return [], "no STUN/TURN server: host candidates only (same machine or network)"


def rtc_configuration(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``rtc_configuration`` for ``webrtc_streamer`` (browser and server alike).

    Always has an ``iceServers`` list, so streamlit-webrtc never fills in its own default.
    """
    servers, _ = ice_servers_from_env(environ)
    return {"iceServers": servers}


def loopback_requested(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(ENV_LOOPBACK, "").strip().lower() in ("1", "true", "yes", "on")


_LOOPBACK_PATCHED = False


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def enable_loopback_ice() -> bool:
    """Test support: the server gathers 127.0.0.1 only and ignores non-loopback remote
    candidates (aioice normally leaves the loopback interface out). Idempotent; returns whether
    the patch is in place."""
    global _LOOPBACK_PATCHED
    if _LOOPBACK_PATCHED:
        return True
    from aioice import ice

    def loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    original_add = ice.Connection.add_remote_candidate

    async def add_loopback_candidate(self, remote_candidate):
        if remote_candidate is not None and not _is_loopback(str(remote_candidate.host)):
            return None
        return await original_add(self, remote_candidate)

    ice.get_host_addresses = loopback_host_addresses
    ice.Connection.add_remote_candidate = add_loopback_candidate
    _LOOPBACK_PATCHED = True
    LOGGER.warning("%s is set: WebRTC uses 127.0.0.1 ICE candidates only (for tests)", ENV_LOOPBACK)
    return True
