import pytest

from mecsa.domain import DomainError, normalise_domain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_normalise_accepts_and_converts(text: str, expected: str) -> None:
    assert normalise_domain(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a..example", "empty label"),
        ("192.0.2.1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("2001:db8::1", "IP address"),
        ("-bad.example", "invalid label"),
        ("bad_.example", "invalid label"),
        ("a" * 64 + ".example", "longer than 63"),
        (".".join(["a" * 60] * 5), "too long"),
        ("example.123", "all-numeric"),
    ],
)
def test_normalise_rejects_with_reason(text: str, why: str) -> None:
    with pytest.raises(DomainError, match=why):
        normalise_domain(text)
