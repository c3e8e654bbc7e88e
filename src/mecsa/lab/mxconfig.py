"""Configure one lab MX host with `mecsa harden apply` (the code users run), then adapt it to the lab.

Steps, for the root `<lab>/hosts/<mx host>`:

1. seed: a master.cf with chroot `n` (a chrooted daemon would not see the lab's resolv.conf),
   a main.cf with what any lab instance needs (`postfix.lab_settings`), and the domain's DKIM
   key (one key per domain, shared by its MX hosts; harden keeps an existing key);
2. `harden.apply`: make_plan + apply_plan, including its configuration checks;
3. lab-only edits: Maildir delivery for the domain, milters resolving through the lab's resolver
   and trust anchor with their pid files under the root, and the scenario's deviations (no
   STARTTLS, old TLS versions, a bad certificate), which are by design not what harden writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mecsa.lab import postfix
from mecsa.lab.ca import IssuedCert
from mecsa.lab.plan import RESOLVER_IP, LabMxHost, LabPlan, MailDomain
from mecsa.lab.state import LabError

_AFTER_APPLY = ("inet_interfaces", "smtp_bind_address")


class MxConfigError(LabError):
    """harden refused the settings or its checks failed."""


def configure_mx(
    plan: LabPlan,
    domain: MailDomain,
    host: LabMxHost,
    dkim_pem: bytes,
    valid: IssuedCert,
    served: IssuedCert,
    stub_conf: Path,
) -> Path:
    """Seed, harden and adapt the host's root; return its Postfix configuration directory."""
    from mecsa.harden.apply import ApplyError, apply_plan, make_plan, run_command
    from mecsa.harden.layout import Layout
    from mecsa.harden.settings import SettingsError, settings_from_mapping

    root = plan.host_dir(host.hostname)
    layout = Layout.under(root)
    key_file, chain_file = valid.write(root / "tls")
    served_key, served_chain = (
        served.write(root / "tls-served") if served is not valid else (key_file, chain_file)
    )
    config_dir = Path(layout.postfix_dir)
    lab = postfix.lab_settings(
        hostname=host.hostname,
        domain=domain.name,
        address=host.address,
        root=root,
        log_file=plan.logs / f"{host.hostname}.postfix.log",
    )
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "master.cf").write_text(postfix.MASTER_CF_BASE)
    # the host's address exists only in its namespace, where harden's `postfix check` does not run:
    # it is set after apply
    seeded = {k: v for k, v in lab.items() if k not in _AFTER_APPLY}
    (config_dir / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in seeded.items()))
    dkim_path = Path(layout.dkim_key(domain.name, domain.scenario.dkim.selector))
    dkim_path.parent.mkdir(parents=True, exist_ok=True)
    dkim_path.write_bytes(dkim_pem)
    dkim_path.chmod(0o600)
    raw: dict[str, Any] = {
        "domain": domain.name,
        "mx_host": host.hostname,
        "ipv4": [host.address],
        "cert": str(chain_file),
        "key": str(key_file),
        "postmaster": "root",
        "selector": domain.scenario.dkim.selector,
        **dict(domain.scenario.hardening),
    }
    try:
        settings = settings_from_mapping(raw)
        apply_plan(make_plan(settings, layout), runner=lambda argv: _aged(config_dir, run_command, argv))
    except (SettingsError, ApplyError) as exc:
        raise MxConfigError(f"mecsa harden apply for {host.hostname}: {exc}") from exc
    for run_dir in ("run",):
        (root / run_dir).mkdir(mode=0o1777, exist_ok=True)
        (root / run_dir).chmod(0o1777)  # the milters write their pid files after dropping privileges
    edit_conf(
        Path(layout.opendkim_conf),
        {
            "PidFile": str(root / "run" / "opendkim.pid"),
            "TrustAnchorFile": str(plan.path("unbound", "root.ds")),
            "Nameservers": RESOLVER_IP,
            "ResolverConfiguration": str(stub_conf),
        },
    )
    edit_conf(Path(layout.opendmarc_conf), {"PidFile": str(root / "run" / "opendmarc.pid")})
    overrides = {
        # deliver the domain's mail into one Maildir (the lab has no user accounts)
        "mydestination": "$myhostname, localhost",
        **{k: lab[k] for k in (*_AFTER_APPLY, "maillog_file", "maillog_file_prefixes")},
        **postfix.deviations(host.spec, served_key, served_chain),
    }
    postfix.postconf_set(config_dir, overrides)
    postfix.make_instance_dirs(lab)
    return config_dir


def _aged(
    config_dir: Path, run: Callable[[Sequence[str]], tuple[int, str]], argv: Sequence[str]
) -> tuple[int, str]:
    """Run one of harden's checks on files made to look a minute old.

    Postfix commands wait until main.cf/master.cf are about 2 s old; files just written would
    cost every lab MX that wait, for no gain in a configuration nobody else is editing.
    """
    postfix.backdate(config_dir)
    return run(argv)


def edit_conf(path: Path, values: Mapping[str, str]) -> None:
    """Set `Key value` lines in an OpenDKIM/OpenDMARC-style file: replace the key's line, or append it."""
    lines = path.read_text().splitlines()
    for key, value in values.items():
        pattern = re.compile(rf"^{re.escape(key)}\s")
        replaced = False
        for i, line in enumerate(lines):
            if pattern.match(line):
                lines[i] = f"{key}\t{value}"
                replaced = True
        if not replaced:
            lines.append(f"{key}\t{value}")
    path.write_text("\n".join(lines) + "\n")
