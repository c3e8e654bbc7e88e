"""Postfix: the main.cf parameters and master.cf services of the hardened setup.

Pure: settings (and the existing values they extend) in, text out. Three lists are *extended*,
never replaced, because they may hold other people's entries: the milter lists (the widely
copied guide's `postconf -e smtpd_milters=...` silently drops OpenDKIM), mydestination, and
smtpd_recipient_restrictions. Extending is idempotent: an entry already there is not added again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mecsa.harden.layout import OPENDKIM_MILTER, OPENDMARC_MILTER, Layout
from mecsa.harden.postfix_lists import expand, extend_milters, milter_socket, parse_items
from mecsa.harden.settings import HardenSettings

HEADER = "# --- settings managed by `mecsa harden` (re-run it rather than editing these) ---"
POLICY_SERVICE = "check_policy_service unix:private/policy-spf"
POLICY_SPF_BINARY = "/usr/bin/policyd-spf"
POLICY_SPF_USER = "policyd-spf"
WEAK_CIPHER_EXCLUSIONS = "aNULL, eNULL, EXPORT, DES, 3DES, RC4, MD5"
_LOOPBACK_NETWORKS = ("127.0.0.0/8", "[::ffff:127.0.0.0]/104", "[::1]/128")
_RELAY_GUARD = "reject_unauth_destination"
OUR_MILTERS = (OPENDKIM_MILTER, OPENDMARC_MILTER)  # DKIM signs/verifies first, then DMARC reads its result
MILTER_LISTS = ("smtpd_milters", "non_smtpd_milters")
# postconf(5), smtpd_tls_chain_files: when it is set, these are ignored, and Postfix says so on
# every TLS handshake ("legacy parameters will be ignored").
LEGACY_TLS_FILES = (
    "smtpd_tls_cert_file",
    "smtpd_tls_key_file",
    "smtpd_tls_dcert_file",
    "smtpd_tls_dkey_file",
    "smtpd_tls_eccert_file",
    "smtpd_tls_eckey_file",
)


def split_list(value: str) -> list[str]:
    """A Postfix list value as items (commas and whitespace both separate)."""
    return [item for item in re.split(r"[\s,]+", value.strip()) if item]


def _postfix_network(cidr: str) -> str:
    if ":" not in cidr:
        return cidr
    address, _, prefix = cidr.partition("/")
    return f"[{address}]/{prefix}"


def extend_list(existing: str, additions: tuple[str, ...]) -> str:
    """`existing` with `additions` appended in order, skipping those already present."""
    items = split_list(existing)
    items.extend(a for a in additions if a not in items)
    return ", ".join(items)


def _split_restrictions(value: str) -> list[str]:
    # restrictions may take arguments (check_policy_service unix:private/x): keep them with their verb
    items: list[str] = []
    for token in split_list(value):
        if items and items[-1].split()[0] in _TAKES_ARGUMENT and len(items[-1].split()) == 1:
            items[-1] += f" {token}"
        else:
            items.append(token)
    return items


_TAKES_ARGUMENT = frozenset(
    {
        "check_policy_service",
        "check_client_access",
        "check_sender_access",
        "check_recipient_access",
        "check_helo_access",
        "reject_rbl_client",
        "reject_rhsbl_sender",
        "reject_rhsbl_client",
        "reject_rhsbl_helo",
        "reject_rhsbl_recipient",
        "permit_dnswl_client",
        "check_client_a_access",
        "check_reverse_client_hostname_access",
    }
)


def recipient_restrictions(existing: str) -> str:
    """Insert the SPF policy check right after `reject_unauth_destination`.

    After, because the relay guard must run first: a policy service that answers `OK` or `DUNNO`
    before it could otherwise open the relay. When the guard is missing, it is added with the
    check, after the leading `permit_mynetworks`/`permit_sasl_authenticated` so that trusted
    clients may still relay.
    """
    items = _split_restrictions(existing)
    if POLICY_SERVICE in items:
        return ", ".join(items)
    if _RELAY_GUARD in items:
        at = items.index(_RELAY_GUARD) + 1
        items[at:at] = [POLICY_SERVICE]
    else:
        at = 0
        while at < len(items) and items[at] in ("permit_mynetworks", "permit_sasl_authenticated"):
            at += 1
        items[at:at] = [_RELAY_GUARD, POLICY_SERVICE]
    if not existing.strip():
        items.insert(0, "permit_mynetworks")
    return ", ".join(items)


def main_cf_settings(settings: HardenSettings, layout: Layout, existing: Mapping[str, str]) -> dict[str, str]:
    """The main.cf parameters to set, in order, given the `existing` effective values."""
    # with the Certbot hook, Postfix serves the copy the hook replaces only when DANE stays valid
    chain = (
        str(layout.tls_deployed(settings.mx_host))
        if settings.certbot_hook
        else f"{settings.key}, {settings.cert}"
    )
    wanted: dict[str, str] = {}
    if not layout.is_system:
        # a configuration under another root gets its own queue and data, as a separate instance
        wanted["queue_directory"] = str(layout.queue_directory)
        wanted["data_directory"] = str(layout.data_directory)
    smtpd_milters = extend_milters(existing.get("smtpd_milters", ""), OUR_MILTERS, existing)
    # `non_smtpd_milters = $smtpd_milters` must see smtpd_milters as it will be, ours included
    after = {**existing, "smtpd_milters": smtpd_milters}
    wanted |= {
        "myhostname": settings.mx_host,
        "mydomain": settings.domain,
        "mydestination": extend_list(
            existing.get("mydestination", "$myhostname, localhost.$mydomain, localhost"),
            settings.domains,
        ),
        "mynetworks": " ".join((*_LOOPBACK_NETWORKS, *(_postfix_network(n) for n in settings.mynetworks))),
        "alias_maps": f"hash:{layout.aliases}",
        "alias_database": f"hash:{layout.aliases}",
        "home_mailbox": "Maildir/",
        # inbound: opportunistic STARTTLS, never below TLS 1.2
        "smtpd_tls_security_level": "may",
        "smtpd_tls_chain_files": chain,
        "smtpd_tls_protocols": ">=TLSv1.2",
        "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
        # With TLS 1.0/1.1 refused every client can do AES-GCM, so dropping the weak and the
        # unauthenticated suites costs no interoperability (and mecsa's own tls.weak_ciphers stays quiet).
        "smtpd_tls_exclude_ciphers": WEAK_CIPHER_EXCLUSIONS,
        "smtpd_tls_received_header": "yes",
        "smtpd_tls_session_cache_database": "btree:${data_directory}/smtpd_scache",
        "smtpd_tls_loglevel": "1",
        # outbound: DANE where the receiver publishes TLSA, opportunistic TLS elsewhere
        "smtp_tls_security_level": "dane",
        "smtp_dns_support_level": "dnssec",
        "smtp_tls_mandatory_protocols": ">=TLSv1.2",
        "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache",
        "smtp_tls_loglevel": "1",
        "smtpd_milters": smtpd_milters,
        "non_smtpd_milters": extend_milters(existing.get("non_smtpd_milters", ""), OUR_MILTERS, after),
        "smtpd_recipient_restrictions": recipient_restrictions(
            existing.get("smtpd_recipient_restrictions", "")
        ),
        "policy-spf_time_limit": "3600s",
    }
    return wanted


def main_cf_removals(existing: Mapping[str, str]) -> dict[str, str]:
    """The parameters to delete (name -> value): the legacy TLS files `smtpd_tls_chain_files` replaces.

    Debian's main.cf sets the snakeoil pair; left beside the chain files, Postfix ignores it and
    warns on every connection.
    """
    return {name: existing[name] for name in LEGACY_TLS_FILES if existing.get(name, "").strip()}


def policy_spf_service(layout: Layout) -> str:
    """The master.cf entry running policyd-spf on demand (unprivileged, outside the chroot)."""
    return (
        "policy-spf  unix  -       n       n       -       0       spawn\n"
        f"  user={POLICY_SPF_USER} argv={POLICY_SPF_BINARY} {layout.policyd_spf_conf}\n"
    )


def master_cf_services(layout: Layout) -> dict[str, str]:
    """The master.cf services to add or replace, keyed by `service/type`."""
    return {"policy-spf/unix": policy_spf_service(layout)}


def aliases(settings: HardenSettings) -> dict[str, str]:
    """The aliases to set: who reads the postmaster's and the DMARC reports' mail."""
    return {"postmaster": settings.postmaster, "dmarc_reports": settings.dmarc_reports_to}


def milter_warnings(values: Mapping[str, str]) -> list[str]:
    """Warn about milter entries that would sign or judge twice, in the lists as they will be.

    References (`non_smtpd_milters = $smtpd_milters`) are expanded first, so a milter reached
    both directly and through a reference counts twice, as it does in Postfix.
    """
    ours = set(OUR_MILTERS)
    warnings = []
    for name in MILTER_LISTS:
        items = parse_items(values.get(name, ""))
        through = "" if all(not i.startswith("$") for i in items) else " (references expanded)"
        seen: set[str] = set()
        for item in expand(items, values):
            socket = milter_socket(item)
            if socket in seen:
                warnings.append(f"{name}{through} lists {socket} twice: each message would pass it twice")
                continue
            seen.add(socket)
            looks_like_ours = (
                "opendkim" in socket or "opendmarc" in socket or socket.endswith(("8891", "8893"))
            )
            if socket not in ours and looks_like_ours:
                warnings.append(
                    f"{name}{through} also lists {socket}:"
                    " remove it if it is an old OpenDKIM/OpenDMARC milter"
                )
    return warnings
