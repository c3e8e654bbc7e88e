"""Half of a delaying link between two network namespaces: a TAP device relayed over a socket.

This kernel has no netem (`tc qdisc ... netem` fails), so round-trip delay is made in user space:
each namespace gets a TAP device, and one relay per side copies Ethernet frames between its TAP
and a SOCK_SEQPACKET socket pair that joins the two sides. Each side holds the frames it reads from
its TAP for `--delay` seconds before passing them on, so a round trip costs twice that.

    ip netns exec NS python -m mecsa.lab.delay --fd 3 --name dly0 --address 10.77.0.1/24 --delay 0.025

Instead of an address, `--bridge BR` makes the TAP a port of bridge BR in its namespace: a client
namespace joined that way reaches every node on the bridge through the delay (bench_cli.py).

It imports nothing of the lab (a program the runner starts) and ends when the socket closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import socket
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65535


def open_tap(name: str) -> int:
    """A TAP device `name` in this process's network namespace; its file descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


async def relay(tap: int, peer: socket.socket, delay: float) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    peer.setblocking(False)

    def from_tap() -> None:
        try:
            frame = os.read(tap, MAX_FRAME)
        except BlockingIOError:
            return
        loop.call_later(delay, _send, frame)

    def _send(frame: bytes) -> None:
        with contextlib.suppress(OSError):  # a lost frame, as on a real link
            peer.send(frame)

    def from_peer() -> None:
        try:
            frame = peer.recv(MAX_FRAME)
        except BlockingIOError:
            return
        except OSError:
            frame = b""
        if not frame:
            if not done.done():
                done.set_result(None)
            return
        with contextlib.suppress(OSError):
            os.write(tap, frame)

    loop.add_reader(tap, from_tap)
    loop.add_reader(peer.fileno(), from_peer)
    await done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fd", type=int, required=True, help="this side of the socket pair")
    parser.add_argument("--name", required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--address", help="ADDRESS/PREFIX for the TAP device")
    where.add_argument("--bridge", help="make the TAP device a port of this bridge (no address)")
    parser.add_argument("--delay", type=float, required=True, help="seconds each frame is held")
    args = parser.parse_args(argv)
    tap = open_tap(args.name)
    if args.address:
        subprocess.run(["ip", "addr", "add", args.address, "dev", args.name], check=True)
        subprocess.run(["ip", "link", "set", args.name, "up"], check=True)
    else:
        subprocess.run(["ip", "link", "set", args.name, "master", args.bridge, "up"], check=True)
    peer = socket.socket(fileno=args.fd)
    print("ready", flush=True)
    asyncio.run(relay(tap, peer, args.delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
