"""Test support: sample values for any botocore shape (valid against its
constraints except regex patterns), and comparison after a round trip."""

import datetime

SAMPLE_TIME = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)

# S3 input members whose sample values botocore would turn into transport
# behaviour (checksums, framing) rather than plain headers.
SKIP_MEMBERS = {"ContentLength", "ContentMD5", "ChecksumAlgorithm", "ChecksumCRC32",
                "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "SSECustomerKeyMD5",
                "CopySourceSSECustomerKeyMD5", "SSECustomerKey", "CopySourceSSECustomerKey",
                "ExpectedBucketOwner", "ExpectedSourceBucketOwner", "Expires", "MFA"}


def sample(shape, depth=0, name="", s3=False):
    """A value for ``shape``; structures get every member up to a depth."""
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        out = {}
        if depth > 5 or shape.metadata.get("document"):
            return out
        for key, member in shape.members.items():
            if s3 and key in SKIP_MEMBERS:
                continue
            if member.serialization.get("eventstream") or member.type_name == "structure" and \
                    member.metadata.get("document"):
                continue
            if depth >= 4 and key not in shape.required_members:
                continue
            out[key] = sample(member, depth + 1, key, s3)
        return out
    if t == "list":
        n = max(1, meta.get("min", 1))
        return [sample(shape.member, depth, name, s3) for _ in range(n)]
    if t == "map":
        return {"k1": sample(shape.value, depth, name, s3)}
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        lo, hi = meta.get("min", 1), meta.get("max", 32)
        n = min(max(lo, 5), hi)
        return ("v" + name.lower() + "x" * n)[:n] if n >= 1 else ""
    if t in ("integer", "long"):
        lo, hi = meta.get("min", 1), meta.get("max", 10**6)
        return int(min(max(lo, 3), hi))
    if t in ("float", "double"):
        lo = meta.get("min", 0)
        return float(max(lo, 1.5))
    if t == "boolean":
        return True
    if t == "timestamp":
        return SAMPLE_TIME
    if t == "blob":
        return b"blob-bytes"
    raise AssertionError(f"no sample for {t}")


def normalize(value):
    """Comparable form: datetimes to UTC epoch, bytes kept, dict/list deep."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return round(value.timestamp(), 3)
    if isinstance(value, bytearray):
        return bytes(value)
    return value
