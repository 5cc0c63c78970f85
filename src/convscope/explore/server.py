"""The HTTP side: a standard-library ``ThreadingHTTPServer`` in front of an :class:`Explorer`.

Every request is untrusted: bodies are bounded (``Content-Length`` is required on POST and
checked before a byte is read: 411 without it, 413 over the limit, and the connection is
closed so the unread body is never parsed), sockets time out (``REQUEST_TIMEOUT``), at most
``MAX_CONNECTIONS`` requests are handled at once (503 beyond), only the page's own assets
are served (looked up by exact name in a table built at start-up, so no path can reach
outside it), and on a loopback address only ``Host`` headers naming the loopback are
answered (a web page elsewhere cannot reach the API by DNS rebinding). Errors are JSON:
``{"error": message, "status": code}``.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ApiError
from .explorer import MAX_BODY, Explorer
from .job_requests import MAX_JSON
from .images import ImageError, png_bytes

__all__ = ["ExploreServer", "make_server", "static_files"]

REQUEST_TIMEOUT = 30          # seconds a socket may stay silent
MAX_CONNECTIONS = 32          # requests handled at once
MAX_WAIT = 5.0                # seconds POST /api/jobs?wait= may hold a request
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".json": "application/json", ".ico": "image/x-icon"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def static_files() -> dict[str, bytes]:
    """Every asset under ``convscope/explore/static`` by its path there ("app.js", ...)."""
    files: dict[str, bytes] = {}

    def walk(node, prefix: str) -> None:
        for item in node.iterdir():
            name = f"{prefix}{item.name}"
            if item.is_dir():
                walk(item, name + "/")
            elif any(name.endswith(ext) for ext in TYPES):
                files[name] = item.read_bytes()

    walk(resources.files("convscope.explore") / "static", "")
    return files


class ExploreServer(ThreadingHTTPServer):
    """A threading HTTP server holding the :class:`Explorer` and the page's assets."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, explorer: Explorer, *, quiet: bool = True) -> None:
        self.explorer, self.quiet = explorer, quiet
        self.assets = static_files()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, Handler)
        self.loopback_only = address[0] in LOOPBACK

    def process_request(self, request, client_address):
        if not self.slots.acquire(timeout=1.0):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 47\r\nConnection: close\r\n\r\n"
                                b'{"error": "server busy, retry", "status": 503}')
            finally:
                self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def server_close(self) -> None:
        super().server_close()
        self.explorer.close()


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8000) -> ExploreServer:
    """A server for ``explorer`` bound to (host, port) (port 0: any free port); call
    ``serve_forever()`` on it, and ``shutdown()`` / ``server_close()`` to stop."""
    if ":" in host:
        import socket

        class Server6(ExploreServer):
            address_family = socket.AF_INET6
        return Server6((host, port), explorer)
    return ExploreServer((host, port), explorer)


