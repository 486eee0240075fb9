"""The explorer's HTTP layer: the page's static files and the JSON API of docs/explore/api.md.

Python's ``http.server.ThreadingHTTPServer``: one thread per request, no dependency. It is
enough here because every request is a short NumPy computation under its run's lock (one user,
a few tabs), and what a framework would add (routing, body parsing) is a dozen lines below.

Security (a local server that reads model files):

- it binds 127.0.0.1 unless told otherwise;
- every request's Host header must name the bound host and port (or, bound to loopback,
  ``localhost``): a page on another site that rebinds its DNS name to 127.0.0.1 sends its own
  name, and gets 403 (DNS rebinding); a request that a browser sends from another page (its
  ``Origin`` header names that page) gets 403 too;
- request bodies are bounded (``max_body`` bytes, 413 before reading), uploads in pixels too;
- run names resolve only inside the runs folder (``cnnlab.explore.session.Catalog``), static
  files only inside the package's ``static`` folder; no endpoint takes a path.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, unquote, urlsplit

from cnnlab.errors import CnnlabError, LimitExceededError
from cnnlab.explain import probe
from cnnlab.explain.probe import ExplainError
from cnnlab.explore import compute, detail
from cnnlab.explore.session import Catalog, Jobs, NotFound, RunSession

__all__ = ["Explorer", "HTTPError", "make_server"]

#: bytes of one request body (a JSON request or an uploaded image file)
MAX_BODY = 8 << 20
#: pixels (width x height) of an uploaded or drawn image
MAX_PIXELS = 4096 * 4096
MIME = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json",
        ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
        ".woff2": "font/woff2", ".ico": "image/x-icon"}
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
#: runs kept loaded at once (the least recently used is dropped)
MAX_LOADED = 8


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Explorer:
    """What the handlers share: the catalog of runs, the loaded runs, the jobs, the limits."""

    def __init__(self, catalog: Catalog, max_body: int = MAX_BODY, max_pixels: int = MAX_PIXELS,
                 static=None):
        self.catalog, self.max_body, self.max_pixels = catalog, max_body, max_pixels
        # the page's assets: package data, or another folder (tests)
        self.static = resources.files("cnnlab.explore") / "static" if static is None else static
        self.jobs = Jobs()
        self.sessions: OrderedDict[str, RunSession] = OrderedDict()
        self.lock = threading.Lock()
        self.allowed_hosts: set[str] = set()

    def session(self, name: str) -> RunSession:
        path = self.catalog.resolve(name)
        with self.lock:
            if name not in self.sessions:
                try:
                    self.sessions[name] = RunSession(name, path)
                except (CnnlabError, ValueError, OSError) as error:
                    raise HTTPError(400, f"cannot load run {name!r}: {error}"[:1000]) from None
                while len(self.sessions) > MAX_LOADED:  # a request in flight keeps its own
                    self.sessions.popitem(last=False)
            self.sessions.move_to_end(name)
            return self.sessions[name]

    def image(self, session: RunSession, body: dict):
        """The request's "input" object as (C, H, W) pixels in [0, 1]."""
        spec = body.get("input")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise HTTPError(400, 'expected "input": {"test": i} or {"png": data URL} or '
                                 '{"pixels": array}')
        (kind, value), = spec.items()
        if kind == "test":
            return session.test_image(value)[0]
        if kind == "pixels":
            return compute.decode(value, tuple(session.model.input_shape), "input.pixels")
        if kind == "png":
            return self.prepare(session, data_url(value))[0]
        raise HTTPError(400, f"unknown input kind {kind!r}: expected test, png or pixels")

    def prepare(self, session, data: bytes):
        with session.lock:
            return compute.prepare_input(session.model, data, max_pixels=self.max_pixels)


