"""A syslog sink: receives datagrams on unix sockets and appends each to its log file.

Run as `python -m mecsa.lab.logsink SOCKET=LOGFILE ...`. The milters reach it through the
/dev/log symlink the lab gives them; there is no syslog daemon on the lab's hosts.
"""

from __future__ import annotations

import selectors
import socket
import sys
import time
from pathlib import Path

_MAX_DATAGRAM = 65536


def serve(pairs: list[tuple[Path, Path]]) -> None:
    """Bind every socket (world-writable: milters may drop privileges), then copy lines forever."""
    selector = selectors.DefaultSelector()
    for sock_path, log_path in pairs:
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        sock_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock_path.chmod(0o666)
        selector.register(sock, selectors.EVENT_READ, log_path.open("a", buffering=1))
    while True:
        for key, _ in selector.select():
            data = key.fileobj.recv(_MAX_DATAGRAM)  # type: ignore[union-attr]
            stamp = time.strftime("%H:%M:%S")
            key.data.write(f"{stamp} {data.decode(errors='replace').rstrip()}\n")


def main(argv: list[str]) -> None:
    pairs = []
    for arg in argv:
        sock, _, log = arg.partition("=")
        pairs.append((Path(sock), Path(log)))
    serve(pairs)


if __name__ == "__main__":
    main(sys.argv[1:])
