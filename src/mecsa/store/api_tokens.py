"""The web service's API tokens, stored hashed (`mecsa serve token create`).

A token is 32 random bytes (URL-safe base64), so one SHA-256 of it is enough: unlike a password it
cannot be guessed from a dictionary, and a stolen table of digests gives no usable token. The first
characters are kept in clear (`prefix`) so that an operator can tell tokens apart when revoking.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Column, DateTime, String, Table, insert, select, update

from mecsa.store.records import as_utc, utc_now
from mecsa.store.repository import Store
from mecsa.store.schema import Id, metadata

TOKEN_PREFIX = "mecsa_"
_SHOWN = 12  # characters of the token kept in clear, the prefix included

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("shown", String(16), nullable=False),  # the token's first characters, to tell tokens apart
    Column("digest", String(64), nullable=False, unique=True),  # SHA-256 hex of the whole token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    shown: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, name: str) -> str:
    """A new token named `name`; the only time its clear text exists is this return value."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.engine.begin() as conn:
        conn.execute(
            insert(api_tokens).values(
                name=name[:100], shown=token[:_SHOWN], digest=digest(token), created_at=utc_now()
            )
        )
    return token


def token_is_valid(store: Store, token: str) -> bool:
    """Whether `token` is a stored, unrevoked token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return False
    wanted = digest(token)
    with store.engine.connect() as conn:
        row = conn.execute(
            select(api_tokens.c.digest, api_tokens.c.revoked_at).where(api_tokens.c.digest == wanted)
        ).first()
    # The lookup is by digest; the constant-time compare is belt and braces against timing games.
    return row is not None and row.revoked_at is None and hmac.compare_digest(row.digest, wanted)


def list_tokens(store: Store) -> list[ApiToken]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id)).all()
    return [
        ApiToken(int(r.id), r.name, r.shown, as_utc(r.created_at) or utc_now(), as_utc(r.revoked_at))
        for r in rows
    ]


def revoke_token(store: Store, token_id: int) -> bool:
    """Revoke token `token_id`; False when there is no such (unrevoked) token."""
    with store.engine.begin() as conn:
        result = conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
    return bool(result.rowcount)
