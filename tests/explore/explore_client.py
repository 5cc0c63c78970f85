"""A tiny HTTP client for the explorer tests, and a server started in a thread."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np

from convscope.explore import make_server


@contextmanager
def serving(explorer):
    """The explorer served on a free port of 127.0.0.1 in a daemon thread; yields a Client."""
    server = make_server(explorer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Client(server.url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Response:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class Client:
    """Requests with http.client (the path goes out exactly as written: no normalisation)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url, self.host, self.port = url, parts.hostname, parts.port

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def get_json(self, path: str):
        r = self.get(path)
        assert r.status == 200, (path, r.status, r.body[:300])
        return r.json()

    def post(self, path: str, body: bytes, content_type: str = "image/png") -> Response:
        return self.request("POST", path, body, {"Content-Type": content_type})

    def post_json(self, path: str, payload) -> Response:
        return self.post(path, json.dumps(payload).encode(), "application/json")

    def job(self, spec: dict, wait: float = 5.0) -> dict:
        """Submit a job and wait for its end; the finished job's JSON."""
        r = self.post_json(f"/api/jobs?wait={wait}", spec)
        assert r.status in (200, 202), (r.status, r.body[:300])
        job = r.json()
        for _ in range(600):
            if job["state"] not in ("queued", "running"):
                return job
            job = self.get_json(f"/api/jobs/{job['id']}")
        raise AssertionError(f"job {spec} did not finish")

    def raw(self, data: bytes, read_timeout: float = 10.0) -> bytes:
        """Send raw bytes and return what comes back until the server closes (or timeout)."""
        with socket.create_connection((self.host, self.port), timeout=read_timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while chunk := s.recv(65536):
                    chunks.append(chunk)
            except (TimeoutError, socket.timeout):
                pass
            return b"".join(chunks)


def floats(b64: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(shape)
