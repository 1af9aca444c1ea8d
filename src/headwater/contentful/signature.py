"""Contentful's webhook request signatures: the canonical request, signing and verifying.

Mirrors `signRequest`/`verifyRequest` of `@contentful/node-apps-toolkit`, which Contentful's
request-verification documentation points to. The canonical request is

    METHOD "\\n" normalised-path "\\n" name:value;name:value… "\\n" raw-body

signed with HMAC-SHA256 (the secret's UTF-8 bytes as key) and sent as lower-case hex in
`x-contentful-signature`. The headers are the ones listed in `x-contentful-signed-headers`,
names lower-cased and trimmed, values trimmed, sorted by name; the list always includes
`x-contentful-signed-headers` and `x-contentful-timestamp` (milliseconds since the epoch).

The path is normalised as the toolkit does: the query (after the first "?", up to any second
one) is escaped like Node's `querystring.escape`, then the whole is escaped like JavaScript's
`encodeURI`. Both sides apply it to the request target as it travels on the wire, so a space
already sent as %20 becomes %2520: odd, but what Contentful computes, and all that matters is
that both sides agree.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

SIGNATURE = "x-contentful-signature"
SIGNED_HEADERS = "x-contentful-signed-headers"
TIMESTAMP = "x-contentful-timestamp"
TTL = 30.0
"""Seconds a signature stays valid, as in the toolkit's verifyRequest."""

# Characters JavaScript's encodeURI and Node's querystring.escape leave as they are, beyond
# the letters, digits and "-_.~" that urllib.parse.quote never escapes.
_ENCODE_URI_SAFE = ";,/?:@&=+$!*'()#"
_QUERYSTRING_SAFE = "!*'()"


class SignatureError(Exception):
    """A request fails verification; `status` is the HTTP status to answer it with.

    401 when the request carries no usable credentials (unsigned, malformed or expired
    signature headers), 403 when it is signed but the signature does not match (a tampered
    request, or a sender with another secret).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class SignedHeaders:
    """The three headers that sign a request."""

    signature: str
    signed_headers: str
    timestamp: int

    def as_dict(self) -> dict[str, str]:
        return {
            SIGNATURE: self.signature,
            SIGNED_HEADERS: self.signed_headers,
            TIMESTAMP: str(self.timestamp),
        }


def normalise_path(target: str) -> str:
    """The request target as the canonical request holds it (see the module docstring)."""
    parts = target.split("?")
    path = parts[0]
    query = quote(parts[1], safe=_QUERYSTRING_SAFE) if len(parts) > 1 else ""
    return quote(f"{path}?{query}" if query else path, safe=_ENCODE_URI_SAFE)


def normalise_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Names lower-cased and trimmed, values trimmed."""
    return {name.strip().lower(): value.strip() for name, value in headers.items()}


def canonical_request(method: str, target: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """The bytes that are signed; headers must already hold every signed header."""
    pairs = ";".join(f"{name}:{value}" for name, value in sorted(headers.items()))
    head = f"{method}\n{normalise_path(target)}\n{pairs}\n"
    return head.encode() + body


def _sign(
    secret: str, method: str, target: str, headers: Mapping[str, str], body: bytes, timestamp: int
) -> SignedHeaders:
    signed = normalise_headers(headers)
    names = sorted({*signed, SIGNED_HEADERS, TIMESTAMP})
    signed[TIMESTAMP] = str(timestamp)
    signed[SIGNED_HEADERS] = ",".join(names)
    digest = hmac.new(
        secret.encode(), canonical_request(method, target, signed, body), hashlib.sha256
    ).hexdigest()
    return SignedHeaders(digest, signed[SIGNED_HEADERS], timestamp)


def sign_request(
    secret: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | str,
    timestamp: int | None = None,
) -> SignedHeaders:
    """Sign a request as Contentful does: every header given is signed."""
    if timestamp is None:
        timestamp = int(time.time() * 1000)
    raw = body.encode() if isinstance(body, str) else body
    return _sign(secret, method, target, headers, raw, timestamp)


def verify_request(
    secret: str,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    ttl: float = TTL,
) -> None:
    """Return if the request is signed with secret within ttl seconds; else SignatureError."""
    check_freshness(headers, now=now, ttl=ttl)
    normalised = normalise_headers(headers)
    listed = [name.strip().lower() for name in normalised[SIGNED_HEADERS].split(",")]
    picked = {name: normalised[name] for name in listed if name in normalised}
    timestamp = int(normalised[TIMESTAMP])
    expected = _sign(secret, method, target, picked, body, timestamp).signature
    if not hmac.compare_digest(expected.encode(), normalised[SIGNATURE].strip().lower().encode()):
        raise SignatureError(403, "the signature does not match (tampered, or another secret)")


def check_freshness(
    headers: Mapping[str, str], *, now: float | None = None, ttl: float = TTL
) -> None:
    """The checks that need no body: the signing headers are there and not expired.

    A timestamp more than ttl ahead of our clock is refused too, or a captured request could
    be replayed for as long as its sender liked.
    """
    normalised = normalise_headers(headers)
    missing = [name for name in (SIGNATURE, SIGNED_HEADERS, TIMESTAMP) if not normalised.get(name)]
    if missing:
        raise SignatureError(401, f"unsigned request: no {', '.join(missing)}")
    raw = normalised[TIMESTAMP]
    if not raw.isdigit():
        raise SignatureError(401, f"malformed {TIMESTAMP}: {raw[:40]!r}")
    age = (time.time() if now is None else now) - int(raw) / 1000
    if age >= ttl or age <= -ttl:
        raise SignatureError(401, f"expired signature: signed {age:.0f} s ago (limit {ttl:.0f} s)")
