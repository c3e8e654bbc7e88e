"""What a check is, and the context it runs in.

A check is one module exposing a `CHECK = CheckSpec(...)`: its name, the MECSA protocols it
owns, its probe step (`observe`, async, does the I/O) and its pure `evaluate`. The registry
lists the specs; the CLI choices and the finding catalogue are derived from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mecsa.dns.resolver import Resolver
from mecsa.model import CheckResult

ObsT = TypeVar("ObsT")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AssessOptions:
    """Everything a user can tune about one assessment."""

    dkim_selectors: tuple[str, ...] = ()
    ca_file: str | None = None
    smtp_timeout: float = 10.0
    tls_versions: bool = True
    smtp_port: int = 25
    https_port: int = 443
    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    check_deadline: float | None = None  # None: derived from the timeouts (mecsa.deadline)


@dataclass
class Context:
    """One assessment's shared state: the domain, its resolver (and cache), options and memos.

    `shared` runs an observation once per assessment however many checks ask for it (the MX
    set, say), so that checks stay independent modules without repeating network work.
    """

    domain: str
    resolver: Resolver
    options: AssessOptions = field(default_factory=AssessOptions)
    _memo: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    async def shared(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        task = self._memo.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            self._memo[key] = task
        result: T = await asyncio.shield(task)
        return result


@dataclass(frozen=True, slots=True)
class CheckSpec(Generic[ObsT]):
    """One check: `observe` does the I/O, `evaluate` judges; `findings` is its catalogue (id -> meaning)."""

    name: str
    summary: str
    protocols: tuple[str, ...]
    observe: Callable[[Context], Awaitable[ObsT]]
    evaluate: Callable[[ObsT], CheckResult]
    findings: Mapping[str, str] = field(default_factory=dict)
