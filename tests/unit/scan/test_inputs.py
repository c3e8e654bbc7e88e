"""The scan's input: lines, comments, CSV with a `domain` column, bad lines as error targets, streaming."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from mecsa.scan.inputs import chunked, read_targets


def test_lines_comments_and_blank_lines() -> None:
    text = "# a list\n\nExample.TEST.\n  second.test  # trailing note\n#third.test\nbücher.test\n"
    targets = list(read_targets(text.splitlines(keepends=True)))
    assert [(t.line, t.domain) for t in targets] == [
        (3, "example.test"),
        (4, "second.test"),
        (6, "xn--bcher-kva.test"),
    ]
    assert all(t.error is None for t in targets)


def test_bad_lines_become_error_targets_and_the_rest_goes_on() -> None:
    text = "good.test\nnot a domain\n192.0.2.1\na..b.test\n" + "x" * 300 + "\nlast.test\n"
    targets = list(read_targets(text.splitlines()))
    assert [t.domain for t in targets] == ["good.test", None, None, None, None, "last.test"]
    bad = [t for t in targets if t.domain is None]
    assert [t.line for t in bad] == [2, 3, 4, 5]
    assert "IP address" in (bad[1].error or "")
    assert "empty label" in (bad[2].error or "")
    assert bad[0].key == "not a domain"  # an error record is known by what the list said


def test_a_csv_with_a_domain_column_anywhere() -> None:
    text = (
        "\ufeffrank,Domain,sector\n"
        "1,bank.test,finance\n"
        '2,"quoted.test","multi\nline sector"\n'
        "# a comment row\n"
        "3,,empty\n"
        "4\n"
        "5,after.test,x\n"
    )
    targets = list(read_targets(text.splitlines(keepends=True)))
    assert [(t.line, t.domain) for t in targets] == [
        (2, "bank.test"),
        (3, "quoted.test"),
        (6, None),
        (7, None),
        (8, "after.test"),
    ]
    assert "empty 'domain' field" in (targets[2].error or "")
    assert "no 'domain' column" in (targets[3].error or "")


def test_a_plain_list_is_not_taken_for_csv() -> None:
    targets = list(read_targets(["a.test\n", "b.test,c.test\n"]))
    assert targets[0].domain == "a.test"
    assert targets[1].domain is None  # a comma in a plain list is a bad line, not a second column


def test_targets_are_read_lazily_from_an_endless_list() -> None:
    def endless() -> Iterator[str]:
        for i in itertools.count():
            yield f"d{i}.test\n"

    first = list(itertools.islice(read_targets(endless()), 3))
    assert [t.domain for t in first] == ["d0.test", "d1.test", "d2.test"]
    chunks = chunked(read_targets(endless()), 100)
    assert len(next(chunks)) == 100
    assert next(chunks)[0].domain == "d100.test"
