"""Where the hardened files live, under a root directory (`/` on a real server, a temp dir in tests).

Generated configuration refers to other generated files by these same paths, so that a Postfix
or milter started on a root's configuration (the lab does this) finds its keys and tables there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

OPENDKIM_PORT = 8891  # Debian's conventional ports for the two milters
OPENDMARC_PORT = 8893
OPENDKIM_SOCKET = f"inet:{OPENDKIM_PORT}@127.0.0.1"
OPENDMARC_SOCKET = f"inet:{OPENDMARC_PORT}@127.0.0.1"
OPENDKIM_MILTER = f"inet:127.0.0.1:{OPENDKIM_PORT}"
OPENDMARC_MILTER = f"inet:127.0.0.1:{OPENDMARC_PORT}"


_SYSTEM_ROOT = PurePosixPath("/")


@dataclass(frozen=True, slots=True)
class Layout:
    """Absolute paths of every file `mecsa harden` manages, under `root`."""

    root: PurePosixPath = _SYSTEM_ROOT

    @classmethod
    def under(cls, root: str | Path) -> Layout:
        return cls(PurePosixPath(Path(root).resolve()))

    @property
    def is_system(self) -> bool:
        """True for the real system root, where Postfix's own directories are left as they are."""
        return self.root == _SYSTEM_ROOT

    def path(self, absolute: str) -> PurePosixPath:
        return self.root / absolute.lstrip("/")

    @property
    def postfix_dir(self) -> PurePosixPath:
        return self.path("/etc/postfix")

    @property
    def main_cf(self) -> PurePosixPath:
        return self.postfix_dir / "main.cf"

    @property
    def master_cf(self) -> PurePosixPath:
        return self.postfix_dir / "master.cf"

    @property
    def aliases(self) -> PurePosixPath:
        return self.path("/etc/aliases")

    @property
    def queue_directory(self) -> PurePosixPath:
        return self.path("/var/spool/postfix")

    @property
    def data_directory(self) -> PurePosixPath:
        return self.path("/var/lib/postfix")

    @property
    def opendkim_conf(self) -> PurePosixPath:
        return self.path("/etc/opendkim.conf")

    @property
    def opendkim_dir(self) -> PurePosixPath:
        return self.path("/etc/opendkim")

    @property
    def opendkim_keys(self) -> PurePosixPath:
        return self.opendkim_dir / "keys"

    def dkim_key(self, domain: str, selector: str) -> PurePosixPath:
        return self.opendkim_keys / domain / f"{selector}.private"

    @property
    def opendkim_default(self) -> PurePosixPath:
        return self.path("/etc/default/opendkim")

    @property
    def opendmarc_conf(self) -> PurePosixPath:
        return self.path("/etc/opendmarc.conf")

    @property
    def opendmarc_ignore_hosts(self) -> PurePosixPath:
        return self.path("/etc/opendmarc/ignore.hosts")

    @property
    def opendmarc_default(self) -> PurePosixPath:
        return self.path("/etc/default/opendmarc")

    @property
    def policyd_spf_conf(self) -> PurePosixPath:
        return self.path("/etc/postfix-policyd-spf-python/policyd-spf.conf")

    def mta_sts_webroot(self, domain: str) -> PurePosixPath:
        """The web root whose `.well-known/mta-sts.txt` is `domain`'s MTA-STS policy."""
        return self.path(f"/var/www/mta-sts/{domain}")

    def nginx_site(self, domain: str) -> PurePosixPath:
        return self.path(f"/etc/nginx/sites-available/mta-sts.{domain}.conf")

    @property
    def knot_conf(self) -> PurePosixPath:
        return self.path("/etc/knot/knot.conf")

    @property
    def knot_zones(self) -> PurePosixPath:
        """The unsigned zone files `mecsa harden zone` writes (Knot only reads them)."""
        return self.path("/etc/knot/zones")

    @property
    def knot_storage(self) -> PurePosixPath:
        """Knot's journal, timers and key database (keys/)."""
        return self.path("/var/lib/knot")

    @property
    def knot_rundir(self) -> PurePosixPath:
        return self.path("/run/knot")

    def tls_deployed(self, mx_host: str) -> PurePosixPath:
        """The key+chain copy Postfix serves when the Certbot deploy hook guards renewals."""
        return self.path(f"/etc/postfix/tls/{mx_host}.pem")

    def certbot_hook(self, mx_host: str) -> PurePosixPath:
        return self.path(f"/etc/letsencrypt/renewal-hooks/deploy/mecsa-dane-{mx_host}")

    @property
    def unbound_conf(self) -> PurePosixPath:
        return self.path("/etc/unbound/unbound.conf.d/mecsa-dane.conf")
