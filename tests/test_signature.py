"""Contentful's request signatures: the toolkit's own vector, normalisation, and every refusal."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from headwater.contentful.signature import (
    SignatureError,
    canonical_request,
    normalise_path,
    sign_request,
    verify_request,
)

SECRET = "a" * 64
TIMESTAMP = 1603379941037
HEADERS = {
    "Content-Type": "application/vnd.contentful.management.v1+json",
    "X-Contentful-Topic": "ContentManagement.Entry.publish",
}
BODY = '{"sys":{"id":"abc"}}'
VECTOR_SIGNED_HEADERS = (
    "content-type,x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
)
VECTOR_SIGNATURE = "6114ecaed11ea312f4d966674e070d5b53be0964c6da394bd96d30e82cd5a67b"


def signed(target: str, body: bytes, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {**HEADERS, **sign_request(SECRET, "POST", target, HEADERS, body, timestamp).as_dict()}


def test_contentful_toolkit_vector_signs_identically() -> None:
    result = sign_request(SECRET, "POST", "/webhooks/contentful", HEADERS, BODY, TIMESTAMP)
    assert result.signed_headers == VECTOR_SIGNED_HEADERS
    assert result.signature == VECTOR_SIGNATURE


def test_contentful_toolkit_vector_verifies() -> None:
    headers = {
        **HEADERS,
        "X-Contentful-Signature": VECTOR_SIGNATURE,
        "X-Contentful-Signed-Headers": VECTOR_SIGNED_HEADERS,
        "X-Contentful-Timestamp": str(TIMESTAMP),
        "Host": "example.test",  # not signed, so not part of the canonical request
    }
    verify_request(
        SECRET, "POST", "/webhooks/contentful", headers, BODY.encode(), now=TIMESTAMP / 1000 + 5
    )


def test_path_is_escaped_like_encode_uri() -> None:
    assert normalise_path("/webhooks/a b") == "/webhooks/a%20b"
    assert normalise_path("/webhooks/contentful") == "/webhooks/contentful"
    assert normalise_path("/a;b,c/@:$&=+!*'()") == "/a;b,c/@:$&=+!*'()"
    # the wire form of a space is escaped once more, as encodeURI does to any "%"
    assert normalise_path("/webhooks/a%20b") == "/webhooks/a%2520b"
    assert normalise_path("/ünï") == "/%C3%BCn%C3%AF"


def test_query_is_escaped_like_querystring_then_encode_uri() -> None:
    # querystring.escape("a=1&b=c d") is a%3D1%26b%3Dc%20d; encodeURI then escapes each "%"
    assert normalise_path("/hook?a=1&b=c d") == "/hook?a%253D1%2526b%253Dc%2520d"
    assert normalise_path("/hook?") == "/hook"
    # only the text between the first and a second "?" is kept, as the toolkit's split does
    assert normalise_path("/hook?a?b") == "/hook?a"


def test_path_with_a_space_is_signed_over_the_escaped_path() -> None:
    body = b"{}"
    headers = signed("/webhooks/my hook", body)
    expected = hmac.new(
        SECRET.encode(),
        canonical_request(
            "POST",
            "/webhooks/my hook",
            {k.lower(): v for k, v in headers.items() if k != "x-contentful-signature"},
            body,
        ),
        hashlib.sha256,
    ).hexdigest()
    assert headers["x-contentful-signature"] == expected
    assert b"\n/webhooks/my%20hook\n" in canonical_request("POST", "/webhooks/my hook", {}, body)
    verify_request(SECRET, "POST", "/webhooks/my hook", headers, body, now=TIMESTAMP / 1000)
    with pytest.raises(SignatureError) as caught:
        verify_request(SECRET, "POST", "/webhooks/my%20hook", headers, body, now=TIMESTAMP / 1000)
    assert caught.value.status == 403


def test_non_ascii_body_is_signed_as_its_utf8_bytes() -> None:
    text = '{"fields":{"title":{"en-US":"Trauma — what helps? Ünïcödé 🌊"}}}'
    body = text.encode()
    headers = signed("/webhooks/contentful", body)
    # a str body is the same request: Node's hmac.update(string) hashes its UTF-8 bytes
    assert (
        sign_request(SECRET, "POST", "/webhooks/contentful", HEADERS, text, TIMESTAMP).as_dict()[
            "x-contentful-signature"
        ]
        == (headers["x-contentful-signature"])
    )
    verify_request(SECRET, "POST", "/webhooks/contentful", headers, body, now=TIMESTAMP / 1000)
    with pytest.raises(SignatureError):
        verify_request(
            SECRET,
            "POST",
            "/webhooks/contentful",
            headers,
            text.encode("latin-1", "replace"),
            now=TIMESTAMP / 1000,
        )


def test_header_names_and_values_are_trimmed_and_case_insensitive() -> None:
    body = b"{}"
    headers = signed("/webhooks/contentful", body)
    shouted = {f" {k.upper()} ": f"  {v} " for k, v in headers.items()}
    verify_request(SECRET, "POST", "/webhooks/contentful", shouted, body, now=TIMESTAMP / 1000)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda h, b: (h, b + b" "), 403),
        (lambda h, b: ({**h, "X-Contentful-Topic": "ContentManagement.Entry.delete"}, b), 403),
        (lambda h, b: ({k: v for k, v in h.items() if k != "x-contentful-signature"}, b), 401),
        (lambda h, b: ({**h, "x-contentful-timestamp": "soon"}, b), 401),
    ],
    ids=["tampered-body", "tampered-header", "unsigned", "malformed-timestamp"],
)
def test_changed_requests_are_refused(change: object, status: int) -> None:
    body = b'{"sys":{"id":"abc"}}'
    assert callable(change)
    headers, sent = change(signed("/webhooks/contentful", body), body)
    with pytest.raises(SignatureError) as caught:
        verify_request(SECRET, "POST", "/webhooks/contentful", headers, sent, now=TIMESTAMP / 1000)
    assert caught.value.status == status


def test_wrong_secret_is_refused() -> None:
    body = b"{}"
    headers = signed("/webhooks/contentful", body)
    with pytest.raises(SignatureError) as caught:
        verify_request(
            "b" * 64, "POST", "/webhooks/contentful", headers, body, now=TIMESTAMP / 1000
        )
    assert caught.value.status == 403


@pytest.mark.parametrize("offset", [30.0, 31.0, -31.0])
def test_signatures_expire_after_30_seconds(offset: float) -> None:
    body = b"{}"
    headers = signed("/webhooks/contentful", body)
    with pytest.raises(SignatureError, match="expired") as caught:
        verify_request(
            SECRET, "POST", "/webhooks/contentful", headers, body, now=TIMESTAMP / 1000 + offset
        )
    assert caught.value.status == 401


def test_signature_within_the_window_is_accepted() -> None:
    body = b"{}"
    headers = signed("/webhooks/contentful", body)
    verify_request(
        SECRET, "POST", "/webhooks/contentful", headers, body, now=TIMESTAMP / 1000 + 29.9
    )
