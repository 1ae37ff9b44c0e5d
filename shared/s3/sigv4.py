"""AWS Signature Version 4 as S3 checks it: the Authorization header form and the presigned-URL form.

The canonical request is rebuilt from what arrived (method, path, query, the signed headers, the payload hash the
client declared) and signed with the secret of the access key it names; the signature must match in constant time.
What the payload hash declares (a SHA-256 to check, aws-chunked chunk signatures, unsigned) is checked while the body
streams, by `payload.py`, from the `Authorization` this module returns.

Behind the gateway the Host header is the gateway's own name for storaged; the client signed the name it used, which
the gateway passes on as X-Forwarded-Host, so that one is used when present. Choosing it gains a client nothing: the
signature still needs the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote, unquote, unquote_to_bytes

from starlette.types import Scope

from shared.s3.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=15)  # S3's: a request signed further from now is RequestTimeTooSkewed
MAX_PRESIGNED_EXPIRY_SECS = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Authorization:
    """A request whose signature held: who signed, and what is needed to check the body's chunks against it."""

    access_key_id: str
    amz_date: str
    scope: str  # date/region/s3/aws4_request
    signing_key: bytes
    signature: str  # the seed signature of an aws-chunked body
    payload_hash: str  # the declared x-amz-content-sha256 (UNSIGNED-PAYLOAD for a presigned URL)


