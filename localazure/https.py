"""A tiny HTTPS server on 127.0.0.1 with trustme certificates, shared by every stand-in service.

Each stand-in is a plain function `Request -> Response`; this module owns sockets, TLS and threads.
"""

from __future__ import annotations

import json
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

LOOPBACK = "127.0.0.1"


class CertificateAuthority:
    """A throwaway CA; `ca_path` is the PEM that clients pass as `connection_verify`."""

    def __init__(self, directory: str | None = None):
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert(LOOPBACK, "localhost")
        self._dir = Path(directory or tempfile.mkdtemp(prefix="localazure-ca-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self.ca_path = str(self._dir / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx


@dataclass
class Request:
    method: str
    path: str  # URL-decoded path, without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Set to drop the connection without answering (fault injection).
    drop_connection: bool = False

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        return cls(status, json.dumps(payload).encode("utf-8"), hdrs)


Handler = Callable[[Request], Response]


class HttpsServer:
    """Serves `handler` over HTTPS on 127.0.0.1 at a free port, in a background thread."""

    # How often the serve loop checks for shutdown: short, so stopping a server takes milliseconds, not 0.5 s.
    poll_interval = 0.02

    def __init__(self, handler: Handler, ca: CertificateAuthority, port: int = 0):
        self.handler = handler
        outer = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small responses otherwise wait ~40 ms for delayed ACKs

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=unquote(split.path),
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    response = outer.handler(request)
                except Exception as exc:  # noqa: BLE001 - a stand-in bug must answer 500, not hang the client
                    response = Response.json(
                        {"error": {"code": "StandInError", "message": f"{type(exc).__name__}: {exc}"}}, 500
                    )
                if response.drop_connection:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        self._httpd = ThreadingHTTPServer((LOOPBACK, port), _RequestHandler)
        self._httpd.daemon_threads = True
        context = ca.server_context()
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"https://{host}:{port}"

    def start(self) -> HttpsServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(self.poll_interval,), name="localazure-https", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() would wait forever for a loop that never started
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
