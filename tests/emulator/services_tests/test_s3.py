"""S3 module: buckets and their configuration, objects with versions, listing
with delimiters and pagination, copy, multipart uploads."""

import base64
import hashlib

import pytest

from awsemu import base
from awsemu.base import AwsError
from awsemu.services.s3 import S3


def s3(region="us-east-1"):
    em = base.Emulator()
    em.register(S3)
    return em


def call(em, _op, _region="us-east-1", **params):
    return getattr(em.services["s3"], _op)(
        base.RequestContext(em, "s3", _op, _region, "AKIDEXAMPLE"), params)


def test_buckets_and_configuration():
    em = s3()
    for bad in ("ab", "Upper", "a..b", "192.168.1.1", "-abc", "abc-"):
        with pytest.raises(AwsError) as e:
            call(em, "CreateBucket", Bucket=bad)
        assert e.value.code == "InvalidBucketName"
    assert call(em, "CreateBucket", Bucket="models")["Location"] == "/models"
    assert call(em, "CreateBucket", Bucket="models")["Location"] == "/models"  # us-east-1 legacy
    with pytest.raises(AwsError) as e:
        call(em, "CreateBucket", Bucket="x-eu", CreateBucketConfiguration={
            "LocationConstraint": "us-east-1"})
    assert e.value.code == "InvalidLocationConstraint"
    with pytest.raises(AwsError) as e:
        call(em, "CreateBucket", "eu-west-1", Bucket="x-eu")
    assert e.value.code == "IllegalLocationConstraintException"
    with pytest.raises(AwsError) as e:
        call(em, "CreateBucket", "eu-west-1", Bucket="x-eu",
             CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    assert e.value.code == "IllegalLocationConstraintException"
    call(em, "CreateBucket", "eu-west-1", Bucket="x-eu",
         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(AwsError) as e:
        call(em, "CreateBucket", "eu-west-1", Bucket="x-eu",
             CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert e.value.code == "BucketAlreadyOwnedByYou" and e.value.status == 409
    with pytest.raises(AwsError) as e:
        call(em, "GetBucketVersioning", Bucket="x-eu")   # signed for us-east-1
    assert e.value.code == "AuthorizationHeaderMalformed"
    assert e.value.headers["x-amz-bucket-region"] == "eu-west-1"
    with pytest.raises(AwsError) as e:
        call(em, "HeadBucket", Bucket="missing")
    assert e.value.code == "NoSuchBucket" and e.value.status == 404
    assert call(em, "HeadBucket", Bucket="models") == {}
    # defaults of a new bucket (2023+): SSE-S3 and Block Public Access on
    enc = call(em, "GetBucketEncryption", Bucket="models")["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(call(em, "GetPublicAccessBlock", Bucket="models")[
        "PublicAccessBlockConfiguration"].values())
    call(em, "PutBucketEncryption", Bucket="models", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/models"},
            "BucketKeyEnabled": True}]})
    assert call(em, "PutObject", Bucket="models", Key="k", Body=b"x")[
        "ServerSideEncryption"] == "aws:kms"
    with pytest.raises(AwsError) as e:
        call(em, "PutBucketEncryption", Bucket="models", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "AES256", "KMSMasterKeyID": "k"}}]})
    assert e.value.code == "InvalidArgument"
    call(em, "PutPublicAccessBlock", Bucket="models", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True})
    assert call(em, "GetPublicAccessBlock", Bucket="models")[
        "PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is False
    with pytest.raises(AwsError) as e:
        call(em, "GetBucketTagging", Bucket="models")
    assert e.value.code == "NoSuchTagSet"
    call(em, "PutBucketTagging", Bucket="models",
         Tagging={"TagSet": [{"Key": "aviary.io/app", "Value": "fraud"}]})
    assert call(em, "GetBucketTagging", Bucket="models")["TagSet"] == [
        {"Key": "aviary.io/app", "Value": "fraud"}]
    with pytest.raises(AwsError) as e:
        call(em, "PutBucketTagging", Bucket="models", Tagging={"TagSet": [
            {"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})
    assert e.value.code == "InvalidTag"
    with pytest.raises(AwsError) as e:
        call(em, "DeleteBucket", Bucket="models")
    assert e.value.code == "BucketNotEmpty"
    call(em, "DeleteObject", Bucket="models", Key="k")
    call(em, "DeleteBucket", Bucket="models")
    with pytest.raises(AwsError) as e:
        call(em, "HeadBucket", Bucket="models")
    assert e.value.code == "NoSuchBucket"


def test_objects_and_versions():
    em = s3()
    call(em, "CreateBucket", Bucket="bkt")
    body = b"hello world"
    out = call(em, "PutObject", Bucket="bkt", Key="dir/a.txt", Body=body,
               Metadata={"Revision": "7"}, ContentType="text/plain",
               ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode())
    assert out["ETag"] == '"' + hashlib.md5(body).hexdigest() + '"'
    assert "VersionId" not in out   # versioning never enabled
    got = call(em, "GetObject", Bucket="bkt", Key="dir/a.txt")
    assert got["Body"] == body and got["ContentLength"] == 11
    assert got["Metadata"] == {"revision": "7"} and got["ContentType"] == "text/plain"
    rng = call(em, "GetObject", Bucket="bkt", Key="dir/a.txt", Range="bytes=6-")
    assert rng["Body"] == b"world" and rng["ContentRange"] == "bytes 6-10/11"
    with pytest.raises(AwsError) as e:
        call(em, "PutObject", Bucket="bkt", Key="x", Body=b"abc",
             ContentMD5=base64.b64encode(hashlib.md5(b"abd").digest()).decode())
    assert e.value.code == "BadDigest"
    with pytest.raises(AwsError) as e:
        call(em, "GetObject", Bucket="bkt", Key="nope")
    assert e.value.code == "NoSuchKey" and e.value.status == 404
    with pytest.raises(AwsError) as e:
        call(em, "GetObject", Bucket="bkt", Key="dir/a.txt", IfNoneMatch=out["ETag"])
    assert e.value.status == 304
    # versioning
    call(em, "PutBucketVersioning", Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
    assert call(em, "GetBucketVersioning", Bucket="bkt") == {"Status": "Enabled"}
    v1 = call(em, "PutObject", Bucket="bkt", Key="m", Body=b"one")["VersionId"]
    v2 = call(em, "PutObject", Bucket="bkt", Key="m", Body=b"two")["VersionId"]
    assert v1 != v2 and len(v1) == 32
    assert call(em, "GetObject", Bucket="bkt", Key="m")["Body"] == b"two"
    assert call(em, "GetObject", Bucket="bkt", Key="m", VersionId=v1)["Body"] == b"one"
    d = call(em, "DeleteObject", Bucket="bkt", Key="m")
    assert d["DeleteMarker"] is True
    with pytest.raises(AwsError) as e:
        call(em, "HeadObject", Bucket="bkt", Key="m")
    assert e.value.code == "NoSuchKey" and e.value.headers["x-amz-delete-marker"] == "true"
    with pytest.raises(AwsError) as e:
        call(em, "GetObject", Bucket="bkt", Key="m", VersionId=d["VersionId"])
    assert e.value.status == 405
    vers = call(em, "ListObjectVersions", Bucket="bkt", Prefix="m")
    assert [v["VersionId"] for v in vers["Versions"]] == [v2, v1]
    assert vers["DeleteMarkers"][0]["IsLatest"] is True
    keys = [c["Key"] for c in call(em, "ListObjectsV2", Bucket="bkt")["Contents"]]
    assert keys == ["dir/a.txt"]       # m is hidden by its delete marker
    call(em, "DeleteObject", Bucket="bkt", Key="m", VersionId=d["VersionId"])
    assert call(em, "GetObject", Bucket="bkt", Key="m")["Body"] == b"two"
    # suspended: the null version is replaced
    call(em, "PutBucketVersioning", Bucket="bkt", VersioningConfiguration={"Status": "Suspended"})
    assert call(em, "PutObject", Bucket="bkt", Key="m", Body=b"3")["VersionId"] == "null"
    call(em, "PutObject", Bucket="bkt", Key="m", Body=b"4")
    ids = [v["VersionId"] for v in call(em, "ListObjectVersions", Bucket="bkt",
                                         Prefix="m")["Versions"]]
    assert ids == ["null", v2, v1]
    # copy
    c = call(em, "CopyObject", Bucket="bkt", Key="copy", CopySource="/bkt/dir%2Fa.txt")
    assert c["CopyObjectResult"]["ETag"] == out["ETag"]
    assert call(em, "HeadObject", Bucket="bkt", Key="copy")["Metadata"] == {"revision": "7"}
    c = call(em, "CopyObject", Bucket="bkt", Key="old", CopySource=f"bkt/m?versionId={v1}",
             MetadataDirective="REPLACE", Metadata={"x": "y"})
    assert c["CopySourceVersionId"] == v1
    assert call(em, "GetObject", Bucket="bkt", Key="old")["Body"] == b"one"
    with pytest.raises(AwsError) as e:
        call(em, "CopyObject", Bucket="bkt", Key="copy", CopySource="bkt/copy")
    assert e.value.code == "InvalidRequest"
    with pytest.raises(AwsError) as e:
        call(em, "DeleteBucket", Bucket="bkt")
    assert e.value.code == "BucketNotEmpty"


def test_list_objects_pagination_and_delimiter():
    em = s3()
    call(em, "CreateBucket", Bucket="bkt")
    keys = [f"models/v{i:02d}/model.bin" for i in range(7)] + ["models/latest", "readme"]
    for k in keys:
        call(em, "PutObject", Bucket="bkt", Key=k, Body=k.encode())
    seen, token, pages = [], None, 0
    while True:
        extra = {"ContinuationToken": token} if token else {}
        out = call(em, "ListObjectsV2", Bucket="bkt", MaxKeys=4, **extra)
        seen += [c["Key"] for c in out["Contents"]]
        pages += 1
        assert out["KeyCount"] == len(out["Contents"])
        if not out["IsTruncated"]:
            break
        token = out["NextContinuationToken"]
    assert seen == sorted(keys) and pages == 3
    out = call(em, "ListObjectsV2", Bucket="bkt", Prefix="models/", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == [f"models/v{i:02d}/" for i in range(7)]
    assert [c["Key"] for c in out["Contents"]] == ["models/latest"]
    assert out["KeyCount"] == 8
    page = call(em, "ListObjectsV2", Bucket="bkt", Prefix="models/", Delimiter="/", MaxKeys=3)
    assert page["KeyCount"] == 3 and page["IsTruncated"]   # models/latest sorts first
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["models/v00/", "models/v01/"]
    rest = call(em, "ListObjectsV2", Bucket="bkt", Prefix="models/", Delimiter="/",
                ContinuationToken=page["NextContinuationToken"])
    assert [p["Prefix"] for p in rest["CommonPrefixes"]] == [
        f"models/v{i:02d}/" for i in range(2, 7)]
    assert rest["Contents"] == []
    assert call(em, "ListObjectsV2", Bucket="bkt", StartAfter="models/v06/model.bin")[
        "Contents"][0]["Key"] == "readme"
    vers = call(em, "ListObjectVersions", Bucket="bkt", MaxKeys=5)
    assert vers["IsTruncated"] and len(vers["Versions"]) == 5
    more = call(em, "ListObjectVersions", Bucket="bkt", KeyMarker=vers["NextKeyMarker"])
    assert len(more["Versions"]) == 4


def test_multipart_upload():
    em = s3()
    call(em, "CreateBucket", Bucket="bkt")
    up = call(em, "CreateMultipartUpload", Bucket="bkt", Key="big", Metadata={"k": "v"})["UploadId"]
    p1 = b"a" * (5 * 1024 * 1024)
    p2 = b"tail"
    e1 = call(em, "UploadPart", Bucket="bkt", Key="big", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = call(em, "UploadPart", Bucket="bkt", Key="big", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    with pytest.raises(AwsError) as e:
        call(em, "CompleteMultipartUpload", Bucket="bkt", Key="big", UploadId=up,
             MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                        {"PartNumber": 1, "ETag": e1}]})
    assert e.value.code == "InvalidPartOrder"
    with pytest.raises(AwsError) as e:
        call(em, "CompleteMultipartUpload", Bucket="bkt", Key="big", UploadId=up,
             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})
    assert e.value.code == "InvalidPart"
    out = call(em, "CompleteMultipartUpload", Bucket="bkt", Key="big", UploadId=up,
               MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                          {"PartNumber": 2, "ETag": e2}]})
    want = hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest()
    assert out["ETag"] == f'"{want}-2"'
    got = call(em, "GetObject", Bucket="bkt", Key="big")
    assert got["Body"] == p1 + p2 and got["Metadata"] == {"k": "v"} and got["PartsCount"] == 2
    with pytest.raises(AwsError) as e:
        call(em, "UploadPart", Bucket="bkt", Key="big", UploadId=up, PartNumber=3, Body=b"x")
    assert e.value.code == "NoSuchUpload"
    # parts smaller than 5 MiB before the last one
    up = call(em, "CreateMultipartUpload", Bucket="bkt", Key="small")["UploadId"]
    s1 = call(em, "UploadPart", Bucket="bkt", Key="small", UploadId=up, PartNumber=1,
              Body=b"x")["ETag"]
    s2 = call(em, "UploadPart", Bucket="bkt", Key="small", UploadId=up, PartNumber=2,
              Body=b"y")["ETag"]
    with pytest.raises(AwsError) as e:
        call(em, "CompleteMultipartUpload", Bucket="bkt", Key="small", UploadId=up,
             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1},
                                        {"PartNumber": 2, "ETag": s2}]})
    assert e.value.code == "EntityTooSmall"
    call(em, "AbortMultipartUpload", Bucket="bkt", Key="small", UploadId=up)
    with pytest.raises(AwsError) as e:
        call(em, "AbortMultipartUpload", Bucket="bkt", Key="small", UploadId=up)
    assert e.value.code == "NoSuchUpload"
    with pytest.raises(AwsError) as e:
        call(em, "UploadPart", Bucket="bkt", Key="big", UploadId=up, PartNumber=10001, Body=b"")
    assert e.value.code == "InvalidArgument"


def ctx(em, op, headers, body=b"", region="us-east-1"):
    return base.RequestContext(em, "s3", op, region, "AKIDEXAMPLE", headers=headers, body=body)


def test_list_multipart_uploads_and_parts():
    em = s3()
    call(em, "CreateBucket", Bucket="bkt")
    ids = {}
    for key in ("data/b.csv", "data/a.csv", "data/a.csv", "models/m.bin", "top"):
        uid = call(em, "CreateMultipartUpload", Bucket="bkt", Key=key)["UploadId"]
        ids.setdefault(key, []).append(uid)
        em.clock.offset += 1   # distinct initiation times
    out = call(em, "ListMultipartUploads", Bucket="bkt")
    got = [(u["Key"], u["UploadId"]) for u in out["Uploads"]]
    # by key, then by initiation time
    assert got == [("data/a.csv", ids["data/a.csv"][0]), ("data/a.csv", ids["data/a.csv"][1]),
                   ("data/b.csv", ids["data/b.csv"][0]), ("models/m.bin", ids["models/m.bin"][0]),
                   ("top", ids["top"][0])]
    assert out["IsTruncated"] is False and out["MaxUploads"] == 1000
    first = out["Uploads"][0]
    assert first["StorageClass"] == "STANDARD" and first["Initiated"] < out["Uploads"][-1][
        "Initiated"]
    assert first["Initiator"]["ID"].startswith("arn:aws:iam::")
    # prefix, delimiter
    out = call(em, "ListMultipartUploads", Bucket="bkt", Prefix="data/")
    assert [u["Key"] for u in out["Uploads"]] == ["data/a.csv", "data/a.csv", "data/b.csv"]
    out = call(em, "ListMultipartUploads", Bucket="bkt", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == ["data/", "models/"]
    assert [u["Key"] for u in out["Uploads"]] == ["top"]
    # pagination by key and upload id markers
    seen, kwargs = [], {}
    for _ in range(10):
        page = call(em, "ListMultipartUploads", Bucket="bkt", MaxUploads=2, **kwargs)
        seen += [(u["Key"], u["UploadId"]) for u in page["Uploads"]]
        if not page["IsTruncated"]:
            break
        kwargs = {"KeyMarker": page["NextKeyMarker"],
                  "UploadIdMarker": page["NextUploadIdMarker"]}
    assert seen == got
    page = call(em, "ListMultipartUploads", Bucket="bkt", KeyMarker="data/a.csv")
    assert [u["Key"] for u in page["Uploads"]] == ["data/b.csv", "models/m.bin", "top"]
    with pytest.raises(AwsError) as e:
        call(em, "ListMultipartUploads", Bucket="missing")
    assert e.value.code == "NoSuchBucket"

    # ListParts: sizes, ETags, last-modified times, pagination
    uid = ids["data/b.csv"][0]
    e1 = call(em, "UploadPart", Bucket="bkt", Key="data/b.csv", UploadId=uid, PartNumber=1,
              Body=b"x" * 10)["ETag"]
    em.clock.offset += 60
    call(em, "UploadPart", Bucket="bkt", Key="data/b.csv", UploadId=uid, PartNumber=3, Body=b"y")
    out = call(em, "ListParts", Bucket="bkt", Key="data/b.csv", UploadId=uid)
    assert [(p["PartNumber"], p["Size"]) for p in out["Parts"]] == [(1, 10), (3, 1)]
    assert out["Parts"][0]["ETag"] == e1
    assert (out["Parts"][1]["LastModified"] - out["Parts"][0]["LastModified"]).total_seconds() \
        >= 59
    assert out["IsTruncated"] is False and "AbortDate" not in out
    page = call(em, "ListParts", Bucket="bkt", Key="data/b.csv", UploadId=uid, MaxParts=1)
    assert page["IsTruncated"] is True and page["NextPartNumberMarker"] == 1
    page = call(em, "ListParts", Bucket="bkt", Key="data/b.csv", UploadId=uid,
                PartNumberMarker=1)
    assert [p["PartNumber"] for p in page["Parts"]] == [3] and page["IsTruncated"] is False
    with pytest.raises(AwsError) as e:
        call(em, "ListParts", Bucket="bkt", Key="data/a.csv", UploadId=uid)  # another key
    assert e.value.code == "NoSuchUpload"
    call(em, "AbortMultipartUpload", Bucket="bkt", Key="data/b.csv", UploadId=uid)
    out = call(em, "ListMultipartUploads", Bucket="bkt", Prefix="data/b")
    assert out["Uploads"] == []


def put_lifecycle(em, rules, bucket="bkt", headers=None):
    body = repr(rules).encode()
    if headers is None:
        headers = {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    return em.services["s3"].PutBucketLifecycleConfiguration(
        ctx(em, "PutBucketLifecycleConfiguration", headers, body),
        {"Bucket": bucket, "LifecycleConfiguration": {"Rules": rules}})


def test_lifecycle_configuration_and_abort_rule():
    em = s3()
    call(em, "CreateBucket", Bucket="bkt")
    with pytest.raises(AwsError) as e:
        call(em, "GetBucketLifecycleConfiguration", Bucket="bkt")
    assert e.value.code == "NoSuchLifecycleConfiguration" and e.value.status == 404
    abort = {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "data/"},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
    # the checksum is required, and checked
    with pytest.raises(AwsError) as e:
        put_lifecycle(em, [abort], headers={})
    assert e.value.code == "InvalidRequest" and "Content-MD5" in e.value.message
    with pytest.raises(AwsError) as e:
        put_lifecycle(em, [abort], headers={"content-md5": base64.b64encode(
            hashlib.md5(b"other").digest()).decode()})
    assert e.value.code == "BadDigest"
    bad = [
        ([], "MalformedXML"),
        ([{"Status": "Enabled", "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}],
         "MalformedXML"),                                        # neither Filter nor Prefix
        ([{"Status": "Enabled", "Filter": {"Prefix": "a", "ObjectSizeLessThan": 5},
           "Expiration": {"Days": 1}}], "MalformedXML"),         # two filter members
        ([{"ID": "x", "Status": "Enabled", "Filter": {}}], "InvalidRequest"),   # no action
        ([dict(abort), dict(abort)], "InvalidArgument"),         # duplicate ID
        ([dict(abort, AbortIncompleteMultipartUpload={"DaysAfterInitiation": 0})],
         "InvalidArgument"),
        ([dict(abort, Filter={"Tag": {"Key": "k", "Value": "v"}})], "InvalidRequest"),
    ]
    for rules, code in bad:
        with pytest.raises(AwsError) as e:
            put_lifecycle(em, rules)
        assert e.value.code == code, rules
    keep = {"Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
    put_lifecycle(em, [abort, keep])
    rules = call(em, "GetBucketLifecycleConfiguration", Bucket="bkt")["Rules"]
    assert rules[0] == abort
    assert rules[1]["Expiration"] == {"Days": 30} and len(rules[1]["ID"]) > 0  # ID generated

    # an upload under the rule's prefix gets its abort date (midnight UTC after a day) ...
    em.clock.offset = 0
    t0 = em.clock.utcnow()
    out = call(em, "CreateMultipartUpload", Bucket="bkt", Key="data/big.csv")
    assert out["AbortRuleId"] == "abort"
    assert out["AbortDate"].hour == 0 and 1 <= (out["AbortDate"] - t0).total_seconds() / 86400 <= 2
    other = call(em, "CreateMultipartUpload", Bucket="bkt", Key="models/m.bin")
    assert "AbortRuleId" not in other
    parts = call(em, "ListParts", Bucket="bkt", Key="data/big.csv", UploadId=out["UploadId"])
    assert parts["AbortRuleId"] == "abort" and parts["AbortDate"] == out["AbortDate"]
    # ... and is aborted once that date has passed; the other stays
    em.clock.offset += (out["AbortDate"] - t0).total_seconds() - 10
    assert len(call(em, "ListMultipartUploads", Bucket="bkt")["Uploads"]) == 2
    em.clock.offset += 20
    left = call(em, "ListMultipartUploads", Bucket="bkt")["Uploads"]
    assert [u["Key"] for u in left] == ["models/m.bin"]
    with pytest.raises(AwsError) as e:
        call(em, "UploadPart", Bucket="bkt", Key="data/big.csv", UploadId=out["UploadId"],
             PartNumber=1, Body=b"x")
    assert e.value.code == "NoSuchUpload"
    # a disabled rule aborts nothing
    put_lifecycle(em, [dict(abort, Status="Disabled")])
    up = call(em, "CreateMultipartUpload", Bucket="bkt", Key="data/x")["UploadId"]
    em.clock.offset += 5 * 86400
    assert up in [u["UploadId"] for u in call(em, "ListMultipartUploads", Bucket="bkt")["Uploads"]]
