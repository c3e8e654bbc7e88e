"""Where records go: JSONL or CSV on a stream, written as each domain finishes."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

from mecsa.scan.records import CSV_COLUMNS, csv_row

FORMATS = ("jsonl", "csv")


class RecordWriter(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...


class JsonlWriter:
    """One JSON object per line: the same document as `mecsa assess --json`, not indented."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, record: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        self.stream.flush()


class CsvWriter:
    """A header, then one row per domain (see `records.CSV_COLUMNS`)."""

    def __init__(self, stream: TextIO, *, header: bool = True) -> None:
        self.stream = stream
        self._csv = csv.writer(stream, lineterminator="\n")
        if header:
            self._csv.writerow(CSV_COLUMNS)

    def write(self, record: Mapping[str, Any]) -> None:
        self._csv.writerow(csv_row(record))

    def flush(self) -> None:
        self.stream.flush()


def make_writer(kind: str, stream: TextIO, *, header: bool = True) -> RecordWriter:
    if kind == "csv":
        return CsvWriter(stream, header=header)
    return JsonlWriter(stream)
