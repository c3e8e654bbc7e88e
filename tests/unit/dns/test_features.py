"""dnspython's features settled from `__version__` (mecsa.dns.features): dnspython's own answers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import dns._features
import pytest

from mecsa.dns import features
from mecsa.dns.features import FEATURES, fulfilled, installed_version

parse = dns._features._tuple_from_text

# A fresh interpreter each: dnspython's own answers (from the metadata), then settle()'s.
_OWN = "import json, dns._features as f; print(json.dumps({n: f.have(n) for n in %r}))"
_SETTLED = textwrap.dedent(
    """
    import json
    from mecsa.dns.features import settle
    settled = settle()
    import dns._features as f, dns.dnssec, dns.name
    print(json.dumps({"settled": settled, "have": {n: f.have(n) for n in %r}}))
    """
)


def _fresh(code: str) -> dict[str, object]:
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_settle_gives_dnspythons_own_answers() -> None:
    own = _fresh(_OWN % (FEATURES,))
    out = _fresh(_SETTLED % (FEATURES,))
    assert out["settled"] == own  # every feature settled here, and to dnspython's answer
    assert out["have"] == own
    assert own["dnssec"] is True  # the validator needs it: this installation must have it


def test_a_requirement_not_met_is_false_and_one_not_known_here_is_left_to_dnspython() -> None:
    version = installed_version("cryptography")
    assert version is not None
    assert fulfilled([f"cryptography>={version}"], parse) is True
    assert fulfilled(["cryptography>=9999"], parse) is False
    assert fulfilled(["cryptography>=1", "idna>=9999"], parse) is False
    # Packages not in MODULES, a requirement of another form, or none: cannot tell here.
    assert fulfilled(["aioquic>=1.0"], parse) is None
    assert fulfilled(["cryptography==50"], parse) is None
    assert fulfilled([], parse) is None
    assert fulfilled(None, parse) is None


def test_a_package_that_is_missing_or_says_no_version_is_left_to_dnspython(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(features.MODULES, "nosuch", "mecsa_no_such_module")
    monkeypatch.setitem(features.MODULES, "versionless", "mecsa.dns")  # a package without __version__
    assert installed_version("mecsa_no_such_module") is None
    assert fulfilled(["nosuch>=1"], parse) is None
    assert fulfilled(["versionless>=1"], parse) is None


def test_without_dnspythons_names_nothing_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns._features, "_cache", dict(dns._features._cache))
    monkeypatch.delattr(dns._features, "_requirements")
    assert features.settle() == {}


def test_settle_forces_what_it_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns._features, "_cache", {})
    unmet = {"dnssec": ["cryptography>=9999"], "idna": ["idna>=1"]}
    monkeypatch.setattr(dns._features, "_requirements", unmet)
    assert features.settle() == {"dnssec": False, "idna": True}
    assert dns._features._cache == {"dnssec": False, "idna": True}


# A fresh interpreter: settle() leaves importlib.metadata unimported through dnspython's imports;
# the first name read imports it (from two threads at once: one import), in the stand-in's place.
_DEFERRED = textwrap.dedent(
    """
    import json, sys, threading
    from mecsa.dns.features import settle, DeferredModule
    settle()
    import dns._features as f, dns.dnssec, dns.name, dns.version
    before = {
        "stand_in": isinstance(sys.modules["importlib.metadata"], DeferredModule),
        "unimported": [m for m in ("zipfile", "email", "importlib.metadata._meta") if m in sys.modules],
    }
    import importlib.metadata
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(importlib.metadata.version)) for _ in range(2)]
    for t in threads: t.start()
    for t in threads: t.join()
    from importlib.metadata import version, PackageNotFoundError
    real = sys.modules["importlib.metadata"]
    print(json.dumps({
        **before,
        "version": version("dnspython") == dns.version.version,
        "one_import": seen[0] is seen[1] is real.version,
        "in_place": importlib.metadata is real and not isinstance(real, DeferredModule),
        "missing_raises": PackageNotFoundError is real.PackageNotFoundError,
        "have": {n: f.have(n) for n in sorted(f._requirements)},
    }))
    """
)


def test_the_metadata_module_is_imported_only_when_used_and_then_in_its_own_place() -> None:
    import dns._features as own_features

    every = sorted(own_features._requirements)
    own = _fresh(_OWN % (tuple(every),))
    out = _fresh(_DEFERRED)
    assert out["stand_in"] is True
    assert out["unimported"] == []
    assert out["version"] is True
    assert out["one_import"] is True
    assert out["in_place"] is True
    assert out["missing_raises"] is True
    assert out["have"] == own  # every feature, the deferred ones too: dnspython's own answers


def test_nothing_is_deferred_once_the_module_is_imported() -> None:
    import importlib.metadata

    assert features.defer_metadata() is False
    assert sys.modules["importlib.metadata"] is importlib.metadata
