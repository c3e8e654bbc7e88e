"""MECSA scoring: profiles kept as data (profiles/*.json) and the engine that applies them."""

from mecsa.scoring.engine import (
    AREA_TITLES,
    AREAS,
    DEFAULT_PROFILE,
    MAX_LEVEL,
    Levels,
    Profile,
    ProfileError,
    Score,
    all_subsets,
    load_profile,
    profile_names,
    score_assessment,
    stars,
)

__all__ = [
    "AREAS",
    "AREA_TITLES",
    "DEFAULT_PROFILE",
    "MAX_LEVEL",
    "Levels",
    "Profile",
    "ProfileError",
    "Score",
    "all_subsets",
    "load_profile",
    "profile_names",
    "score_assessment",
    "stars",
]
