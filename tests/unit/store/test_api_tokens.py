"""API tokens in the store (SQLite and a real PostgreSQL): hashed, checked, listed, revoked."""

from __future__ import annotations

from sqlalchemy import select

from mecsa.store import Store
from mecsa.store.api_tokens import (
    TOKEN_PREFIX,
    api_tokens,
    create_token,
    list_tokens,
    revoke_token,
    token_is_valid,
)


def test_a_token_is_stored_only_as_its_hash_and_checks_out(store: Store) -> None:
    token = create_token(store, "ci")
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    with store.engine.connect() as conn:
        rows = conn.execute(select(api_tokens)).all()
    assert len(rows) == 1
    assert token not in {str(v) for v in rows[0]}  # the clear text is nowhere in the row
    assert rows[0].shown == token[:12]
    assert token_is_valid(store, token)
    assert not token_is_valid(store, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not token_is_valid(store, "not-a-token")
    assert not token_is_valid(store, TOKEN_PREFIX + "x" * 500)


def test_a_revoked_token_no_longer_checks_out(store: Store) -> None:
    first, second = create_token(store, "one"), create_token(store, "two")
    listed = list_tokens(store)
    assert [(t.id, t.name, t.revoked_at) for t in listed] == [
        (listed[0].id, "one", None),
        (listed[1].id, "two", None),
    ]
    assert revoke_token(store, listed[0].id)
    assert not revoke_token(store, listed[0].id)  # already revoked
    assert not revoke_token(store, 999)
    assert not token_is_valid(store, first)
    assert token_is_valid(store, second)
    assert list_tokens(store)[0].revoked_at is not None
