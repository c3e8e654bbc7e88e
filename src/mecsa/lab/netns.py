"""Network namespaces, the lab's bridge, and running commands inside a namespace.

Everything is done with iproute2 (`ip netns`, `ip -n NS link ...`). Veth pairs are created
directly inside the lab's namespaces, so no interface ever appears in the host's namespace.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from mecsa.lab.state import LabError

NETNS_DIR = Path("/run/netns")
BRIDGE = "br0"
PREFIX_LEN = 24

# Device nodes the daemons need once /dev is replaced by a private tmpfs (see `devlog_script`).
_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9))


class NetnsError(LabError):
    """An iproute2 command failed."""


def ip(*args: str) -> None:
    """Run one `ip` command; raise `NetnsError` with its stderr when it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def list_namespaces(prefix: str) -> list[str]:
    """The existing namespaces whose name starts with `prefix`."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def create_namespace(name: str) -> None:
    """Create a namespace with its loopback up."""
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def create_bridge(namespace: str) -> None:
    """Create the lab's bridge inside `namespace` (which holds no address itself)."""
    ip("-n", namespace, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", namespace, "link", "set", BRIDGE, "up")


def attach(bridge_ns: str, port: str, node_ns: str, addresses: Sequence[str]) -> None:
    """Connect `node_ns` to the bridge with a veth pair and give its `eth0` the addresses.

    No route other than the connected /24 is added: without a default route nothing can leave.
    """
    ip("-n", bridge_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", node_ns)
    ip("-n", bridge_ns, "link", "set", port, "master", BRIDGE, "up")
    for address in addresses:
        ip("-n", node_ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0")
    ip("-n", node_ns, "link", "set", "eth0", "up")


def delete_namespace(name: str) -> None:
    """Delete a namespace (its veth ends go with it); a missing one is not an error."""
    if (NETNS_DIR / name).exists():
        ip("netns", "del", name)


def namespace_pids(name: str) -> list[int]:
    """The live processes whose network namespace is `name` (as `ip netns pids`, without a fork)."""
    try:
        target = (NETNS_DIR / name).stat()
    except FileNotFoundError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            st = (entry / "ns" / "net").stat()
        except OSError:  # gone, or a zombie whose namespace links are unreadable
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino) and is_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def is_alive(pid: int) -> bool:
    """True when `pid` runs; a zombie counts as exited (orphans are reaped late on some hosts)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("State:"):
            return "Z" not in line.split()[1] and "X" not in line.split()[1]
    return False


def kill_all(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """SIGKILL the processes and wait until they are gone; return those still alive after `timeout`.

    SIGKILL, not SIGTERM: the lab's state is disposable and libmilter daemons take up to 5 s to
    honour SIGTERM.
    """
    wanted = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in wanted:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    alive = [p for p in wanted if is_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.01)
        alive = [p for p in alive if is_alive(p)]
    return alive


def devlog_script(socket: Path) -> str:
    """Shell lines that give a process a private /dev whose `log` is the lab's syslog sink.

    Milters log only through syslog(3), i.e. to /dev/log. Creating /dev/log on the host would
    change the host, so inside the process's private mount namespace a tmpfs replaces /dev,
    with the few device nodes daemons use and /dev/log as a symlink to the sink's socket.
    """
    lines = ["mount -t tmpfs -o mode=755 lab-dev /dev"]
    lines += [f"mknod -m 666 /dev/{name} c {major} {minor}" for name, major, minor in _DEVICES]
    lines += [
        "mkdir -m 1777 /dev/shm",
        "ln -s /proc/self/fd /dev/fd",
        "ln -s /proc/self/fd/0 /dev/stdin",
        "ln -s /proc/self/fd/1 /dev/stdout",
        "ln -s /proc/self/fd/2 /dev/stderr",
        f"ln -s {shlex.quote(str(socket))} /dev/log",
    ]
    return "\n".join(lines)


def exec_argv(
    namespace: str, argv: Sequence[str], *, resolv_conf: Path, devlog: Path | None = None
) -> list[str]:
    """The command line running `argv` in `namespace` with the lab's resolv.conf (and syslog sink).

    `ip netns exec` gives the command a private mount namespace whose mounts do not propagate
    back, so the bind mount over /etc/resolv.conf is seen only there: the host's /etc is untouched.
    The shell `exec`s the command, so the pid of the returned command line is the command's pid.
    """
    script = [f"mount --bind {shlex.quote(str(resolv_conf))} /etc/resolv.conf"]
    if devlog is not None:
        script.append(devlog_script(devlog))
    script.append('exec "$@"')
    return ["ip", "netns", "exec", namespace, "sh", "-ec", "\n".join(script), "sh", *argv]