def data_url(text) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URL."""
    if not isinstance(text, str) or not text.startswith("data:") or ";base64," not in text:
        raise HTTPError(400, "input.png: expected a data URL 'data:image/png;base64,...'")
    try:
        return base64.b64decode(text.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, "input.png: the data URL's base64 is invalid") from None


def _integer(query: dict, name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError:
        raise HTTPError(400, f"{name} must be an integer, received {values[0]!r}") from None


class Handler(BaseHTTPRequestHandler):
    server_version = "cnnlab-explore"
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may stall (a body announced but never sent)
    explorer: Explorer
    quiet = True

    def log_message(self, format, *args):
        if not self.quiet:
            super().log_message(format, *args)

    # -- plumbing -------------------------------------------------------------------------
    def _send(self, status: int, payload: bytes, content_type: str, close: bool = False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _json(self, status: int, obj, close: bool = False):
        self._send(status, json.dumps(obj, allow_nan=False).encode(),
                   "application/json; charset=utf-8", close)

    def _check_host(self):
        host = self.headers.get("Host", "")
        if host.lower() not in self.explorer.allowed_hosts:
            raise HTTPError(403, f"Host {host!r} is not this server's address (a page served "
                                 "from another name may not use it); open the printed URL")
        # a browser names the page that sent a cross-site request: only our own page may call
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in {
                f"http://{name}" for name in self.explorer.allowed_hosts}:
            raise HTTPError(403, f"requests from the page at {origin!r} are not allowed; "
                                 "open the printed URL")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "send the body with a Content-Length, not chunked")
        length = self.headers.get("Content-Length")
        if length is None:
            raise HTTPError(411, "a POST needs a Content-Length")
        try:
            size = int(length)
        except ValueError:
            raise HTTPError(400, f"bad Content-Length {length!r}") from None
        if size < 0:
            raise HTTPError(400, f"bad Content-Length {length!r}")
        if size > self.explorer.max_body:
            raise HTTPError(413, f"the body has {size:,} bytes, more than the "
                                 f"{self.explorer.max_body:,} allowed")
        return self.rfile.read(size)

    def _json_body(self) -> dict:
        data = self._body()
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise HTTPError(400, f"the body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise HTTPError(400, "the body must be a JSON object")
        return body

    def _handle(self, method: str):
        too_big = False
        try:
            self._check_host()
            url = urlsplit(self.path)
            parts = [unquote(p) for p in url.path.split("/")[1:]]
            if parts and parts[0] == "api":
                status, obj = self._api(method, parts[1:], parse_qs(url.query))
                self._json(status, obj)
            elif method in ("GET", "HEAD"):
                self._static(parts)
            else:
                raise HTTPError(405, f"{method} is not allowed on {url.path}")
        except HTTPError as error:
            too_big = error.status in (411, 413)
            self._json(error.status, {"error": str(error)}, close=too_big)
        except NotFound as error:
            self._json(404, {"error": str(error)})
        except LimitExceededError as error:
            self._json(413, {"error": str(error)})
        except (ExplainError, ValueError, TypeError, CnnlabError) as error:
            self._json(400, {"error": str(error)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 (a bug: one line on the console, server stays up)
            print(f"cnnlab explore: internal error on {self.path[:200]}: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
            self._json(500, {"error": f"internal error: {type(error).__name__}: {error}"})

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    # -- static files ---------------------------------------------------------------------
    def _static(self, parts: list[str]):
        if parts in ([""], []):
            parts = ["index.html"]
        elif parts[0] == "static":
            parts = parts[1:]
        else:
            raise NotFound(f"no page {self.path[:200]!r}")
        node = self.explorer.static
        for part in parts:
            if not part or part.startswith(".") or "\\" in part or "\0" in part:
                raise NotFound("no such file")
            node = node / part
        suffix = "." + parts[-1].rsplit(".", 1)[-1].lower() if "." in parts[-1] else ""
        if not node.is_file() or suffix not in MIME:
            raise NotFound(f"no file {'/'.join(parts)!r} among the page's assets")
        self._send(200, node.read_bytes(), MIME[suffix])

    # -- the API --------------------------------------------------------------------------
    def _api(self, method: str, parts: list[str], query: dict):
        ex = self.explorer
        if parts == ["runs"]:
            self._method(method, "GET")
            return 200, {"runs": ex.catalog.listing(), "default": ex.catalog.default}
        if len(parts) == 2 and parts[0] == "jobs":
            self._method(method, "GET")
            return 200, ex.jobs.get(parts[1]).to_json()
        if len(parts) < 3 or parts[0] != "runs":
            raise NotFound(f"no endpoint {self.path[:200]!r}")
        session = ex.session(parts[1])
        action, rest = parts[2], parts[3:]
        if action == "model" and not rest:
            self._method(method, "GET")
            return 200, session.describe()
        if action == "test":
            self._method(method, "GET")
            return 200, self._test(session, rest, query)
        if action == "filters" and not rest:
            self._method(method, "GET")
            with session.lock:
                return 200, compute.filters(session.model, (query.get("layer") or [None])[0])
        if action == "prepare" and not rest:
            self._method(method, "POST")
            pixels, size = ex.prepare(session, self._body())
            return 200, {"pixels": compute.encode(pixels), "original_size": size}
        if rest or action not in POSTS:
            raise NotFound(f"no endpoint {self.path[:200]!r}")
        self._method(method, "POST")
        body = self._json_body()
        return POSTS[action](ex, session, body)

    def _method(self, method: str, allowed: str):
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            raise HTTPError(405, f"{method} is not allowed here; use {allowed}")

    def _test(self, session: RunSession, rest: list[str], query: dict):
        test = session.test_set()
        if test is None:
            raise NotFound(f"run {session.name!r} has no test set: {session._test_problem}")
        names = [str(n) for n in test.class_names]
        if len(rest) == 1:
            try:
                index = int(rest[0])
            except ValueError:
                raise NotFound(f"no test image {rest[0]!r}") from None
            image, label = session.test_image(index)
            return {"index": index, "label": label, "class_name": names[label],
                    "pixels": compute.encode(image)}
        if rest:
            raise NotFound("no such endpoint")
        offset = max(0, _integer(query, "offset", 0))
        count = min(max(0, _integer(query, "count", 48)), 200)
        items = []
        for index in range(offset, min(offset + count, len(test))):
            image = test.images[index]
            pixels = image if image.dtype.name == "uint8" else (image * 255).round()
            label = int(test.labels[index])
            items.append({"index": index, "label": label, "class_name": names[label],
                          "image": compute.encode(pixels, "uint8")})
        return {"total": len(test), "offset": offset, "items": items}


def _field(body: dict, name: str, default=None, required: bool = False):
    if name not in body or body[name] is None:
        if required:
            raise HTTPError(400, f"missing field {name!r}")
        return default
    return body[name]


def _predict(ex, session, body):
    image = ex.image(session, body)
    with session.lock:
        return 200, compute.predict(session.model, image, _field(body, "encoding", "float32"))


def _forward(ex, session, body):
    image = ex.image(session, body)
    args = [_field(body, n, required=True) for n in ("layer", "channel", "y", "x")]
    with session.lock:
        return 200, detail.conv_unit(session.model, image, *args)


def _dense(ex, session, body):
    image = ex.image(session, body)
    with session.lock:
        return 200, detail.dense_unit(session.model, image, _field(body, "layer", required=True),
                                      _field(body, "unit", required=True),
                                      _field(body, "top", 10))


def _backward(ex, session, body):
    image = ex.image(session, body)
    args = [_field(body, n, required=True) for n in ("class", "layer", "filter")]
    with session.lock:
        return 200, detail.backward(session.model, image, *args,
                                    objective=_field(body, "objective", "loss"))


def _saliency(ex, session, body):
    image = ex.image(session, body)
    with session.lock:
        return 200, compute.saliency(session.model, image, _field(body, "class"),
                                     _field(body, "layer"))


def _occlusion(ex, session, body):
    image = ex.image(session, body)
    target, patch, stride = (_field(body, n) for n in ("class", "patch", "stride"))
    with session.lock:  # check the request now, so that a bad one gets its 400 at once
        compute._target(session.model, image, target)
        model = session.job_model()
    job = ex.jobs.start("occlusion", lambda progress: compute.occlusion(
        model, image, target, patch, stride, progress))
    return 202, {"job": job.id}


def _maximize(ex, session, body):
    layer, unit = _field(body, "layer", required=True), _field(body, "unit", required=True)
    steps, seed = _field(body, "steps", 64), _field(body, "seed", 0)
    with session.lock:
        if layer not in probe.layer_names(session.model):
            raise HTTPError(400, f"unknown layer {layer!r}; the layers are: "
                                 f"{', '.join(probe.layer_names(session.model))}")
        model = session.job_model()

    def work(progress):
        progress(0, 1)
        return compute.maximize(model, layer, unit, steps, seed)

    job = ex.jobs.start("maximize", work)
    return 202, {"job": job.id}


POSTS = {"predict": _predict, "forward": _forward, "dense": _dense, "backward": _backward,
         "saliency": _saliency, "occlusion": _occlusion, "maximize": _maximize}


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 0,
                quiet: bool = True) -> ThreadingHTTPServer:
    """A bound (not yet serving) server; ``port`` 0 takes any free port (``server_port``)."""
    handler = type("ExploreHandler", (Handler,), {"explorer": explorer, "quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    port = server.server_address[1]
    names = {host} | (set(LOOPBACK) if host in LOOPBACK else set())
    if host in ("0.0.0.0", "::", ""):
        import socket

        names |= set(LOOPBACK) | {socket.gethostname(), socket.getfqdn()}
    explorer.allowed_hosts = {f"{name}:{port}".lower() for name in names} | {
        f"[{name}]:{port}" for name in names if ":" in name and not name.startswith("[")}
    return server
