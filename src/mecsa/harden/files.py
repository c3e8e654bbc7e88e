"""Every file of the hardened setup, as desired content: the generators put together. Pure.

Files that hold other people's settings (main.cf, master.cf, aliases, /etc/default/*) are merged
into their current text; files that are wholly ours (the milter and policy configurations,
the tables, the keys) are generated whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mecsa.harden import certbot, mtasts_web, opendkim, opendmarc, policyd_spf, postfix, unbound
from mecsa.harden.conffile import main_cf_values, merge_aliases, merge_main_cf, merge_master_cf
from mecsa.harden.layout import Layout
from mecsa.harden.settings import HardenSettings


@dataclass(frozen=True, slots=True)
class DesiredFile:
    """A file's wanted content, mode and owner (a user name; None: leave as it is, or root's)."""

    path: str
    content: bytes
    mode: int = 0o644
    owner: str | None = None
    secret: bool = False


class MissingFileError(ValueError):
    """A file that must exist before hardening (master.cf: Postfix is not installed there)."""


def desired_files(
    settings: HardenSettings,
    layout: Layout,
    read: Callable[[str], str | None],
    new_dkim_keys: Mapping[tuple[str, str], opendkim.DkimPrivateKey],
) -> list[DesiredFile]:
    """The files to have under `layout`, given `read(path)` of the current text (None when absent).

    `new_dkim_keys` ((domain, selector) -> key) are the keys to write; existing key files are
    left alone. The mode is that of a new file: apply keeps the mode and owner of an existing one.
    """
    master = read(str(layout.master_cf))
    if master is None:
        raise MissingFileError(f"{layout.master_cf} does not exist: install Postfix (or seed the root) first")

    def current(path: object) -> str:
        return read(str(path)) or ""

    main = current(layout.main_cf)
    existing = main_cf_values(main)
    wanted = postfix.main_cf_settings(settings, layout, existing)
    removed = postfix.main_cf_removals(existing)
    tables = layout.opendkim_dir
    texts: list[tuple[str, str]] = [
        (str(layout.main_cf), merge_main_cf(main, wanted, postfix.HEADER, removed)),
        (str(layout.master_cf), merge_master_cf(master, postfix.master_cf_services(layout))),
        (str(layout.aliases), merge_aliases(current(layout.aliases), postfix.aliases(settings))),
        (str(layout.opendkim_conf), opendkim.opendkim_conf(settings, layout, current(layout.opendkim_conf))),
        (str(tables / "KeyTable"), opendkim.key_table(settings, layout, current(tables / "KeyTable"))),
        (str(tables / "SigningTable"), opendkim.signing_table(settings, current(tables / "SigningTable"))),
        (str(tables / "TrustedHosts"), opendkim.trusted_hosts(settings, current(tables / "TrustedHosts"))),
        (str(layout.opendkim_default), opendkim.default_file(current(layout.opendkim_default))),
        (
            str(layout.opendmarc_conf),
            opendmarc.opendmarc_conf(settings, layout, current(layout.opendmarc_conf)),
        ),
        (
            str(layout.opendmarc_ignore_hosts),
            opendmarc.ignore_hosts(settings, current(layout.opendmarc_ignore_hosts)),
        ),
        (str(layout.opendmarc_default), opendmarc.default_file(current(layout.opendmarc_default))),
        (str(layout.policyd_spf_conf), policyd_spf.policyd_spf_conf(settings)),
        *unbound.files(settings, layout).items(),
        *mtasts_web.files(settings, layout).items(),
    ]
    out = [DesiredFile(path, text.encode("utf-8")) for path, text in texts]
    if settings.certbot_hook:
        hook = str(layout.certbot_hook(settings.mx_host))
        out.append(
            DesiredFile(hook, certbot.hook_script(settings, layout).encode("utf-8"), certbot.HOOK_MODE)
        )
    out.extend(
        DesiredFile(path, pem, 0o600, opendkim.USER, secret=True)
        for path, pem in opendkim.key_files(layout, new_dkim_keys).items()
    )
    return out
