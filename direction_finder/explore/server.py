"""The explorer's HTTP server: the standard library's ThreadingHTTPServer, a fixed set of assets
shipped in the package, and a small JSON / image API. Nothing from a request becomes a path.

GET  /                      the page (with this session's token)
GET  /static/app.js|app.css the page's script and style
GET  /api/meta              names, labels, sets, eta, order by activeness (once measured)
GET  /api/class?q=...       an ImageNet class by name, index or WordNet id (400 with the closest names)
GET  /api/image?...         PNG of a view; 409 when a newer request of the same client superseded it
GET  /api/latent.npy?...    the latents shown, z + w Q
GET  /api/sweep.gif?...&direction=i   one direction swept around the current point
                            (these three run the generator: the page's token is needed, in the
                            query as token=... or in the header X-Hpdirs-Token; 503 when
                            too many of their kind wait already; dropped when the client goes)
POST /api/label             {"index": i, "name": "zoom"}   (token and same origin required)
POST /api/latents           a .npy body: the user's base latents (token and same origin required)

View parameters: set (learned|axes|sefa), c (`3:1.5,7:-2`), seed, samples (1-4), latents=uploaded,
class, truncation, layers (`0-3`: the latent layers the coefficients reach, BigGAN-deep); client
and seq (the page's request counter) let the newest position win.

Other sites: a request whose Host header is not a name or address this server is bound to (or
localhost) gets 403 before anything is served, so a page on another site that rebinds its own
domain name to 127.0.0.1 reads nothing (DNS rebinding). Writes need the token in the page and an
Origin, when sent, of an accepted host. An idle connection is closed after IDLE_TIMEOUT_S. A
client that resets or abandons its connection is normal: no traceback, and no work done for it.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import select
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from direction_finder.artifacts.labels import parse_layer_range
from direction_finder.errors import HpdirsError, HpdirsWarning, UsageError
from direction_finder.explore.session import Busy, ClientGone, Explorer, View
from direction_finder.files import parse_json
from direction_finder.generators.imagenet import closest_classes, resolve_class
from direction_finder.validation import plain

ASSETS = {  # request path -> (file in the package's static folder, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
MAX_BODY = 16 * 2**20  # bytes of an upload: 1024 latents of z_dim 2048 in float64 fit
IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing this long (a body announced, never sent) is closed
WILDCARDS = ("", "0.0.0.0", "::")  # bound to every interface
HEAVY = ("/api/image", "/api/latent.npy", "/api/sweep.gif")  # run the generator: the page's token is needed


class BadRequest(ValueError):
    """A request the API cannot take: answered with 400 and its one-line message."""


def view_from(query: dict[str, list[str]]) -> View:
    """A View from the query parameters (BadRequest names the parameter that is wrong)."""

    def one(name: str, default: str | None = None) -> str | None:
        values = query.get(name)
        return values[-1] if values else default

    def number(name: str, kind: Callable[[str], Any], default: Any = None) -> Any:
        text = one(name)
        if text is None or text == "":
            return default
        try:
            return kind(text)
        except ValueError:
            raise BadRequest(f"{name}={text!r} is not a number") from None

    coefficients: dict[int, float] = {}
    for item in filter(None, (one("c") or "").split(",")):
        index, _, value = item.partition(":")
        try:
            coefficients[int(index)] = float(value)
        except ValueError:
            raise BadRequest(f"c: {item!r} is not index:value") from None
    return View.of(
        one("set", "learned") or "learned",
        coefficients,
        seed=number("seed", int, 0),
        samples=number("samples", int, 1),
        uploaded=one("latents") == "uploaded",
        class_=number("class", int),
        truncation=number("truncation", float),
        layers=_layers(one("layers")),
    )


def _layers(text: str | None) -> tuple[int, int] | None:
    """`layers=2-5` (first-last latent layers the coefficients reach, read as `hpdirs label` and
    `render` read them); absent or empty: all."""
    return parse_layer_range(text[:40]) if text else None


def _index(name: str, text: str) -> int:
    """A count or index from a query: ASCII digits only (str.isdigit also takes '²' and '٣'),
    and short enough to be one."""
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise BadRequest(f"{name}={text[:40]!r} is not an index")
    return int(text)


@dataclass
class ExploreServer:
    """A running explorer: its address and how to stop it."""

    explorer: Explorer
    httpd: ThreadingHTTPServer
    token: str
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ExploreServer:
        """Serve on a background thread (tests, benchmarks)."""
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.explorer.close()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostRule:
    """Which Host headers (and Origins) name this server: the name or address it was bound to,
    localhost and the loopback addresses, and, bound to every interface, any IP address and this
    machine's own names. A rebinding attack needs a domain name of the attacker's, never listed."""

    names: frozenset[str]
    port: int
    any_address: bool

    @staticmethod
    def of(host: str, port: int) -> HostRule:
        names = {host.lower().strip("[]"), "localhost", "127.0.0.1", "::1"}
        wildcard = host in WILDCARDS
        if wildcard:
            names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        return HostRule(frozenset(names), port, wildcard)

    def accepts(self, authority: str) -> bool:
        """Whether `host[:port]` (a Host header, or an Origin's netloc) names this server."""
        try:
            parts = urlsplit(f"//{authority}")
            name, port = (parts.hostname or ""), (parts.port or 80)
        except ValueError:  # a port that is not a number, a bracket left open
            return False
        if port != self.port or parts.username is not None or parts.password is not None:
            return False
        return name in self.names or (self.any_address and _is_ip(name))


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> ExploreServer:
    """Bind the explorer's server (port 0: a free port); serve with serve_forever() or start().

    Bound to anything but a loopback address, the page is reachable from the network, and its
    writes need only the token the page carries: a HpdirsWarning says so."""
    token = secrets.token_urlsafe(24)
    if not 0 <= port <= 65535:
        raise UsageError(f"`port` {port} is not a port; give 0 (a free one) to 65535")

    class Handler(_Handler):
        pass

    Handler.explorer, Handler.token = explorer, token
    httpd = _Server((host, port), Handler)
    httpd.daemon_threads = True
    Handler.hosts = HostRule.of(host, int(httpd.server_address[1]))
    if not _is_loopback(host):
        warnings.warn(
            f"the explorer listens on {host or 'every interface'}: anyone who can reach this machine can open "
            "it, and its writes (labels, uploads) need only the token in the page; use `host` 127.0.0.1 "
            "(the default) and an SSH tunnel to reach it from elsewhere",
            HpdirsWarning,
            stacklevel=2,
        )
    return ExploreServer(explorer, httpd, token)


class _Server(ThreadingHTTPServer):
    """The standard server, except for what it does with a request that fails outside the API's
    own answers: a client that reset, closed or stalled its connection is normal and passes in
    silence; anything else is one warning line, never a traceback on the explorer's terminal.
    Connections wait for their thread in a queue of 128, not the standard 5: a burst of requests
    (a flood of abandoned ones, or just a page's parallel fetches) fills 5 faster than the accept
    loop takes them, and every connection beyond it waits a second for TCP to send its SYN again."""

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        warnings.warn(
            f"the explorer could not answer a request from {client_address[0]} ({type(exc).__name__}: {exc})",
            HpdirsWarning,
            stacklevel=1,
        )


class _Handler(BaseHTTPRequestHandler):
    explorer: Explorer
    token: str
    hosts: HostRule
    server_version = "hpdirs-explore"
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # socketserver sets it on the connection: reads and writes time out

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows the URL only
        pass

    # --- answers ---
    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": " ".join(message.split())})

    def _guarded(self, answer: Callable[[], None]) -> None:
        if not self.hosts.accepts(self.headers.get("Host", "")):
            self.close_connection = True
            self._error(HTTPStatus.FORBIDDEN, "refused: the Host header does not name this server")
            return
        try:
            answer()
        except (BadRequest, HpdirsError, KeyError, IndexError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, plain(str(exc).strip("'\"")))
        except Busy as exc:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        except (ConnectionError, TimeoutError, ClientGone):
            self.close_connection = True  # the page went away, aborted a stale request, or stalled
        except Exception as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    # --- routes ---
    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _gone(self) -> bool:
        """Whether the client closed its connection while its request waits: it is readable,
        and reading would give the end of the stream (or an error), not a next request."""
        try:
            if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select
                poller = select.poll()
                poller.register(self.connection, select.POLLIN)
                readable = bool(poller.poll(0))
            else:
                readable = bool(select.select([self.connection], [], [], 0)[0])
            return readable and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _get(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path in HEAVY and not self._has_token((query.get("token") or [""])[-1]):
            self._error(HTTPStatus.FORBIDDEN, "refused: the page's token is needed for pictures")
            return
        if url.path in ASSETS:
            name, kind = ASSETS[url.path]
            body = resources.files("direction_finder.explore").joinpath("static").joinpath(name).read_bytes()
            if name == "index.html":
                body = body.replace(b"{{TOKEN}}", self.token.encode())
            self._send(HTTPStatus.OK, body, kind)
        elif url.path == "/api/meta":
            self._json(HTTPStatus.OK, self.explorer.metadata())
        elif url.path == "/api/image":
            client, seq = (query.get("client") or [""])[-1][:64], (query.get("seq") or ["0"])[-1]
            png = self.explorer.image(view_from(query), client, _index("seq", seq), self._gone)
            if png is None and self._gone():
                raise ClientGone()
            if png is None:
                self._error(HTTPStatus.CONFLICT, "superseded by a newer request")
            else:
                self._send(HTTPStatus.OK, png, "image/png")
        elif url.path == "/api/class":
            asked = (query.get("q") or [""])[-1][:200]
            try:
                found = resolve_class(asked)
            except UsageError as exc:  # with the closest classes, for the page to offer as buttons
                close = [{"index": c.index, "name": c.names[0]} for c in closest_classes(asked)]
                self._json(HTTPStatus.BAD_REQUEST, {"error": plain(str(exc)), "suggestions": close})
                return
            self._json(HTTPStatus.OK, {"index": found.index, "name": found.names[0], "wordnet_id": found.wordnet_id})
        elif url.path == "/api/latent.npy":
            body = self.explorer.latent_npy(view_from(query))
            self._send(HTTPStatus.OK, body, "application/octet-stream",
                       {"Content-Disposition": 'attachment; filename="latent.npy"'})  # fmt: skip
        elif url.path == "/api/sweep.gif":
            direction = _index("direction", (query.get("direction") or [""])[-1])
            body = self.explorer.sweep_gif(view_from(query), direction, gone=self._gone)
            self._send(HTTPStatus.OK, body, "image/gif",
                       {"Content-Disposition": f'attachment; filename="direction_{direction}.gif"'})  # fmt: skip
        else:
            self._error(HTTPStatus.NOT_FOUND, "no such page")

    def _post(self) -> None:
        url = urlsplit(self.path)
        if url.path not in ("/api/label", "/api/latents"):
            self._error(HTTPStatus.NOT_FOUND, "no such page")
            return
        if not self._same_origin():
            self._error(HTTPStatus.FORBIDDEN, "refused: this request does not come from the explorer's page")
            return
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            raise BadRequest(f"a body of at most {MAX_BODY} bytes, with its Content-Length, is needed")
        body = self.rfile.read(int(length))
        if url.path == "/api/latents":
            self._json(HTTPStatus.OK, {"count": self.explorer.upload_latents(body)})
            return
        try:
            request = parse_json(body)
            index, name = request["index"], request["name"]
        except (ValueError, KeyError, TypeError):
            raise BadRequest('the body must be JSON {"index": i, "name": "..."}') from None
        if not isinstance(index, int) or not isinstance(name, str):
            raise BadRequest('the body must be JSON {"index": i, "name": "..."}')
        labels = self.explorer.label(index, name)
        self._json(HTTPStatus.OK, {"labels": {str(i): v for i, v in labels.items()}})

    def _has_token(self, given: str = "") -> bool:
        """The page's token, in the header X-Hpdirs-Token or as `given` (a query's token=): what
        only the page knows. Compared as bytes, so any header (non-ASCII included) is a yes or a
        no, never an error."""
        sent = (self.headers.get("X-Hpdirs-Token") or given).encode("utf-8", "surrogateescape")
        return secrets.compare_digest(sent, self.token.encode())

    def _same_origin(self) -> bool:
        """The page's token in a header (a cross-site form cannot set one, nor read the page to
        learn it), and an Origin, when sent, of this server."""
        if not self._has_token():
            return False
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        scheme, _, authority = origin.partition("://")
        return scheme == "http" and self.hosts.accepts(authority)
