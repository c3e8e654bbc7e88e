"""`lab up`, `lab down`, `lab status` and running commands inside the lab.

`up` records every namespace and daemon in the state file as soon as it exists, and on any
failure tears down what it made. `down` kills every process living in one of the lab's
namespaces (whatever started it), deletes the namespaces and removes the lab directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mecsa.lab import netns
from mecsa.lab.build import Built, build
from mecsa.lab.daemon import Daemon
from mecsa.lab.plan import BRIDGE_NODE, DEFAULT_DIR, RESOLVER_IP, LabPlan, namespace_prefix, plan_lab
from mecsa.lab.scenario import Scenario, load_scenario, shipped_scenarios
from mecsa.lab.state import MARKER, STATE_FILE, LabError, LabState

READY_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class UpResult:
    directory: Path
    seconds: float
    domains: tuple[str, ...]
    daemons: int


@dataclass(frozen=True, slots=True)
class DownResult:
    namespaces: tuple[str, ...]
    killed: int
    seconds: float
    leftovers: tuple[str, ...]  # what could not be removed (empty when all went well)


def require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionError("the lab needs root: it creates network namespaces and runs mail servers")


def default_scenarios() -> list[Path]:
    return [p for p in shipped_scenarios() if p.stem == "top-score"]


def up(scenario_files: Sequence[Path], directory: Path = DEFAULT_DIR, *, mailmode: bool = False) -> UpResult:
    """Bring the lab up with the scenarios (default: the shipped top-score one); `mailmode` adds
    the mail-mode receiver and its extra senders (see `mecsa.lab.receiver`)."""
    require_root()
    started = time.monotonic()
    directory = directory.resolve()
    scenarios: list[Scenario] = [load_scenario(p) for p in (scenario_files or default_scenarios())]
    plan = plan_lab(scenarios, directory, mailmode=mailmode)
    if (directory / STATE_FILE).exists() or netns.list_namespaces(plan.prefix + "-"):
        raise LabError(f"a lab is already up in {directory}: run `mecsa lab down` first")
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise LabError(f"{directory} exists and is not a lab directory: choose another --dir")
    if directory.exists():
        shutil.rmtree(directory)
    state = LabState.create(directory, plan.prefix)
    try:
        built = build(plan)
        state.set("domains", built.domains)
        state.set("zones", list(built.zones))
        if built.mailmode is not None:
            state.set("mailmode", built.mailmode)
        _network(plan, state)
        _start(plan, state, built)
    except BaseException:
        down(directory, keep_files=True)
        raise
    seconds = round(time.monotonic() - started, 2)
    state.set("resolver", RESOLVER_IP)
    state.set("ca_file", str(plan.path("ca", "ca.pem")))
    state.set("up_seconds", seconds)
    state.set("complete", True)
    return UpResult(directory, seconds, tuple(d.name for d in plan.domains), len(built.daemons) + 2)


def _network(plan: LabPlan, state: LabState) -> None:
    for node, _ in plan.nodes:
        state.add_namespace(plan.ns(node))
        netns.create_namespace(plan.ns(node))
    netns.create_bridge(plan.ns(BRIDGE_NODE))
    for index, (node, address) in enumerate(plan.nodes):
        if address is not None:
            netns.attach(plan.ns(BRIDGE_NODE), f"p{index}", plan.ns(node), [address])


def _start(plan: LabPlan, state: LabState, built: Built) -> None:
    logs = plan.logs
    sink = _launch(plan, state, built.logsink, logs)
    _wait_files([Path(a.split("=")[0]) for a in built.logsink.argv[3:]], sink)
    knotd = _launch(plan, state, built.knotd, logs)
    _wait_ready(plan, [(built.knotd, knotd)])
    _wait_zones(built.knot_conf, built.zones, knotd)
    launched = [(d, _launch(plan, state, d, logs)) for d in built.daemons]
    _wait_ready(plan, launched)


def _launch(plan: LabPlan, state: LabState, daemon: Daemon, logs: Path) -> subprocess.Popen[bytes]:
    argv = netns.exec_argv(
        plan.ns(daemon.node), daemon.argv, resolv_conf=plan.resolv_conf, devlog=daemon.devlog
    )
    with (logs / f"{daemon.name}.out").open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    state.add_daemon(daemon.name, daemon.node, proc.pid)
    return proc


def _wait_files(paths: list[Path], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(p.exists() for p in paths):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"the log sink did not start (exit {proc.poll()})")
        time.sleep(0.01)


def _wait_ready(plan: LabPlan, launched: list[tuple[Daemon, subprocess.Popen[bytes]]]) -> None:
    """Wait until every daemon's sockets listen; fail fast, naming the daemon and its log, if one dies."""
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(launched)
    while pending:
        still = []
        for daemon, proc in pending:
            code = proc.poll()
            if code is not None and (not daemon.forks or code != 0):
                raise LabError(
                    f"{daemon.name} exited with status {code}: see {plan.logs}/{daemon.name}.out"
                    + (f" and {plan.logs / daemon.devlog.stem}.syslog" if daemon.devlog else "")
                )
            if not all(listening(plan.ns(daemon.node), *sock) for sock in daemon.listens):
                still.append((daemon, proc))
        pending = still
        if pending and time.monotonic() > deadline:
            names = ", ".join(d.name for d, _ in pending)
            raise LabError(f"not listening after {READY_TIMEOUT:g} s: {names} (logs in {plan.logs})")
        if pending:
            time.sleep(0.02)


