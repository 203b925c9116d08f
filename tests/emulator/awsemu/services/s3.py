"""S3: buckets (location constraints, default encryption and Block Public
Access as new buckets get them since 2023, versioning, tags), objects with
versions and delete markers, listing with delimiters and pagination, copy,
multipart uploads (listed, with their parts), lifecycle configurations.
REST-XML protocol.

Objects are kept in memory; ETags are quoted MD5 hex (multipart: MD5 of the
part digests, "-N"). Range GETs answer the requested bytes with
ContentRange. Of the lifecycle actions only AbortIncompleteMultipartUpload is
carried out (lazily, when uploads are next looked at: AWS acts within a day of
the abort date, here at it); the other rules are stored and returned. Not
modelled: ACLs, bucket policies, object lock, checksums other than
Content-MD5.
"""

import base64
import binascii
import datetime
import hashlib
import ipaddress
import json
import random
import re
import urllib.parse

from .. import base
from ..base import AwsError

MIN_PART = 5 * 1024 * 1024
MAX_KEYS = 1000
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
OWNER = {"DisplayName": "emulator", "ID": "7" * 64}
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
VERSION_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_UPLOADS = 1000
MAX_PARTS_LISTED = 1000
MAX_LIFECYCLE_RULES = 1000
LIFECYCLE_ACTIONS = ("Expiration", "Transitions", "NoncurrentVersionTransitions",
                     "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
FILTER_MEMBERS = ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")


def _err(code, msg, status=400, headers=None):
    return AwsError(code, msg, status, headers=headers)


def _no_bucket(name):
    return _err("NoSuchBucket", "The specified bucket does not exist", 404)


def _no_key():
    return _err("NoSuchKey", "The specified key does not exist.", 404)


def _valid_bucket_name(name):
    if not BUCKET_RE.match(name) or ".." in name or ".-" in name or "-." in name:
        return False
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return False
    try:
        ipaddress.IPv4Address(name)
        return False
    except ValueError:
        return True


def _etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def _unquote_etag(e):
    return (e or "").strip().strip('"')


def _malformed():
    return _err("MalformedXML", "The XML you provided was not well-formed or did not validate "
                "against our published schema")


def _rule_prefix(rule):
    """The key prefix a lifecycle rule applies to, or None when it selects by
    tags (or object size, which uploads in progress do not have)."""
    if "Prefix" in rule and "Filter" not in rule:
        return rule.get("Prefix") or ""
    f = rule.get("Filter") or {}
    if any(k in f for k in ("Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan")):
        return None
    if "And" in f:
        a = f["And"]
        if a.get("Tags") or "ObjectSizeGreaterThan" in a or "ObjectSizeLessThan" in a:
            return None
        return a.get("Prefix") or ""
    return f.get("Prefix") or ""


def _next_midnight(when):
    """AWS rounds lifecycle dates up to the next midnight UTC."""
    day = datetime.datetime(when.year, when.month, when.day, tzinfo=datetime.timezone.utc)
    return day + datetime.timedelta(days=1)


class S3(base.Service):
    SERVICE = "s3"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.buckets = {}
        self.rng = random.Random(getattr(emulator, "seed", 0) or 0)

    # ---- helpers -----------------------------------------------------------
    def _version_id(self):
        return "".join(self.rng.choice(VERSION_CHARS) for _ in range(32))

    def _bucket(self, req, name):
        b = self.buckets.get(name)
        if b is None:
            raise _no_bucket(name)
        if req.region and req.region != b["region"]:
            raise _err("AuthorizationHeaderMalformed", "The authorization header is malformed; "
                       f"the region '{req.region}' is wrong; expecting '{b['region']}'", 400,
                       {"x-amz-bucket-region": b["region"]})
        return b

    @staticmethod
    def _latest(b, key):
        versions = b["objects"].get(key)
        return versions[-1] if versions else None

    def _sse(self, b):
        rule = b["encryption"][0]["ApplyServerSideEncryptionByDefault"]
        out = {"ServerSideEncryption": "aws:kms" if rule["SSEAlgorithm"].startswith("aws:kms")
               else "AES256"}
        if rule.get("KMSMasterKeyID"):
            out["SSEKMSKeyId"] = rule["KMSMasterKeyID"]
        if b["encryption"][0].get("BucketKeyEnabled"):
            out["BucketKeyEnabled"] = True
        return out

    def _store(self, b, key, record):
        """Add a new current version of ``key`` per the bucket's versioning."""
        versions = b["objects"].setdefault(key, [])
        if b["versioning"] == "Enabled":
            record["VersionId"] = self._version_id()
        else:   # unversioned or suspended: the "null" version is replaced
            record["VersionId"] = "null"
            versions[:] = [v for v in versions if v["VersionId"] != "null"]
        versions.append(record)
        return record

    def _record(self, body, params, now):
        meta = {k.lower(): v for k, v in (params.get("Metadata") or {}).items()}
        rec = {"body": body, "ETag": _etag(body), "LastModified": now, "Metadata": meta,
               "ContentType": params.get("ContentType") or "binary/octet-stream",
               "delete_marker": False, "parts": None}
        for k in ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage",
                  "Expires", "WebsiteRedirectLocation", "StorageClass"):
            if params.get(k) is not None:
                rec[k] = params[k]
        tagging = params.get("Tagging")
        rec["tags"] = dict(urllib.parse.parse_qsl(tagging)) if tagging else {}
        return rec

    # ---- buckets ---------------------------------------------------------------
    def CreateBucket(self, req, params):
        name = params["Bucket"]
        if not _valid_bucket_name(name):
            raise _err("InvalidBucketName", "The specified bucket is not valid.")
        lc = (params.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        region = req.region or "us-east-1"
        if region == "us-east-1":
            if lc == "us-east-1":
                raise _err("InvalidLocationConstraint",
                           "The specified location-constraint is not valid")
            target = lc or "us-east-1"
        else:
            if not lc:
                raise _err("IllegalLocationConstraintException",
                           "The unspecified location constraint is incompatible for the "
                           "region specific endpoint this request was sent to.")
            if lc != region:
                raise _err("IllegalLocationConstraintException",
                           f"The {lc} location constraint is incompatible for the region "
                           "specific endpoint this request was sent to.")
            target = lc
        with self.lock:
            old = self.buckets.get(name)
            if old is not None:
                if old["region"] == "us-east-1" and region == "us-east-1":
                    return {"Location": "/" + name}   # legacy us-east-1 behaviour
                raise _err("BucketAlreadyOwnedByYou", "Your previous request to create the "
                           "named bucket succeeded and you already own it.", 409)
            self.buckets[name] = {
                "name": name, "region": target, "created": self.clock.utcnow(),
                "versioning": None, "objects": {}, "uploads": {}, "lifecycle": None,
                "encryption": [{"ApplyServerSideEncryptionByDefault":
                                {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}],
                "pab": {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                        "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
                "tags": None}
        loc = "/" + name if target == "us-east-1" else \
            f"http://{name}.s3.amazonaws.com/"
        return {"Location": loc}

    def HeadBucket(self, req, params):
        with self.lock:
            b = self.buckets.get(params["Bucket"])
            if b is None:
                raise _no_bucket(params["Bucket"])
            if req.region and req.region != b["region"]:
                raise _err("PermanentRedirect", "The bucket is in another region.", 301,
                           {"x-amz-bucket-region": b["region"]})
        return {}

    def DeleteBucket(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            if any(b["objects"].values()):
                msg = "The bucket you tried to delete is not empty"
                if b["versioning"]:
                    msg += ". You must delete all versions in the bucket."
                raise _err("BucketNotEmpty", msg, 409)
            del self.buckets[b["name"]]
        return {}

    def PutBucketVersioning(self, req, params):
        cfg = params["VersioningConfiguration"]
        status = cfg.get("Status")
        if status is None and cfg.get("MFADelete") is None:
            raise _err("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema")
        if cfg.get("MFADelete") == "Enabled" and not params.get("MFA"):
            raise _err("InvalidRequest", "DevPay and Mfa are mutually exclusive "
                       "authorization methods.")
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            if status is not None:
                b["versioning"] = status
        return {}

    def GetBucketVersioning(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            return {"Status": b["versioning"]} if b["versioning"] else {}

    def PutBucketEncryption(self, req, params):
        rules = params["ServerSideEncryptionConfiguration"]["Rules"]
        if len(rules) != 1:
            raise _err("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema")
        d = rules[0].get("ApplyServerSideEncryptionByDefault")
        if not d or d.get("SSEAlgorithm") not in SSE_ALGORITHMS:
            raise _err("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema")
        if d.get("KMSMasterKeyID") and not d["SSEAlgorithm"].startswith("aws:kms"):
            raise _err("InvalidArgument", "a KMSMasterKeyID is not applicable if the default "
                       "sse algorithm is not aws:kms or aws:kms:dsse")
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            b["encryption"] = [{"ApplyServerSideEncryptionByDefault": dict(d),
                                "BucketKeyEnabled": bool(rules[0].get("BucketKeyEnabled"))}]
        return {}

    def GetBucketEncryption(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            if not b["encryption"]:
                raise _err("ServerSideEncryptionConfigurationNotFoundError",
                           "The server side encryption configuration was not found", 404)
            return {"ServerSideEncryptionConfiguration": {"Rules": b["encryption"]}}

    def PutPublicAccessBlock(self, req, params):
        cfg = params["PublicAccessBlockConfiguration"]
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            b["pab"] = {k: bool(cfg.get(k, False)) for k in (
                "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                "RestrictPublicBuckets")}
        return {}

    def GetPublicAccessBlock(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            if b["pab"] is None:
                raise _err("NoSuchPublicAccessBlockConfiguration", "The public access block "
                           "configuration was not found", 404)
            return {"PublicAccessBlockConfiguration": dict(b["pab"])}

    def PutBucketTagging(self, req, params):
        tags = params["Tagging"]["TagSet"]
        seen = set()
        for t in tags:
            if t["Key"] in seen:
                raise _err("InvalidTag", "Cannot provide multiple Tags with the same key")
            seen.add(t["Key"])
            if t["Key"].startswith("aws:"):
                raise _err("InvalidTag", "System tags cannot be added/updated by requester")
            if not 1 <= len(t["Key"]) <= 128 or len(t["Value"]) > 256:
                raise _err("InvalidTag", "The TagKey you have provided is invalid")
        if len(tags) > 50:
            raise _err("BadRequest", "Bucket tag count cannot be greater than 50")
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            b["tags"] = [{"Key": t["Key"], "Value": t["Value"]} for t in tags] or None
        return {}

    def GetBucketTagging(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            if not b["tags"]:
                raise _err("NoSuchTagSet", "The TagSet does not exist", 404)
            return {"TagSet": list(b["tags"])}

    # ---- objects -----------------------------------------------------------------
    def PutObject(self, req, params):
        key = params["Key"]
        if len(key.encode()) > 1024:
            raise _err("KeyTooLongError", "Your key is too long")
        body = params.get("Body") or b""
        if isinstance(body, str):
            body = body.encode()
        self._check_md5(params.get("ContentMD5"), body)
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            rec = self._store(b, key, self._record(body, params, self.clock.utcnow()))
            out = {"ETag": rec["ETag"]}
            out.update(self._sse(b))
            if b["versioning"]:
                out["VersionId"] = rec["VersionId"]
            return out

    @staticmethod
    def _check_md5(md5, body):
        if md5 is None:
            return
        try:
            digest = base64.b64decode(md5, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 16:
            raise _err("InvalidDigest", "The Content-MD5 you specified was invalid.")
        if digest != hashlib.md5(body).digest():
            raise _err("BadDigest", "The Content-MD5 you specified did not match what we "
                       "received.")

    def _version(self, b, key, version_id):
        versions = b["objects"].get(key) or []
        if version_id is None:
            return versions[-1] if versions else None
        for v in versions:
            if v["VersionId"] == version_id:
                return v
        if version_id != "null" and b["versioning"] is None:
            raise _err("InvalidArgument", "Invalid version id specified")
        raise _err("NoSuchVersion", "The specified version does not exist.", 404)

    def _object_headers(self, b, key, params):
        vid = params.get("VersionId")
        rec = self._version(b, key, vid)
        if rec is None:
            raise _no_key()
        if rec["delete_marker"]:
            hdrs = {"x-amz-delete-marker": "true", "x-amz-version-id": rec["VersionId"]}
            if vid is not None:
                raise _err("MethodNotAllowed", "The specified method is not allowed against "
                           "this resource.", 405, hdrs)
            raise _err("NoSuchKey", "The specified key does not exist.", 404, hdrs)
        if params.get("IfMatch") and _unquote_etag(params["IfMatch"]) not in (
                "*", _unquote_etag(rec["ETag"])):
            raise _err("PreconditionFailed", "At least one of the pre-conditions you specified "
                       "did not hold", 412)
        if params.get("IfNoneMatch") and _unquote_etag(params["IfNoneMatch"]) in (
                "*", _unquote_etag(rec["ETag"])):
            raise _err("NotModified", "Not Modified", 304)
        out = {"ETag": rec["ETag"], "LastModified": rec["LastModified"],
               "ContentLength": len(rec["body"]), "ContentType": rec["ContentType"],
               "Metadata": dict(rec["Metadata"]), "AcceptRanges": "bytes"}
        for k in ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage",
                  "Expires", "WebsiteRedirectLocation"):
            if rec.get(k) is not None:
                out[k] = rec[k]
        if rec.get("StorageClass") and rec["StorageClass"] != "STANDARD":
            out["StorageClass"] = rec["StorageClass"]
        if b["versioning"]:
            out["VersionId"] = rec["VersionId"]
        if rec["parts"]:
            out["PartsCount"] = rec["parts"]
        if rec["tags"]:
            out["TagCount"] = len(rec["tags"])
        out.update(self._sse(b))
        return rec, out

    def GetObject(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            rec, out = self._object_headers(b, params["Key"], params)
            body = rec["body"]
        if params.get("Range"):
            m = RANGE_RE.match(params["Range"].replace(" ", ""))
            size = len(body)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    first = int(m.group(1))
                    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:
                    first, last = max(0, size - int(m.group(2))), size - 1
                if first >= size or last < first:
                    raise _err("InvalidRange", "The requested range is not satisfiable", 416)
                body = body[first:last + 1]
                out["ContentRange"] = f"bytes {first}-{last}/{size}"
                out["ContentLength"] = len(body)
        for q, k in (("ResponseContentType", "ContentType"),
                     ("ResponseCacheControl", "CacheControl"),
                     ("ResponseContentDisposition", "ContentDisposition"),
                     ("ResponseContentEncoding", "ContentEncoding"),
                     ("ResponseContentLanguage", "ContentLanguage")):
            if params.get(q):
                out[k] = params[q]
        out["Body"] = body
        return out

    def HeadObject(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            _, out = self._object_headers(b, params["Key"], params)
            return out

    def DeleteObject(self, req, params):
        key, vid = params["Key"], params.get("VersionId")
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            versions = b["objects"].get(key) or []
            if vid is not None:
                rec = self._version(b, key, vid)
                versions.remove(rec)
                if not versions:
                    b["objects"].pop(key, None)
                out = {"VersionId": vid}
                if rec["delete_marker"]:
                    out["DeleteMarker"] = True
                return out
            if b["versioning"] is None:
                b["objects"].pop(key, None)
                return {}
            marker = self._store(b, key, {"delete_marker": True, "body": b"",
                                          "LastModified": self.clock.utcnow(), "ETag": None,
                                          "Metadata": {}, "parts": None, "tags": {}})
            return {"DeleteMarker": True, "VersionId": marker["VersionId"]}

    def CopyObject(self, req, params):
        src = urllib.parse.unquote(params["CopySource"])
        src_vid = None
        if "?versionId=" in src:
            src, src_vid = src.split("?versionId=", 1)
        src = src.lstrip("/")
        if "/" not in src:
            raise _err("InvalidArgument", "Invalid copy source object key")
        src_bucket, src_key = src.split("/", 1)
        directive = params.get("MetadataDirective") or "COPY"
        with self.lock:
            sb = self.buckets.get(src_bucket)
            if sb is None:
                raise _no_bucket(src_bucket)
            rec = self._version(sb, src_key, src_vid)
            if rec is None:
                raise _no_key()
            if rec["delete_marker"]:
                if src_vid is not None:
                    raise _err("InvalidRequest", "The source of a copy request may not "
                               "specifically refer to a delete marker by version id.")
                raise _no_key()
            if params.get("CopySourceIfMatch") and _unquote_etag(
                    params["CopySourceIfMatch"]) != _unquote_etag(rec["ETag"]):
                raise _err("PreconditionFailed", "At least one of the pre-conditions you "
                           "specified did not hold", 412)
            db = self._bucket(req, params["Bucket"])
            same = src_bucket == params["Bucket"] and src_key == params["Key"]
            if same and directive == "COPY" and not any(params.get(k) for k in (
                    "StorageClass", "WebsiteRedirectLocation", "ServerSideEncryption")):
                raise _err("InvalidRequest", "This copy request is illegal because it is "
                           "trying to copy an object to itself without changing the object's "
                           "metadata, storage class, website redirect location or encryption "
                           "attributes.")
            now = self.clock.utcnow()
            if directive == "REPLACE":
                new = self._record(rec["body"], params, now)
            else:
                new = dict(rec, LastModified=now, Metadata=dict(rec["Metadata"]),
                           tags=dict(rec["tags"]))
                new.pop("VersionId", None)
            if (params.get("TaggingDirective") or "COPY") == "REPLACE":
                new["tags"] = dict(urllib.parse.parse_qsl(params.get("Tagging") or ""))
            new = self._store(db, params["Key"], new)
            out = {"CopyObjectResult": {"ETag": new["ETag"], "LastModified": now}}
            out.update(self._sse(db))
            if db["versioning"]:
                out["VersionId"] = new["VersionId"]
            if sb["versioning"]:
                out["CopySourceVersionId"] = rec["VersionId"]
            return out

    # ---- listing ----------------------------------------------------------------------
    @staticmethod
    def _encode(value, enc):
        return urllib.parse.quote(value, safe="/") if enc == "url" and value else value

    def ListObjectsV2(self, req, params):
        prefix = params.get("Prefix") or ""
        delim = params.get("Delimiter") or ""
        limit = params.get("MaxKeys")
        limit = MAX_KEYS if limit is None else max(0, min(limit, MAX_KEYS))
        enc = params.get("EncodingType")
        after, skip_prefix = params.get("StartAfter") or "", None
        if params.get("ContinuationToken"):
            try:
                tok = json.loads(base64.b64decode(params["ContinuationToken"]).decode())
                after, skip_prefix = tok["k"], tok.get("cp")
            except (ValueError, KeyError, TypeError):
                raise _err("InvalidArgument", "The continuation token provided is "
                           "incorrect") from None
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            keys = sorted(k for k, vs in b["objects"].items()
                          if vs and not vs[-1]["delete_marker"] and k.startswith(prefix))
            contents, prefixes, truncated, last = [], [], False, None
            for k in keys:
                if k <= after or (skip_prefix and k.startswith(skip_prefix)):
                    continue
                cp = None
                if delim:
                    i = k.find(delim, len(prefix))
                    if i >= 0:
                        cp = k[:i + len(delim)]
                if cp is not None and prefixes and prefixes[-1] == cp:
                    continue
                if len(contents) + len(prefixes) >= limit:
                    truncated = True
                    break
                if cp is not None:
                    prefixes.append(cp)
                    last = (cp, True)
                else:
                    rec = b["objects"][k][-1]
                    item = {"Key": self._encode(k, enc), "LastModified": rec["LastModified"],
                            "ETag": rec["ETag"], "Size": len(rec["body"]),
                            "StorageClass": rec.get("StorageClass") or "STANDARD"}
                    if params.get("FetchOwner"):
                        item["Owner"] = dict(OWNER)
                    contents.append(item)
                    last = (k, False)
        out = {"IsTruncated": truncated, "Contents": contents, "Name": b["name"],
               "Prefix": self._encode(prefix, enc), "MaxKeys": limit,
               "KeyCount": len(contents) + len(prefixes),
               "CommonPrefixes": [{"Prefix": self._encode(p, enc)} for p in prefixes]}
        if delim:
            out["Delimiter"] = self._encode(delim, enc)
        if enc:
            out["EncodingType"] = enc
        if params.get("ContinuationToken"):
            out["ContinuationToken"] = params["ContinuationToken"]
        if params.get("StartAfter"):
            out["StartAfter"] = self._encode(params["StartAfter"], enc)
        if truncated and last is not None:
            tok = {"k": last[0], "cp": last[0] if last[1] else None}
            out["NextContinuationToken"] = base64.b64encode(json.dumps(tok).encode()).decode()
        return out

    def ListObjectVersions(self, req, params):
        prefix = params.get("Prefix") or ""
        delim = params.get("Delimiter") or ""
        limit = params.get("MaxKeys")
        limit = MAX_KEYS if limit is None else max(0, min(limit, MAX_KEYS))
        enc = params.get("EncodingType")
        key_marker = params.get("KeyMarker") or ""
        vid_marker = params.get("VersionIdMarker")
        if vid_marker and not key_marker:
            raise _err("InvalidArgument", "A version-id marker cannot be specified without a "
                       "key marker.")
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            versions, markers, prefixes = [], [], []
            truncated, next_key, next_vid = False, None, None
            count = 0
            for k in sorted(b["objects"]):
                if not k.startswith(prefix):
                    continue
                if k < key_marker or (k == key_marker and not vid_marker):
                    continue
                cp = None
                if delim:
                    i = k.find(delim, len(prefix))
                    if i >= 0:
                        cp = k[:i + len(delim)]
                if cp is not None:
                    if (prefixes and prefixes[-1] == cp) or (key_marker and
                                                             key_marker.startswith(cp)):
                        continue
                    if count >= limit:
                        truncated = True
                        break
                    prefixes.append(cp)
                    next_key, next_vid = cp, None
                    count += 1
                    continue
                vs = list(reversed(b["objects"][k]))
                if k == key_marker and vid_marker:
                    ids = [v["VersionId"] for v in vs]
                    if vid_marker not in ids:
                        raise _err("InvalidArgument", "Invalid version id specified")
                    vs = vs[ids.index(vid_marker) + 1:]
                latest = b["objects"][k][-1]
                for v in vs:
                    if count >= limit:
                        truncated = True
                        break
                    item = {"Key": self._encode(k, enc), "VersionId": v["VersionId"],
                            "IsLatest": v is latest, "LastModified": v["LastModified"],
                            "Owner": dict(OWNER)}
                    if v["delete_marker"]:
                        markers.append(item)
                    else:
                        item.update(ETag=v["ETag"], Size=len(v["body"]),
                                    StorageClass="STANDARD")
                        versions.append(item)
                    next_key, next_vid = k, v["VersionId"]
                    count += 1
                if truncated:
                    break
        out = {"IsTruncated": truncated, "KeyMarker": key_marker, "Versions": versions,
               "DeleteMarkers": markers, "Name": b["name"], "Prefix": self._encode(prefix, enc),
               "MaxKeys": limit,
               "CommonPrefixes": [{"Prefix": self._encode(p, enc)} for p in prefixes]}
        if vid_marker:
            out["VersionIdMarker"] = vid_marker
        if delim:
            out["Delimiter"] = self._encode(delim, enc)
        if enc:
            out["EncodingType"] = enc
        if truncated:
            out["NextKeyMarker"] = self._encode(next_key, enc)
            if next_vid:
                out["NextVersionIdMarker"] = next_vid
        return out

    # ---- multipart ---------------------------------------------------------------------
    def CreateMultipartUpload(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            uid = base64.urlsafe_b64encode(self.rng.getrandbits(480).to_bytes(60, "big")
                                           ).decode().rstrip("=")
            up = {"key": params["Key"], "parts": {}, "params": dict(params),
                  "initiated": self.clock.utcnow(),
                  "StorageClass": params.get("StorageClass") or "STANDARD"}
            b["uploads"][uid] = up
            out = {"Bucket": b["name"], "Key": params["Key"], "UploadId": uid}
            out.update(self._abort_headers(b, up))
            out.update(self._sse(b))
            return out

    def _abort_rule(self, b, key):
        """(rule id, days) of the enabled AbortIncompleteMultipartUpload rule
        that applies to ``key`` soonest, or None."""
        best = None
        for rule in b["lifecycle"] or []:
            days = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
            prefix = _rule_prefix(rule)
            if rule.get("Status") != "Enabled" or days is None or prefix is None or \
                    not key.startswith(prefix):
                continue
            if best is None or days < best[1]:
                best = (rule["ID"], days)
        return best

    def _abort_date(self, b, up):
        rule = self._abort_rule(b, up["key"])
        if rule is None:
            return None, None
        return rule[0], _next_midnight(up["initiated"] + datetime.timedelta(days=rule[1]))

    def _abort_headers(self, b, up):
        rule_id, when = self._abort_date(b, up)
        return {"AbortDate": when, "AbortRuleId": rule_id} if rule_id else {}

    def _expire_uploads(self, b):
        """Carries out the bucket's AbortIncompleteMultipartUpload rules."""
        now = self.clock.utcnow()
        for uid, up in list(b["uploads"].items()):
            _, when = self._abort_date(b, up)
            if when is not None and when <= now:
                del b["uploads"][uid]

    def _upload(self, b, params):
        self._expire_uploads(b)
        up = b["uploads"].get(params["UploadId"])
        if up is None or up["key"] != params["Key"]:
            raise _err("NoSuchUpload", "The specified upload does not exist. The upload ID may "
                       "be invalid, or the upload may have been aborted or completed.", 404)
        return up

    def UploadPart(self, req, params):
        n = params["PartNumber"]
        if not 1 <= n <= 10000:
            raise _err("InvalidArgument", "Part number must be an integer between 1 and 10000, "
                       "inclusive")
        body = params.get("Body") or b""
        self._check_md5(params.get("ContentMD5"), body)
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            up = self._upload(b, params)
            etag = _etag(body)
            up["parts"][n] = {"body": body, "ETag": etag, "LastModified": self.clock.utcnow()}
            out = {"ETag": etag}
            out.update(self._sse(b))
            return out

    def CompleteMultipartUpload(self, req, params):
        parts = (params.get("MultipartUpload") or {}).get("Parts") or []
        if not parts:
            raise _err("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema")
        numbers = [p.get("PartNumber") for p in parts]
        if any(n is None for n in numbers) or numbers != sorted(numbers) or \
                len(set(numbers)) != len(numbers):
            raise _err("InvalidPartOrder", "The list of parts was not in ascending order. Parts "
                       "must be ordered by part number.")
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            up = self._upload(b, params)
            chosen = []
            for p in parts:
                have = up["parts"].get(p["PartNumber"])
                if have is None or _unquote_etag(p.get("ETag")) != _unquote_etag(have["ETag"]):
                    raise _err("InvalidPart", "One or more of the specified parts could not be "
                               "found.  The part may not have been uploaded, or the specified "
                               "entity tag may not have matched the part's entity tag.")
                chosen.append(have)
            for have in chosen[:-1]:
                if len(have["body"]) < MIN_PART:
                    raise _err("EntityTooSmall", "Your proposed upload is smaller than the "
                               "minimum allowed object size.")
            body = b"".join(h["body"] for h in chosen)
            digest = hashlib.md5(b"".join(bytes.fromhex(_unquote_etag(h["ETag"]))
                                          for h in chosen)).hexdigest()
            rec = self._record(body, up["params"], self.clock.utcnow())
            rec["ETag"] = f'"{digest}-{len(chosen)}"'
            rec["parts"] = len(chosen)
            rec = self._store(b, params["Key"], rec)
            del b["uploads"][params["UploadId"]]
            out = {"Location": f"https://{b['name']}.s3.{b['region']}.amazonaws.com/"
                               f"{urllib.parse.quote(params['Key'])}",
                   "Bucket": b["name"], "Key": params["Key"], "ETag": rec["ETag"]}
            out.update(self._sse(b))
            if b["versioning"]:
                out["VersionId"] = rec["VersionId"]
            return out

    def AbortMultipartUpload(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            self._upload(b, params)
            del b["uploads"][params["UploadId"]]
        return {}

    def ListMultipartUploads(self, req, params):
        prefix = params.get("Prefix") or ""
        delim = params.get("Delimiter") or ""
        limit = params.get("MaxUploads")
        limit = MAX_UPLOADS if limit is None else max(0, min(limit, MAX_UPLOADS))
        enc = params.get("EncodingType")
        key_marker = params.get("KeyMarker") or ""
        id_marker = params.get("UploadIdMarker") or ""
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            self._expire_uploads(b)
            # By key, then (for one key) by initiation time.
            ordered = sorted(b["uploads"].items(),
                             key=lambda item: (item[1]["key"], item[1]["initiated"], item[0]))
            skip_same = []
            if key_marker and id_marker:
                same = [uid for uid, up in ordered if up["key"] == key_marker]
                skip_same = same[:same.index(id_marker) + 1] if id_marker in same else same
            uploads, prefixes, truncated, last = [], [], False, None
            for uid, up in ordered:
                k = up["key"]
                if not k.startswith(prefix):
                    continue
                if key_marker:
                    if k < key_marker:
                        continue
                    if k == key_marker and (not id_marker or uid in skip_same):
                        continue
                cp = None
                if delim:
                    i = k.find(delim, len(prefix))
                    if i >= 0:
                        cp = k[:i + len(delim)]
                if cp is not None and ((prefixes and prefixes[-1] == cp) or
                                       (key_marker and key_marker.startswith(cp))):
                    continue
                if len(uploads) + len(prefixes) >= limit:
                    truncated = True
                    break
                if cp is not None:
                    prefixes.append(cp)
                    last = (cp, None)
                    continue
                uploads.append({"UploadId": uid, "Key": self._encode(k, enc),
                                "Initiated": up["initiated"], "StorageClass": up["StorageClass"],
                                "Owner": dict(OWNER), "Initiator": {
                                    "ID": f"arn:aws:iam::{req.account}:user/emulator",
                                    "DisplayName": "emulator"}})
                last = (k, uid)
        out = {"Bucket": b["name"], "KeyMarker": self._encode(key_marker, enc),
               "UploadIdMarker": id_marker, "MaxUploads": limit, "IsTruncated": truncated,
               "Uploads": uploads, "Prefix": self._encode(prefix, enc),
               "CommonPrefixes": [{"Prefix": self._encode(p, enc)} for p in prefixes]}
        if delim:
            out["Delimiter"] = self._encode(delim, enc)
        if enc:
            out["EncodingType"] = enc
        if truncated and last is not None:
            out["NextKeyMarker"] = self._encode(last[0], enc)
            if last[1]:
                out["NextUploadIdMarker"] = last[1]
        return out

    def ListParts(self, req, params):
        limit = params.get("MaxParts")
        limit = MAX_PARTS_LISTED if limit is None else max(0, min(limit, MAX_PARTS_LISTED))
        marker = params.get("PartNumberMarker") or 0
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            up = self._upload(b, params)
            numbers = sorted(n for n in up["parts"] if n > marker)
            shown, truncated = numbers[:limit], len(numbers) > limit
            parts = [{"PartNumber": n, "LastModified": up["parts"][n]["LastModified"],
                      "ETag": up["parts"][n]["ETag"], "Size": len(up["parts"][n]["body"])}
                     for n in shown]
            out = {"Bucket": b["name"], "Key": up["key"], "UploadId": params["UploadId"],
                   "PartNumberMarker": marker, "MaxParts": limit, "IsTruncated": truncated,
                   "Parts": parts, "StorageClass": up["StorageClass"], "Owner": dict(OWNER),
                   "Initiator": {"ID": f"arn:aws:iam::{req.account}:user/emulator",
                                 "DisplayName": "emulator"}}
            if shown:
                out["NextPartNumberMarker"] = shown[-1]
            out.update(self._abort_headers(b, up))
            return out

    # ---- lifecycle ----------------------------------------------------------------------
    def PutBucketLifecycleConfiguration(self, req, params):
        headers = req.headers or {}
        if not any(h in headers for h in ("content-md5", "x-amz-checksum-crc32",
                                          "x-amz-checksum-crc32c", "x-amz-checksum-sha1",
                                          "x-amz-checksum-sha256")):
            raise _err("InvalidRequest", "Missing required header for this request: "
                       "Content-MD5")
        if "content-md5" in headers:
            self._check_md5(headers["content-md5"], req.body or b"")
        rules = (params.get("LifecycleConfiguration") or {}).get("Rules") or []
        if not rules or len(rules) > MAX_LIFECYCLE_RULES:
            raise _malformed()
        stored, ids = [], set()
        for rule in rules:
            rule = dict(rule)
            if ("Filter" in rule) == ("Prefix" in rule):
                raise _malformed()
            if "Filter" in rule and sum(k in rule["Filter"] for k in FILTER_MEMBERS) > 1:
                raise _malformed()
            if not any(rule.get(k) for k in LIFECYCLE_ACTIONS):
                raise _err("InvalidRequest", "At least one action needs to be specified in a "
                           "rule")
            rid = rule.get("ID")
            if rid is None:
                rid = rule["ID"] = "".join(self.rng.choice(VERSION_CHARS[:62])
                                           for _ in range(48))
            if len(rid) > 255:
                raise _err("InvalidArgument", "ID length should not exceed allowed limit of 255")
            if rid in ids:
                raise _err("InvalidArgument", "Rule ID must be unique. Found same ID for more "
                           "than one rule")
            ids.add(rid)
            abort = rule.get("AbortIncompleteMultipartUpload")
            if abort is not None:
                days = abort.get("DaysAfterInitiation")
                if days is None or days <= 0:
                    raise _err("InvalidArgument", "'DaysAfterInitiation' for "
                               "AbortIncompleteMultipartUpload action must be a positive "
                               "integer")
                if _rule_prefix(rule) is None:
                    raise _err("InvalidRequest", "AbortIncompleteMultipartUpload cannot be "
                               "specified with Tags.")
            stored.append(rule)
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            b["lifecycle"] = stored
        return {}

    def GetBucketLifecycleConfiguration(self, req, params):
        with self.lock:
            b = self._bucket(req, params["Bucket"])
            if not b["lifecycle"]:
                raise _err("NoSuchLifecycleConfiguration", "The lifecycle configuration does "
                           "not exist", 404)
            return {"Rules": [dict(r) for r in b["lifecycle"]]}
