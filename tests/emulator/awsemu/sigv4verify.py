"""Independent SigV4 verification: the signature is recomputed with
botocore's signer from the raw request (method, raw path, decoded and
re-encoded query, the received values of the signed headers, the body) and
the secret the emulator holds for the access key. Nothing the client says
about its canonical form is trusted."""

import datetime
import email.utils
import hashlib
import hmac
import re
import time
import urllib.parse

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from . import codes
from .base import AwsError

MAX_SKEW_SECONDS = 300
UNSIGNED_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
GLOBAL_SERVICES = ("iam", "sts")
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)"
                     r"\s*,\s*Signature=([0-9a-fA-F]+)\s*$")


class Authorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    def __init__(self, header):
        m = AUTH_RE.match(header.strip())
        if not m:
            raise ValueError("Authorization header requires 'Credential', 'SignedHeaders' "
                             "and 'Signature' parameters")
        scope = m.group(1).split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            raise ValueError(f"Credential scope is malformed: {m.group(1)}")
        self.access_key, self.date, self.region, self.service, _ = scope
        self.signed_headers = m.group(2).lower().split(";")
        self.signature = m.group(3).lower()


def scope_of(raw):
    """The Authorization of a request, None when unsigned; ValueError when
    the header is malformed."""
    header = raw.header("authorization")
    if not header:
        return None
    if not header.startswith("AWS4-HMAC-SHA256"):
        raise ValueError("Only AWS4-HMAC-SHA256 signatures are supported")
    return Authorization(header)


class _Mixin:
    """Restricts botocore's signer to the headers the client declared signed
    (with their received values) and hashes the received body."""

    def __init__(self, credentials, service, region, signed, raw):
        super().__init__(credentials, service, region)
        self._signed = signed
        self._raw = raw

    def headers_to_sign(self, request):
        out = HTTPHeaders()
        for name in self._signed:
            for value in self._raw.headers.get(name, []):
                out[name] = value
        return out

    def payload(self, request):
        return hashlib.sha256(self._raw.body).hexdigest()


class _Signer(_Mixin, SigV4Auth):
    pass


class _S3Signer(_Mixin, S3SigV4Auth):
    pass


def _query_pairs(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        pairs.append((urllib.parse.unquote(key), urllib.parse.unquote(value)))
    return pairs


def _amz_time(raw):
    """(ISO basic timestamp, epoch seconds) of X-Amz-Date, or of Date."""
    text = raw.header("x-amz-date")
    if text:
        try:
            dt = datetime.datetime.strptime(text, "%Y%m%dT%H%M%SZ")
        except ValueError:
            return None, None
        return text, dt.replace(tzinfo=datetime.timezone.utc).timestamp()
    text = raw.header("date")
    if not text:
        return None, None
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None, None
    return dt.strftime("%Y%m%dT%H%M%SZ"), dt.timestamp()


def verify(emulator, model, raw, auth):
    """Check ``raw``'s signature for service ``model``; returns the access
    key id or raises the AwsError AWS would answer."""
    s3 = model.metadata["protocol"] == "rest-xml"
    cred = emulator.credentials.get(auth.access_key)
    if cred is None:
        raise codes.unknown_key(model, auth.access_key)
    token = raw.header("x-amz-security-token")
    if cred.get("token"):
        if token != cred["token"]:
            raise codes.bad_token(model)
        if cred.get("expires") is not None and emulator.clock.now() > cred["expires"]:
            raise codes.bad_token(model, expired=True)
    elif token:
        raise codes.bad_token(model)

    amz_date, ts = _amz_time(raw)
    if amz_date is None:
        raise codes.incomplete_signature(model, "Authorization header requires existence of "
                                         "either a 'X-Amz-Date' or a 'Date' header.")
    now = time.time()  # real time: the control API's clock offset is for simulations
    if abs(now - ts) > MAX_SKEW_SECONDS:
        raise codes.skewed(model, amz_date, now)
    if auth.date != amz_date[:8]:
        raise codes.bad_signature(model, "Date in Credential scope does not match YYYYMMDD "
                                  "from ISO-8601 version of date from HTTP: "
                                  f"'{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.")
    regions = {emulator.region}
    if model.service_name in GLOBAL_SERVICES:
        regions.add("us-east-1")
    if auth.region not in regions:
        if s3:
            raise AwsError("AuthorizationHeaderMalformed", "The authorization header is "
                           f"malformed; the region '{auth.region}' is wrong; expecting "
                           f"'{emulator.region}'", status=400)
        raise codes.bad_signature(model, "Credential should be scoped to a valid region, "
                                  f"not '{auth.region}'. ")
    expected_service = model.metadata.get("signingName") or model.metadata["endpointPrefix"]
    if auth.service != expected_service:
        raise codes.bad_signature(model, "Credential should be scoped to correct service: "
                                  f"'{expected_service}'. ")
    if "host" not in auth.signed_headers:
        raise codes.bad_signature(model, "'Host' must be a 'SignedHeader' in the AWS "
                                  "Authorization.")
    for name in auth.signed_headers:
        if name not in raw.headers:
            raise codes.bad_signature(model, f"The header '{name}' is signed but absent.")

    content_sha = raw.header("x-amz-content-sha256")
    if s3 and content_sha is None:
        raise AwsError("InvalidRequest", "Missing required header for this request: "
                       "x-amz-content-sha256")
    if content_sha is not None and content_sha not in UNSIGNED_PAYLOADS:
        if content_sha.startswith("STREAMING-"):
            raise codes.not_implemented(model, "chunked (" + content_sha + ") uploads")
        if content_sha != hashlib.sha256(raw.body).hexdigest():
            raise AwsError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                           "header does not match what was computed.", status=400)

    host = raw.header("host") or "localhost"
    path = urllib.parse.quote(urllib.parse.unquote(raw.raw_path), safe="/~") if s3 else raw.raw_path
    request = AWSRequest(method=raw.method, url=f"http://{host}{path}", data=raw.body)
    request.params = _query_pairs(raw.raw_query)
    if content_sha is not None and "x-amz-content-sha256" in auth.signed_headers:
        request.headers["X-Amz-Content-SHA256"] = content_sha
    request.context["timestamp"] = amz_date
    credentials = Credentials(auth.access_key, cred["secret"], cred.get("token"))
    cls = _S3Signer if s3 else _Signer
    signer = cls(credentials, auth.service, auth.region, auth.signed_headers, raw)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, auth.signature):
        raise codes.bad_signature(model)
    return auth.access_key
