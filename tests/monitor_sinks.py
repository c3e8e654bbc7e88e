"""Loopback receivers for the monitor's notifications: an SMTP sink that requires STARTTLS, a webhook.

In-process (unit tests): `with Sinks(directory) as sinks: ...`, then `sinks.mails()`, `sinks.posts()`.
As a script (the lab test runs it inside the lab's client namespace, whose loopback the monitor
sends to): `python -m tests.monitor_sinks DIR` writes DIR/ports.json once listening, then one file
per message received (DIR/mail-N.eml, DIR/post-N.json with the headers and the body), until killed.
Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import socket
import ssl
import sys
import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on loopback now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def make_tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (IP SAN) and its key; the certificate is its own CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitor sink")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sink-cert.pem", directory / "sink-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class _Handler:
    def __init__(self, sinks: Sinks) -> None:
        self.sinks = sinks

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        tls = session.ssl is not None
        self.sinks.record_mail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content), tls)
        return "250 2.0.0 OK"


class Sinks:
    def __init__(self, directory: Path, webhook_status: int = 200) -> None:
        self.directory = directory
        self.webhook_status = webhook_status
        self.cert, self.key = make_tls_files(directory)
        self._mails: list[dict[str, Any]] = []
        self._posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.smtp_port = 0
        self.webhook_port = 0

    # --- what arrived ---
    def record_mail(self, sender: str, recipients: list[str], content: bytes, tls: bool) -> None:
        with self._lock:
            self._mails.append({"from": sender, "to": recipients, "content": content, "tls": tls})
            (self.directory / f"mail-{len(self._mails)}.eml").write_bytes(content)

    def record_post(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self._posts.append({"path": path, "headers": headers, "body": body})
            (self.directory / f"post-{len(self._posts)}.json").write_text(
                json.dumps({"path": path, "headers": headers, "body": body.decode()})
            )

    def mails(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._mails)

    def posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._posts)

    # --- life cycle ---
    def __enter__(self) -> Sinks:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self._smtp = Controller(
            _Handler(self),
            hostname=LOOPBACK,
            port=free_port(),
            tls_context=context,
            require_starttls=True,
            ready_timeout=10,
        )
        self._smtp.start()
        self.smtp_port = self._smtp.port
        sinks = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                sinks.record_post(self.path, dict(self.headers.items()), body)
                self.send_response(sinks.webhook_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer((LOOPBACK, 0), Hook)
        self.webhook_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()


def parse_mail(content: bytes) -> EmailMessage:
    message = message_from_bytes(content, policy=default_policy)
    assert isinstance(message, EmailMessage)  # what the default policy builds
    return message


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Sinks(directory) as sinks:
        ports = {"smtp": sinks.smtp_port, "webhook": sinks.webhook_port, "ca_file": str(sinks.cert)}
        (directory / "ports.json.tmp").write_text(json.dumps(ports))
        (directory / "ports.json.tmp").rename(directory / "ports.json")
        stop.wait()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
