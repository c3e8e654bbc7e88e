"""The MTA-STS policy file and nginx block apply writes, served by a real nginx on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mecsa.harden.files import desired_files
from mecsa.harden.layout import Layout
from mecsa.harden.records import mta_sts_records

from .conftest import FIXTURES, make_settings, write_tls_pair

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    not Path(NGINX).exists() or os.geteuid() != 0, reason="needs nginx (nginx-light) and root"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_tree(root: Path) -> Layout:
    layout = Layout.under(root)
    existing = {str(layout.master_cf): (FIXTURES / "debian-master.cf").read_text()}
    for f in desired_files(make_settings(domains=["second.test"]), layout, existing.get, {}):
        path = Path(f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.content)
    return layout


def test_the_policy_file_is_the_one_the_txt_record_announces(tmp_path: Path) -> None:
    layout = _write_tree(tmp_path)
    for domain in ("example.test", "second.test"):
        served = Path(layout.mta_sts_webroot(domain), ".well-known/mta-sts.txt").read_bytes()
        assert served == mta_sts_records(domain, ("mx.example.test",)).policy.encode()
        assert served.startswith(b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\n")
        assert Path(layout.nginx_site(domain)).read_text().count(f"server_name mta-sts.{domain};") == 1


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[int, Layout]]:
    layout = _write_tree(tmp_path / "root")
    cert, key = write_tls_pair(tmp_path / "tls", "mta-sts.example.test")
    port = _free_port()
    block = Path(layout.nginx_site("example.test")).read_text()
    # only where it listens and which certificate it shows change; the locations are as written
    block = block.replace("    listen 443 ssl;\n", f"    listen 127.0.0.1:{port} ssl;\n")
    block = block.replace("    listen [::]:443 ssl;\n", "")
    block = block.replace("/etc/letsencrypt/live/mta-sts.example.test/fullchain.pem", str(cert))
    block = block.replace("/etc/letsencrypt/live/mta-sts.example.test/privkey.pem", str(key))
    assert f"127.0.0.1:{port}" in block and str(cert) in block
    run = tmp_path / "nginx"
    run.mkdir()
    (run / "site.conf").write_text(block)
    temp = "".join(
        f"    {kind}_temp_path {run}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (run / "nginx.conf").write_text(
        f"user root;\ndaemon off;\npid {run}/nginx.pid;\nerror_log {run}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp}    include /etc/nginx/mime.types;\n"
        f"    include {run}/site.conf;\n}}\n"
    )
    check = subprocess.run(
        [NGINX, "-t", "-c", str(run / "nginx.conf")], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", str(run / "nginx.conf")], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, layout
    finally:
        proc.terminate()
        proc.wait(10)


@needs_nginx
def test_nginx_serves_the_policy_as_text_plain_and_nothing_else(nginx: tuple[int, Layout]) -> None:
    port, _ = nginx
    headers = {"Host": "mta-sts.example.test"}
    with httpx.Client(verify=False, timeout=5, follow_redirects=False) as client:  # self-signed, loopback
        policy = client.get(f"https://127.0.0.1:{port}/.well-known/mta-sts.txt", headers=headers)
        other = client.get(f"https://127.0.0.1:{port}/", headers=headers)
    assert policy.status_code == 200
    assert policy.headers["content-type"].split(";")[0] == "text/plain"
    assert policy.content == mta_sts_records("example.test", ("mx.example.test",)).policy.encode()
    assert other.status_code == 404
