"""Optional bearer tokens for POST /events, compared in constant time. Tokens are never logged."""

from __future__ import annotations

import hmac


def authorized(header: str | None, tokens: tuple[bytes, ...]) -> bool:
    """True when no tokens are configured, or the Authorization header bears one of them."""
    if not tokens:
        return True
    scheme, _, credentials = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():  # the scheme is case-insensitive (RFC 9110)
        return False
    offered = credentials.strip().encode()
    # Compare against every token so timing does not reveal which one (or whether any) matched.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(offered, token)
    return matched
