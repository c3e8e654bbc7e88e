"""A small IMAP4rev1 server over TLS on loopback, written for the intake test.

It knows just what a read-only fetcher needs: CAPABILITY, LOGIN, EXAMINE/SELECT, UID SEARCH,
UID FETCH (RFC822.SIZE, BODY.PEEK[]) and LOGOUT, and records every command it was sent.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Sequence


class ImapServer:
    def __init__(
        self,
        messages: Sequence[bytes],
        cert: str,
        key: str,
        user: str,
        password: str,
        *,
        mode: str = "implicit",  # "implicit" TLS, "starttls", or "plain" (no TLS offered at all)
    ) -> None:
        self.mode = mode
        self.messages = list(messages)
        self.user = user
        self.password = password
        self.commands: list[str] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # a closed listener does not wake accept(): poll a flag instead
        self._stop = threading.Event()
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ImapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            try:
                if self.mode == "implicit":
                    with self._context.wrap_socket(raw, server_side=True) as conn:
                        self._session(conn)
                else:
                    with raw:
                        self._session(raw)
            except (OSError, ssl.SSLError):
                continue

    def _session(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        conn.sendall(b"* OK test server ready\r\n")
        while True:
            line = reader.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            command, _, args = rest.partition(" ")
            self.commands.append(f"{command.upper()} {args}".strip())
            if command.upper() == "STARTTLS" and self.mode == "starttls":
                conn.sendall(tag.encode() + b" OK begin TLS\r\n")
                conn = self._context.wrap_socket(conn, server_side=True)
                reader = conn.makefile("rb")
                continue
            reply = self._reply(command.upper(), args)
            conn.sendall(
                b"".join(reply) + tag.encode() + b" OK done\r\n"
                if reply is not None
                else tag.encode() + b" NO refused\r\n"
            )
            if command.upper() == "LOGOUT":
                return

    def _reply(self, command: str, args: str) -> list[bytes] | None:
        if command == "CAPABILITY":
            starttls = b" STARTTLS" if self.mode == "starttls" else b""
            return [b"* CAPABILITY IMAP4rev1" + starttls + b"\r\n"]
        if command == "LOGIN":
            user, password = (a.strip('"') for a in args.split(" ", 1))
            return [] if (user, password) == (self.user, self.password) else None
        if command in ("EXAMINE", "SELECT"):
            return [f"* {len(self.messages)} EXISTS\r\n".encode(), b"* FLAGS (\\Seen)\r\n"]
        if command == "UID":
            sub, _, rest = args.partition(" ")
            if sub.upper() == "SEARCH":
                uids = " ".join(str(i + 1) for i in range(len(self.messages)))
                return [f"* SEARCH {uids}\r\n".encode()]
            if sub.upper() == "FETCH":
                uid_text, _, what = rest.partition(" ")
                uid = int(uid_text)
                data = self.messages[uid - 1]
                if "RFC822.SIZE" in what:
                    return [f"* {uid} FETCH (UID {uid} RFC822.SIZE {len(data)})\r\n".encode()]
                if re.search(r"BODY\.PEEK\[\]", what):
                    return [f"* {uid} FETCH (UID {uid} BODY[] {{{len(data)}}}\r\n".encode(), data, b")\r\n"]
            return None
        if command == "LOGOUT":
            return [b"* BYE\r\n"]
        if command == "NOOP":
            return []
        return None
