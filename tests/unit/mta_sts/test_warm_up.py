"""The helper's warm-up (mecsa.probes.https_client.warm_up) leaves the first request nothing to import."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from typing import Any

_FRESH = textwrap.dedent(
    """
    import asyncio, json, sys
    from mecsa.probes import https_client

    async def main(port, warm):
        if warm:
            await https_client.warm_up()
        client = https_client.make_client(None)
        before = set(sys.modules)
        outcome = await https_client.request(client, "policy.test", "", "127.0.0.1", port, "/", 5.0)
        return outcome.kind.value, sorted(set(sys.modules) - before)

    kind, new = asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "warm"))
    print(json.dumps({"kind": kind, "new": new}))
    """
)


def _first_request(warm: bool) -> dict[str, Any]:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = str(closed.getsockname()[1])  # nothing listens there once it is closed: refused
    command = [sys.executable, "-c", _FRESH, port, "warm" if warm else "cold"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_after_the_warm_up_the_first_request_imports_nothing_of_anyio() -> None:
    cold, warm = _first_request(False), _first_request(True)
    assert cold["kind"] == warm["kind"] == "refused"
    assert any(str(m).startswith("anyio") for m in cold["new"])  # what the warm-up is for
    assert not [m for m in warm["new"] if str(m).startswith("anyio")], warm["new"]
