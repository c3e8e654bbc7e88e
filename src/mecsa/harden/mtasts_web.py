"""Serving the MTA-STS policy: the policy file and a ready nginx server block for `mta-sts.<domain>`. Pure.

RFC 8461 §3.3: the policy is fetched from `https://mta-sts.<domain>/.well-known/mta-sts.txt`,
over HTTPS with a certificate valid for that name, served as `text/plain`; senders do not
follow redirects, so the block answers the path itself and nothing else.
"""

from __future__ import annotations

from mecsa.harden.layout import Layout
from mecsa.harden.records import mta_sts_records
from mecsa.harden.settings import HardenSettings


def policy(settings: HardenSettings, domain: str) -> str:
    """The policy file of `domain` (CRLF lines), the same text the TXT record's id is a hash of."""
    return mta_sts_records(domain, (settings.mx_host,), "enforce", settings.mta_sts_max_age).policy


def nginx_server(domain: str, layout: Layout) -> str:
    """An nginx server block (sites-available) serving only the policy of `domain`."""
    host = f"mta-sts.{domain}"
    webroot = layout.mta_sts_webroot(domain)
    return (
        f"# Written by `mecsa harden`: serves the MTA-STS policy of {domain} (RFC 8461 §3.3).\n"
        f"# Enable: ln -s {layout.nginx_site(domain)} /etc/nginx/sites-enabled/\n"
        "#         nginx -t && nginx -s reload\n"
        f"# It needs a certificate for {host}, e.g. `certbot certonly --nginx -d {host}`.\n"
        "server {\n"
        "    listen 443 ssl;\n"
        "    listen [::]:443 ssl;\n"
        f"    server_name {host};\n"
        f"    ssl_certificate /etc/letsencrypt/live/{host}/fullchain.pem;\n"
        f"    ssl_certificate_key /etc/letsencrypt/live/{host}/privkey.pem;\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "\n"
        "    location = /.well-known/mta-sts.txt {\n"
        f"        root {webroot};\n"
        "        # RFC 8461 §3.3: Content-Type text/plain, whatever mime.types says\n"
        "        types { }\n"
        "        default_type text/plain;\n"
        "    }\n"
        "    # senders do not follow redirects: every other path is simply not there\n"
        "    location / {\n"
        "        return 404;\n"
        "    }\n"
        "}\n"
    )


def files(settings: HardenSettings, layout: Layout) -> dict[str, str]:
    """Policy file and nginx block per domain (path -> text); none when `mta_sts_web` is off."""
    if not settings.mta_sts_web:
        return {}
    out: dict[str, str] = {}
    for domain in settings.domains:
        out[str(layout.mta_sts_webroot(domain) / ".well-known" / "mta-sts.txt")] = policy(settings, domain)
        out[str(layout.nginx_site(domain))] = nginx_server(domain, layout)
    return out
