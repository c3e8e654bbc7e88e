"""Statistics over the store, as MECSA's statistics page shows them: how many domains reach each level.

Each domain counts once, with its newest assessment that is not an error record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, func, select

from mecsa.store import Store
from mecsa.store.records import AREAS
from mecsa.store.schema import assessments


@dataclass(frozen=True, slots=True)
class LevelStats:
    domains: int
    levels: dict[str, dict[int, int]]  # area -> level -> domains

    def to_json(self) -> dict[str, Any]:
        return {
            "domains": self.domains,
            "levels": {a: {str(k): v for k, v in by.items()} for a, by in self.levels.items()},
        }


def level_stats(store: Store) -> LevelStats:
    newest = (
        select(func.max(assessments.c.id).label("id"))
        .where(assessments.c.error == false())
        .group_by(assessments.c.domain)
        .subquery("newest")
    )
    levels: dict[str, dict[int, int]] = {}
    with store.engine.connect() as conn:
        domains = conn.execute(select(func.count()).select_from(newest)).scalar_one()
        for area in AREAS:
            column = assessments.c[area]
            rows = conn.execute(
                select(column, func.count())
                .join(newest, newest.c.id == assessments.c.id)
                .where(column.is_not(None))
                .group_by(column)
            ).all()
            found = {int(level): int(n) for level, n in rows}
            levels[area] = {level: found.get(level, 0) for level in range(11)}
    return LevelStats(int(domains), levels)
