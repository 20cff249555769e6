"""Masking of captured arguments and results: what an audit row may hold of a call's data.

Two rules, applied recursively to any JSON value:
- a value under a key that names a secret (password, token, api_key, authorization, cookie, ...;
  case-insensitive, anywhere in the key) is replaced whole, whatever its type;
- inside every other string, whatever looks like a secret on its own (a JWT, a `Bearer ...`
  credential, a key with a well-known prefix such as `sk-`, `ghp_`, `xoxb-`, `AKIA`, a PEM private
  key, or a long high-entropy token) is replaced, the rest of the string kept for context.

`bounded` makes any captured value storable by ingest whatever the policy: nesting is cut at a
depth and integers outside 64 bits become strings (ingest refuses both).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

MASK = "[MASKED]"
CUT = "[TRUNCATED]"
# Well inside ingest's limit of 64 levels for the whole event (the capture sits 3 levels down).
MAX_DEPTH = 32

_SENSITIVE_KEY = re.compile(
    r"passw(or)?d|passwd|pwd|token|secret|api[-_]?key|authori[sz]ation|cookie|credential"
    r"|private[-_]?key|access[-_]?key|signature",
    re.IGNORECASE,
)

_KNOWN_FORMATS = [
    # JWT / JWS: base64url header starting with {" ("eyJ"), payload, signature.
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    # An HTTP credential: the scheme, then the rest of the token.
    r"(?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}",
    r"\bBasic\s+[A-Za-z0-9+/]{8,}={0,2}",
    # Provider key prefixes: OpenAI/Anthropic/Stripe, GitHub, Slack, AWS, Google, GitLab.
    r"\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_]|ant[-_])?[A-Za-z0-9_-]{8,}",
    r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{8,}",
    r"\bgithub_pat_[A-Za-z0-9_]{8,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{8,}",
    r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}",
    r"\bAIza[A-Za-z0-9_-]{20,}",
    r"\bglpat-[A-Za-z0-9_-]{8,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
]
_KNOWN = re.compile("|".join(f"(?:{p})" for p in _KNOWN_FORMATS))
# Candidates for the entropy test: long runs without spaces from the alphabets keys are written in.
_RUN = re.compile(r"[A-Za-z0-9+/=_\-.~]{24,}")
_MIN_ENTROPY_BITS = 3.0
_HEX = frozenset("0123456789abcdef")


def looks_high_entropy(run: str) -> bool:
    """Whether `run` (24+ characters, no spaces) reads as a random token rather than a word, a path
    or an identifier: upper case, lower case and digits mixed (or 32+ hex digits, letters among
    them), at 3 bits of entropy per character or more."""
    lower = any(c.islower() for c in run)
    upper = any(c.isupper() for c in run)
    digit = any(c.isdigit() for c in run)
    mixed = lower and upper and digit
    hex_key = len(run) >= 32 and digit and lower != upper and all(c in _HEX for c in run.lower())
    if not (mixed or hex_key):
        return False
    counts = Counter(run)
    entropy = -sum(n / len(run) * math.log2(n / len(run)) for n in counts.values())
    return entropy >= _MIN_ENTROPY_BITS


def sensitive_key(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


def mask_string(value: str) -> str:
    """`value` with every secret-looking part replaced by MASK."""
    masked = _KNOWN.sub(MASK, value)
    return _RUN.sub(lambda m: MASK if looks_high_entropy(m.group(0)) else m.group(0), masked)


def mask(value: Any) -> Any:
    """A masked copy of the JSON value `value` (see the module docstring), bounded like `bounded`."""
    return _walk(value, 0, masking=True)


def bounded(value: Any) -> Any:
    """A copy of `value` that ingest stores as it is: nesting cut at MAX_DEPTH, huge integers as text."""
    return _walk(value, 0, masking=False)


def _walk(value: Any, depth: int, *, masking: bool) -> Any:
    if isinstance(value, str):
        return mask_string(value) if masking else value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= MAX_DEPTH:
        return CUT
    if isinstance(value, dict):
        return {
            key: MASK if masking and sensitive_key(str(key)) else _walk(item, depth + 1, masking=masking)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(item, depth + 1, masking=masking) for item in value]
    return str(value)
