"""dnspython's optional features, told from the packages' own version attributes (issue 20).

dnspython decides whether it may use cryptography (DNSSEC) and the idna package by asking
`importlib.metadata` for their versions (`dns._features.have`, run when `dns.name` and
`dns.dnssec` are imported). Each answer finds the distribution on `sys.path` and parses its
METADATA file with the email package: about 10 ms of a cold `mecsa assess` for the two features,
on the critical path. The packages say their versions themselves (`cryptography.__version__`,
`idna.__version__`), which costs nothing once they are imported, and they are imported anyway.

`settle()` applies dnspython's own rule to those: its requirements, "package>=version" each, read
from dnspython and compared with its own version parser. It tells dnspython the outcome with
`dns._features.force`, the function dnspython provides "as a workaround for any cases where
importlib.metadata is ineffective". A feature whose requirement names a package not in `MODULES`,
or whose package is missing or does not say its version, is left to dnspython's own check, as is
everything when dnspython no longer has the names read here. Nothing but the source of the
version changes, so dnspython ends with the answers it would have reached itself
(tests/unit/dns/test_features.py compares them).

dnspython's `dns._features` also imports `importlib.metadata` when it is first imported, before
any answer is asked: with the zipfile, email and importlib.resources modules it pulls in, ~8 ms of a
cold run in which nothing reads a distribution's metadata once the two features are settled.
`settle()` therefore puts a stand-in for the module in `sys.modules` first (`defer_metadata`): the
import binds it, and the first use of any of its names imports the real module, which then takes
its place. `importlib.util.LazyLoader` cannot do this on Python 3.11: the import statement itself
reads the lazy module's `__spec__`, which loads it.

Used by the one-shot `mecsa assess` before its first dnspython import; a library import of
mecsa changes nothing of dnspython's.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

# The features settled here, and the import name of each distribution their requirements name.
FEATURES = ("dnssec", "idna")
MODULES = {"cryptography": "cryptography", "idna": "idna"}

Parse = Callable[[str], tuple[int, ...]]


def settle() -> dict[str, bool]:
    """Force each of `FEATURES` that can be told here to dnspython's own answer; those forced."""
    defer_metadata()
    import dns._features as features

    requirements: Any = getattr(features, "_requirements", None)
    parse: Any = getattr(features, "_tuple_from_text", None)
    if not isinstance(requirements, dict) or not callable(parse):
        return {}
    settled: dict[str, bool] = {}
    for feature in FEATURES:
        outcome = fulfilled(requirements.get(feature), parse)
        if outcome is not None:
            features.force(feature, outcome)
            settled[feature] = outcome
    return settled


def fulfilled(requirements: object, parse: Parse) -> bool | None:
    """Whether every "package>=version" is met, as dnspython compares; None: cannot tell here."""
    if not isinstance(requirements, list) or not requirements:
        return None
    for requirement in requirements:
        if not isinstance(requirement, str):
            return None
        package, sep, minimum = requirement.partition(">=")
        module = MODULES.get(package)
        version = installed_version(module) if sep and module is not None else None
        if version is None:
            return None
        if parse(version) < parse(minimum):
            return False
    return True


def installed_version(module: str) -> str | None:
    """`module.__version__`; None when it is not installed or does not say."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return None
    version = getattr(imported, "__version__", None)
    return version if isinstance(version, str) else None


METADATA = "importlib.metadata"


class DeferredModule(types.ModuleType):
    """Stands in `sys.modules` for a module not yet imported; the first name read imports it."""

    def __init__(self, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(spec.name)
        # Read by the import statement (is the module still initialising?): answered without
        # importing, unlike every other name.
        self.__spec__ = spec
        self.__dict__["_deferred_lock"] = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.imported(), name)

    def imported(self) -> types.ModuleType:
        """The real module: imported now, in this stand-in's place, unless that is done."""
        with self.__dict__["_deferred_lock"]:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
                # Binds the real module in sys.modules and as the parent package's attribute.
                return importlib.import_module(self.__name__)
        return sys.modules[self.__name__]


def defer_metadata() -> bool:
    """Put a `DeferredModule` for `importlib.metadata` in place, unless it is imported; whether it did."""
    if METADATA in sys.modules:
        return False
    spec = importlib.util.find_spec(METADATA)
    if spec is None:
        return False
    stand_in = DeferredModule(spec)
    sys.modules[METADATA] = stand_in
    importlib.metadata = stand_in  # `import a.b` binds `a`: `a.b` is read when used
    return True
