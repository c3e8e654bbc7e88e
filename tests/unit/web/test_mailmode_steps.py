"""The live page's steps (pure): which step is active, done or failed at each stage, and when it is final."""

from __future__ import annotations

import pytest

from mecsa.mailmode.service import LiveState, Stage
from mecsa.web.mailmode_pages import event_data, is_final, steps

REPLY_TO = ("t@d.example", "t@dane-trap.d.example", "t@sts-trap.d.example")


def _state(stage: Stage, *, messages: int = 0, pending: tuple[str, ...] = ()) -> LiveState:
    return LiveState(
        "abcdefghabcdefgh", stage, "the probe said something", REPLY_TO, messages, pending=pending
    )


@pytest.mark.parametrize(
    ("stage", "classes"),
    [
        (Stage.PROBING, ("active", "pending", "pending")),
        (Stage.PROBE_FAILED, ("failed", "pending", "pending")),
        (Stage.WAITING_FOR_REPLY, ("done", "active", "pending")),
        (Stage.ANALYSING, ("done", "active", "active")),
        (Stage.REPORT_READY, ("done", "done", "done")),
    ],
)
def test_each_stage_marks_the_steps(stage: Stage, classes: tuple[str, str, str]) -> None:
    got = steps(_state(stage, messages=1))
    assert (got["probe"]["class"], got["reply"]["class"], got["report"]["class"]) == classes
    assert got["probe"]["text"] == "The probe said something"


def test_final_only_when_the_report_is_ready_and_nothing_is_pending() -> None:
    assert is_final(_state(Stage.REPORT_READY))
    waiting = _state(Stage.REPORT_READY, pending=("the MTA-STS trap: 12 more minutes",))
    assert not is_final(waiting)
    assert "Still pending: the MTA-STS trap: 12 more minutes" in steps(waiting)["report"]["text"]
    assert not is_final(_state(Stage.ANALYSING))


def test_the_version_changes_with_what_the_page_shows() -> None:
    first = event_data(_state(Stage.WAITING_FOR_REPLY))
    assert first["version"] == event_data(_state(Stage.WAITING_FOR_REPLY))["version"]
    assert first["version"] != event_data(_state(Stage.ANALYSING, messages=1))["version"]
    pending = event_data(_state(Stage.REPORT_READY, pending=("x",)))
    assert pending["version"] != event_data(_state(Stage.REPORT_READY))["version"]