class Handler(BaseHTTPRequestHandler):
    """Routes to the Explorer; every answer JSON, PNG or a static asset."""

    protocol_version = "HTTP/1.1"
    server_version = "convscope-explore"
    timeout = REQUEST_TIMEOUT                      # StreamRequestHandler sets it on the socket
    error_content_type = "application/json"
    error_message_format = '{"error": "%(message)s", "status": %(code)d}'

    # -- plumbing ----------------------------------------------------------------------------
    def log_message(self, format, *args):      # noqa: A002 (the base class's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: int = 200, headers: dict | None = None) -> None:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        self._send(status, body, "application/json", headers)

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message, "status": status}, status)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (a malformed request line, an unknown method) as JSON too."""
        self.close_connection = True
        self._error(int(code), message or HTTPStatus(code).phrase)

    def _body(self, limit: int) -> bytes:
        """The request body, at most ``limit`` bytes, refused before reading when too large."""
        self.close_connection = True                # until the body is known to be consumed
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "chunked bodies are not accepted: send a Content-Length")
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise ApiError(411, "a POST needs a Content-Length header")
        try:
            n = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length must be a number, got {declared[:40]!r}") from None
        if n < 0:
            raise ApiError(400, f"Content-Length must not be negative, got {n}")
        if n > limit:
            raise ApiError(413, f"the body declares {n} bytes; the limit here is {limit}")
        body = self.rfile.read(n)
        if len(body) != n:
            raise ApiError(400, f"the body ended after {len(body)} of the {n} bytes declared")
        self.close_connection = False
        return body

    def _host_ok(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        return name in LOOPBACK

    def _dispatch(self, routes: dict) -> None:
        try:
            self._route(routes)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):      # the client went away
            self.close_connection = True

    def _route(self, routes: dict) -> None:
        try:
            if not self._host_ok():
                raise ApiError(403, "this server answers only requests addressed to the loopback (Host header)")
            parts = urlsplit(self.path)
            path = unquote(parts.path, errors="strict")
            query = {k: v[-1] for k, v in parse_qs(parts.query, max_num_fields=32).items()}
            if path.startswith("/api/jobs/") and "job" in routes:
                return routes["job"](path[len("/api/jobs/"):], query)
            handler = routes.get(path)
            if handler is not None:
                return handler(query)
            if "static" in routes and (path == "/" or path.startswith("/static/")):
                return routes["static"](path)
            if any(path == p for p in ALL_ROUTES):
                raise ApiError(405, f"{self.command} is not allowed on {path}")
            raise ApiError(404, f"not found: {path[:100]}")
        except ApiError as err:
            self._error(err.status, err.message)
        except ImageError as err:
            self._error(400, " ".join(str(err).split()))
        except (UnicodeDecodeError, ValueError) as err:
            self._error(400, " ".join(f"bad request: {err}".split())[:300])
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            raise
        except Exception as err:                    # a bug: say so, keep serving
            self.close_connection = True
            self._error(500, f"internal error: {type(err).__name__}: {' '.join(str(err).split())[:200]}")

    def do_GET(self):  # noqa: N802 (http.server's names)
        self._dispatch({"/api/model": self._model, "/api/activations": self._activations,
                        "/api/unit": self._unit, "/api/dataset": self._dataset, "/api/run": self._run,
                        "job": self._job_get, "static": self._static})

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        self._dispatch({"/api/predict": self._predict, "/api/jobs": self._job_post})

    def do_DELETE(self):  # noqa: N802
        self._dispatch({"job": self._job_delete})

    def do_PUT(self):  # noqa: N802
        self._dispatch({})

    do_PATCH = do_PUT

    # -- routes ------------------------------------------------------------------------------
    def _static(self, path: str) -> None:
        name = "index.html" if path == "/" else path[len("/static/"):]
        body = self.server.assets.get(name)
        if body is None:
            raise ApiError(404, f"no such asset: {name[:100]}")
        ext = name[name.rfind("."):]
        self._send(200, body, TYPES[ext])

    def _model(self, query) -> None:
        self._json(self.server.explorer.model_info())

    def _predict(self, query) -> None:
        ex = self.server.explorer
        started = time.perf_counter()
        body = self._body(MAX_BODY)
        pixels = ex.read_input(body, query.get("source", "image"), query.get("invert", "0") in ("1", "true"))
        input_id = ex.remember(pixels)
        payload = ex.predict(input_id, k=min(ex.clf.num_classes, 10))
        if query.get("activations", "0") in ("1", "true"):
            payload["activations"] = ex.activations(input_id)["layers"]
        payload["seconds"] = round(time.perf_counter() - started, 4)
        self._json(payload)

    def _activations(self, query) -> None:
        self._json(self.server.explorer.activations(query.get("input"), query.get("layer"),
                                                    query.get("offset"), query.get("count")))

    def _unit(self, query) -> None:
        ex = self.server.explorer
        self._json(ex.unit(query.get("input"), query.get("layer"), query))

    def _dataset(self, query) -> None:
        ex = self.server.explorer
        if query.get("index") is None:
            return self._json(ex.dataset_info())
        image, label, name = ex.dataset_image(query.get("split", "test"), query["index"])
        self._send(200, png_bytes(image), "image/png",
                   {"X-Convscope-Label": str(label), "X-Convscope-Class": _header_text(name)})

    def _run(self, query) -> None:
        self._json(self.server.explorer.run_info())

    def _job_post(self, query) -> None:
        body = self._body(MAX_JSON)
        try:
            spec = json.loads(body)
        except ValueError:
            raise ApiError(400, "the body must be a JSON object describing the job") from None
        job = self.server.explorer.submit(spec)
        wait = query.get("wait")
        if wait is not None:
            try:
                seconds = min(max(float(wait), 0.0), MAX_WAIT)
            except ValueError:
                raise ApiError(400, f"wait must be a number of seconds, got {wait[:40]!r}") from None
            job.done.wait(seconds)
        state = job.to_dict()
        self._json(state, 200 if job.done.is_set() else 202)

    def _job(self, job_id: str):
        job = self.server.explorer.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id[:40]!r} (finished jobs are forgotten after a while)")
        return job

    def _job_get(self, job_id: str, query) -> None:
        self._json(self._job(job_id).to_dict())

    def _job_delete(self, job_id: str, query) -> None:
        self._job(job_id)
        self._json(self.server.explorer.jobs.cancel(job_id).to_dict())


def _header_text(text: str) -> str:
    """``text`` safe as an HTTP header value: printable ASCII only, at most 200 characters."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:200]


ALL_ROUTES = ("/api/model", "/api/activations", "/api/unit", "/api/dataset", "/api/run", "/api/predict",
              "/api/jobs")