@lru_cache(maxsize=64)
def signing_key(secret: str, date: str, region: str) -> bytes:
    """The day's key (four HMACs), cached: every request of a day under one key pair uses the same one."""
    key = ("AWS4" + secret).encode()
    for part in (date, region, SERVICE, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _uri_encode(value: str | bytes, *, safe: str) -> str:
    # RFC 3986 unreserved characters stay, everything else is %XX in upper case: AWS's UriEncode.
    return quote(value, safe=safe)


def canonical_uri(raw_path: bytes) -> str:
    return _uri_encode(unquote_to_bytes(raw_path), safe="/~") or "/"


def canonical_query(query_string: bytes, *, drop: str | None = None) -> str:
    pairs: list[tuple[str, str]] = []
    for item in query_string.decode("latin-1").split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        name, value = unquote(name), unquote(value)
        if name == drop:
            continue
        pairs.append((_uri_encode(name, safe="-_.~"), _uri_encode(value, safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _header_values(scope: Scope) -> dict[str, str]:
    values: dict[str, list[str]] = {}
    for raw_name, raw_value in scope["headers"]:
        values.setdefault(raw_name.decode("latin-1"), []).append(" ".join(raw_value.decode("latin-1").split()))
    joined = {name: ",".join(parts) for name, parts in values.items()}
    if "x-forwarded-host" in joined:
        joined["host"] = joined["x-forwarded-host"].split(",")[0].strip()
    return joined


def canonical_request(
    scope: Scope, headers: Mapping[str, str], signed: list[str], payload_hash: str, *, drop: str | None
) -> str:
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    lines = [
        scope["method"],
        canonical_uri(raw_path.partition(b"?")[0]),
        canonical_query(scope.get("query_string", b""), drop=drop),
        "".join(f"{name}:{headers.get(name, '')}\n" for name in signed),
        ";".join(signed),
        payload_hash,
    ]
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"


@dataclass(frozen=True, slots=True)
class _Claim:
    """What a request says about its signature, before it is checked."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    payload_hash: str
    expires_secs: int | None  # presigned only


def _parse_credential(credential: str, malformed: S3Error) -> tuple[str, str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5:
        raise malformed
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _header_claim(authorization: str, headers: Mapping[str, str]) -> _Claim:
    malformed = S3Error(
        "AuthorizationHeaderMalformed",
        "the Authorization header is malformed; expected "
        "'AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/s3/aws4_request, SignedHeaders=<h1;h2>, Signature=<hex>'",
    )
    _, _, rest = authorization.partition(" ")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields[name] = value
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise malformed
    key, date, region, service, terminator = _parse_credential(fields["Credential"], malformed)
    amz_date = headers.get("x-amz-date", "")
    if not amz_date:
        raise S3Error("AccessDenied", "AWS authentication requires a valid x-amz-date header")
    payload_hash = headers.get("x-amz-content-sha256", "")
    if not payload_hash:
        raise S3Error("InvalidRequest", "missing required header for this request: x-amz-content-sha256")
    return _Claim(
        key,
        date,
        region,
        service,
        terminator,
        fields["SignedHeaders"].split(";"),
        fields["Signature"],
        amz_date,
        payload_hash,
        None,
    )


def _query_claim(query: Mapping[str, str]) -> _Claim:
    required = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Expires")
    missing = [name for name in required if name not in query]
    if missing or query.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f"a presigned URL needs X-Amz-Algorithm={ALGORITHM} and {', '.join(required)}"
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        )
    malformed = S3Error(
        "AuthorizationQueryParametersError", "X-Amz-Credential must be <key>/<date>/<region>/s3/aws4_request"
    )
    key, date, region, service, terminator = _parse_credential(query["X-Amz-Credential"], malformed)
    expires = query["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGNED_EXPIRY_SECS:
        raise S3Error(
            "AuthorizationQueryParametersError",
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRY_SECS} (7 days)",
        )
    return _Claim(
        key,
        date,
        region,
        service,
        terminator,
        query["X-Amz-SignedHeaders"].split(";"),
        query["X-Amz-Signature"],
        query["X-Amz-Date"],
        UNSIGNED_PAYLOAD,
        int(expires),
    )


def _signed_at(amz_date: str) -> datetime:
    try:
        return datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise S3Error(
            "AccessDenied", f"X-Amz-Date must be of the form 20260101T000000Z, got {amz_date[:40]!r}"
        ) from None


def _query_params(scope: Scope) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = item.partition("=")
        if name:
            params.setdefault(unquote(name), unquote(value))
    return params


def claimed_key_id(scope: Scope) -> str | None:
    """The access key id a Signature V4 request names, unchecked; None when it names none readably (its check
    then says why)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            credential = value.partition(b"Credential=")[2]
            return credential.partition(b"/")[0].decode("latin-1") or None
    return _query_params(scope).get("X-Amz-Credential", "").partition("/")[0] or None


def pair(access_key_id: str, secret_access_key: str) -> Callable[[str], str | None]:
    """The secret lookup of one key pair."""
    return lambda key_id: secret_access_key if hmac.compare_digest(key_id, access_key_id) else None


class Verifier:
    """Checks signatures against the secrets `secret_of` knows (access key id -> secret, None for a key it does not);
    `region` is the one to sign for."""

    def __init__(self, secret_of: Callable[[str], str | None], *, region: str) -> None:
        self.secret_of = secret_of
        self.region = region

    def verify(self, scope: Scope, *, now: datetime | None = None) -> Authorization:
        headers = _header_values(scope)
        authorization = headers.get("authorization", "")
        if authorization.startswith("AWS ") or b"AWSAccessKeyId=" in scope.get("query_string", b""):
            raise S3Error(
                "InvalidRequest",
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256 "
                "(boto3: Config(signature_version='s3v4')).",
            )
        if authorization.startswith(ALGORITHM + " "):
            claim, drop = _header_claim(authorization, headers), None
        else:
            claim, drop = _query_claim(_query_params(scope)), "X-Amz-Signature"
        secret = self.secret_of(claim.access_key_id)
        if secret is None:
            raise S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        if claim.region != self.region or claim.service != SERVICE or claim.terminator != TERMINATOR:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f"the credential scope {claim.region}/{claim.service}/{claim.terminator} is wrong; "
                f"expecting {self.region}/{SERVICE}/{TERMINATOR}",
            )
        signed_at = _signed_at(claim.amz_date)
        if claim.date != claim.amz_date[:8]:
            raise S3Error("AuthorizationHeaderMalformed", "the credential's date is not the day of X-Amz-Date")
        now = now or datetime.now(UTC)
        if claim.expires_secs is None:
            if abs(now - signed_at) > MAX_SKEW:
                raise S3Error(
                    "RequestTimeTooSkewed", "The difference between the request time and the current time is too large."
                )
        elif now > signed_at + timedelta(seconds=claim.expires_secs):
            raise S3Error("AccessDenied", "Request has expired")
        elif signed_at - now > MAX_SKEW:
            raise S3Error("AccessDenied", "Request is not valid yet (X-Amz-Date is in the future)")
        if "host" not in claim.signed_headers:
            raise S3Error("AccessDenied", "the host header must be signed")
        scope_text = f"{claim.date}/{claim.region}/{SERVICE}/{TERMINATOR}"
        request = canonical_request(scope, headers, claim.signed_headers, claim.payload_hash, drop=drop)
        key = signing_key(secret, claim.date, claim.region)
        expected = hmac_hex(key, string_to_sign(claim.amz_date, scope_text, request))
        if not hmac.compare_digest(expected, claim.signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        return Authorization(claim.access_key_id, claim.amz_date, scope_text, key, claim.signature, claim.payload_hash)
