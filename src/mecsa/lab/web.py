"""A small HTTPS server for the lab's MTA-STS policies: `https://mta-sts.<domain>/.well-known/mta-sts.txt`.

Run as `python -m mecsa.lab.web ADDRESS CERT KEY ROOT [CRL_ROOT]`: serves ROOT/<Host header>/<path>.
One certificate carries every mta-sts.<domain> name, so no SNI switching is needed. With CRL_ROOT,
it also serves the lab's CRLs over plain HTTP on port 80 (`http://crl.<domain>/<file>`, RFC 5280
§4.2.1.13), CRL_ROOT/<file> whatever the host.
"""

from __future__ import annotations

import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _PolicyHandler(BaseHTTPRequestHandler):
    root = Path("/nonexistent")

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower().rstrip(".")
        relative = self.path.split("?")[0].lstrip("/")
        target = (self.root / host / relative).resolve()
        if not host or self.root.resolve() not in target.parents or not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")
        sys.stderr.flush()


class _CrlHandler(BaseHTTPRequestHandler):
    root = Path("/nonexistent")

    def do_GET(self) -> None:
        name = self.path.split("?")[0].lstrip("/")
        target = (self.root / name).resolve()
        if "/" in name or self.root.resolve() != target.parent or not target.is_file():
            self.send_error(404)
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} crl {format % args}\n")
        sys.stderr.flush()


def main(argv: list[str]) -> None:
    address, cert, key, root, *crl_root = argv
    _PolicyHandler.root = Path(root)
    server = ThreadingHTTPServer((address, 443), _PolicyHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    if crl_root:
        _CrlHandler.root = Path(crl_root[0])
        crls = ThreadingHTTPServer((address, 80), _CrlHandler)
        threading.Thread(target=crls.serve_forever, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
