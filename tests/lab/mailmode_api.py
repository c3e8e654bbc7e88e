"""The web service's mail-mode API from inside the lab's client namespace (run by the lab test).

`python -m tests.lab.mailmode_api start URL ADDRESS` prints the POST /api/v1/mail answer;
`python -m tests.lab.mailmode_api wait URL TOKEN STAGE [dane]` polls GET /api/v1/mail/TOKEN until
the state's stage is STAGE (and, with `dane`, the DANE trap is judged) and prints the answer;
exit 1 with the last answer after 120 s.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import httpx


def _judged(answer: dict[str, Any]) -> bool:
    report = answer.get("report") or {}
    dane = [e for e in report.get("enforcement", []) if e["trap"] == "dane"]
    return bool(dane) and dane[0]["verdict"] != "unknown_yet"


def main(argv: list[str]) -> int:
    command, url = argv[0], argv[1]
    if command == "start":
        response = httpx.post(f"{url}/api/v1/mail", json={"address": argv[2]}, timeout=30)
        print(json.dumps({"status": response.status_code, **response.json()}))
        return 0
    token, stage, dane = argv[2], argv[3], "dane" in argv[4:]
    deadline = time.monotonic() + 120
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/api/v1/mail/{token}", timeout=30).json()
        if answer["state"]["stage"] == stage and (not dane or _judged(answer)):
            print(json.dumps(answer))
            return 0
        time.sleep(0.5)
    print(json.dumps(answer))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