def _wait_zones(conf: Path, zones: Sequence[str], proc: subprocess.Popen[bytes]) -> None:
    """Wait until Knot has loaded (and signed) every zone: before that it would answer SERVFAIL."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        done = subprocess.run(
            ["knotc", "-c", str(conf), "zone-status"], capture_output=True, text=True, check=False
        )
        loaded = {
            line.split()[0].strip("[]")
            for line in done.stdout.splitlines()
            if line.startswith("[") and "serial: -" not in line and "serial:" in line
        }
        if done.returncode == 0 and set(zones) <= loaded:
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(
                f"Knot did not load every zone: {sorted(set(zones) - loaded)}; {done.stdout[-500:]}"
            )
        time.sleep(0.02)


def listening(namespace: str, proto: str, address: str, port: int) -> bool:
    """Whether a socket listens on address:port in `namespace` (read from /proc, no fork)."""
    pids = netns.namespace_pids(namespace)
    if not pids:
        return False
    if proto == "tcp6":
        # Only the any-address listener: what `openssl ocsp -port` opens (dual-stack [::]).
        want, any_address = f"{'0' * 32}:{port:04X}", f"{'0' * 32}:{port:04X}"
    else:
        want_addr = "".join(f"{int(o):02X}" for o in reversed(address.split(".")))
        want, any_address = f"{want_addr}:{port:04X}", f"00000000:{port:04X}"
    state = "07" if proto == "udp" else "0A"  # an unconnected UDP socket; TCP_LISTEN
    try:
        table = Path(f"/proc/{pids[0]}/net/{proto}").read_text()
    except OSError:
        return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        if fields[1] in (want, any_address) and fields[3] == state:
            return True
    return False


def down(directory: Path = DEFAULT_DIR, *, keep_files: bool = False) -> DownResult:
    """Remove the lab: kill every process in its namespaces, delete them, remove its directory."""
    require_root()
    started = time.monotonic()
    directory = directory.resolve()
    state = LabState.load(directory)
    prefix = state.prefix if state else namespace_prefix(directory)
    names = sorted(set(state.namespaces if state else []) | set(netns.list_namespaces(prefix + "-")))
    killed = 0
    leftovers: list[str] = []
    for _ in range(3):  # a daemon may fork while its siblings die: sweep until empty
        pids = [p for name in names for p in netns.namespace_pids(name)]
        if not pids:
            break
        killed += len(pids)
        netns.kill_all(pids)
    for name in names:
        alive = netns.namespace_pids(name)
        if alive:
            leftovers.append(f"{name}: processes {alive}")
            continue
        try:
            netns.delete_namespace(name)
        except netns.NetnsError as exc:
            leftovers.append(str(exc))
    if not keep_files and not leftovers and (directory / MARKER).exists():
        shutil.rmtree(directory, ignore_errors=True)
    elif state is not None and not leftovers:
        (directory / STATE_FILE).unlink(missing_ok=True)
    return DownResult(tuple(names), killed, round(time.monotonic() - started, 3), tuple(leftovers))


def load_state(directory: Path = DEFAULT_DIR) -> LabState:
    """The state of a lab that is up; `LabError` when none is."""
    state = LabState.load(directory.resolve())
    if state is None or not state.data.get("complete"):
        raise LabError(f"no lab is up in {directory} (run `mecsa lab up`)")
    return state


def run_in(
    state: LabState,
    node: str,
    argv: Sequence[str],
    *,
    capture: bool = False,
    input_text: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a node's namespace with the lab's resolv.conf; stdio inherited unless `capture`."""
    full = netns.exec_argv(state.ns(node), argv, resolv_conf=state.directory / "resolv.conf")
    return subprocess.run(
        full, capture_output=capture, text=True, input=input_text, timeout=timeout, check=False
    )


def status(directory: Path = DEFAULT_DIR) -> list[str]:
    """Lines describing the lab: namespaces, daemons (running or not), domains and their MX hosts."""
    state = LabState.load(directory.resolve())
    if state is None:
        return [f"no lab in {directory}"]
    lines = [
        f"lab {state.directory} (up in {state.data.get('up_seconds', '?')} s)"
        + ("" if state.data.get("complete") else " — INCOMPLETE: run `mecsa lab down`")
    ]
    existing = set(netns.list_namespaces(state.prefix + "-"))
    missing = [n for n in state.namespaces if n not in existing]
    lines.append(
        f"namespaces: {len(state.namespaces) - len(missing)}/{len(state.namespaces)} present"
        + (f" (missing: {', '.join(missing)})" if missing else "")
    )
    running = {n: set(netns.namespace_pids(n)) for n in existing}
    for daemon in state.data.get("daemons", []):
        ns = state.ns(daemon["node"])
        alive = bool(running.get(ns))
        if not daemon["name"].startswith("postfix@"):
            alive = daemon["pid"] in running.get(ns, set())
        lines.append(f"  {'up  ' if alive else 'DOWN'} {daemon['name']:<40} {ns}")
    lines.append(
        f"resolver: {state.data.get('resolver', RESOLVER_IP)}   CA: {state.data.get('ca_file', '-')}"
    )
    for domain, info in sorted(state.domains.items()):
        hosts = ", ".join(f"{h['hostname']} {h['address']}" for h in info["hosts"])
        lines.append(f"  {domain:<24} [{info['name']}] {hosts}")
    return lines
