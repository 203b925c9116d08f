"""SigV4 verification: good signatures pass; wrong secrets, unknown keys,
skewed clocks, wrong scopes, tampered requests and bad session tokens get
the error AWS sends for the protocol."""

import datetime
import time

import pytest
from botocore.exceptions import ClientError

from rawsign import ecs_call, query_call, send
from tiny import TINY


@pytest.fixture
def tiny(make_emulator):
    return make_emulator(load_services=False, extra_services=TINY)


def error_of(call):
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response


def test_good_signature_accepted_by_every_protocol(tiny):
    assert tiny.client("ecs").list_clusters()["clusterArns"]
    assert tiny.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"] == "vpc-0123456789abcdef0"
    assert tiny.client("sts").get_caller_identity()["UserId"] == "AKIDEXAMPLE"
    tiny.client("s3").put_object(Bucket="tiny", Key="a b/c+d~e", Body=b"hello")
    assert tiny.client("s3").get_object(Bucket="tiny", Key="a b/c+d~e")["Body"].read() == b"hello"


@pytest.mark.parametrize("service,call,code,status", [
    ("ecs", lambda c: c.list_clusters(), "InvalidSignatureException", 403),
    ("iam", lambda c: c.get_role(RoleName="r"), "SignatureDoesNotMatch", 403),
    ("sts", lambda c: c.get_caller_identity(), "SignatureDoesNotMatch", 403),
    ("s3", lambda c: c.list_buckets(), "SignatureDoesNotMatch", 403),
    ("ec2", lambda c: c.describe_vpcs(), "AuthFailure", 401),
])
def test_wrong_secret_rejected(tiny, service, call, code, status):
    client = tiny.client(service, secret="not-the-secret")
    got, resp = error_of(lambda: call(client))
    assert (got, resp["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
    assert tiny.emulator.calls[-1]["code"] == code


@pytest.mark.parametrize("service,call,code", [
    ("ecs", lambda c: c.list_clusters(), "UnrecognizedClientException"),
    ("sts", lambda c: c.get_caller_identity(), "InvalidClientTokenId"),
    ("s3", lambda c: c.list_buckets(), "InvalidAccessKeyId"),
])
def test_unknown_access_key_rejected(tiny, service, call, code):
    got, _ = error_of(lambda: call(tiny.client(service, key="AKIAUNKNOWNKEY000000")))
    assert got == code


def test_skewed_clock_rejected(tiny):
    late = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=6)
    r = ecs_call(tiny.url, "ListClusters", {}, when=late)
    assert r.status == 403 and r.json()["__type"] == "InvalidSignatureException"
    assert "Signature expired" in r.json()["message"]
    r = send(tiny.url, method="GET", path="/", service="s3", when=late)
    assert r.status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in r.body
    near = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=4)
    assert ecs_call(tiny.url, "ListClusters", {}, when=near).status == 200


def test_wrong_region_and_service_rejected(tiny):
    r = ecs_call(tiny.url, "ListClusters", {}, region="eu-west-1")
    assert r.status == 403
    assert "Credential should be scoped to a valid region, not 'eu-west-1'" in r.json()["message"]
    r = send(tiny.url, headers={"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
                                "Content-Type": "application/x-amz-json-1.1"},
             body=b"{}", service="logs")
    assert r.status == 403 and "correct service: 'ecs'" in r.json()["message"]
    r = query_call(tiny.url, {"Action": "GetCallerIdentity", "Version": "2011-06-15"},
                   service="iam")
    assert r.status == 403 and b"SignatureDoesNotMatch" in r.body
    # IAM is global: us-east-1 is accepted whatever the emulator's region.
    r = query_call(tiny.url, {"Action": "GetRole", "Version": "2010-05-08",
                               "RoleName": "x"}, service="iam")
    assert r.status == 404 and b"NoSuchEntity" in r.body


def test_tampered_requests_rejected(tiny):
    def body(parts):
        parts["body"] = b'{"maxResults": 5}'
        parts["headers"]["Content-Length"] = str(len(parts["body"]))

    r = ecs_call(tiny.url, "ListClusters", {"maxResults": 4}, tamper=body)
    assert r.status == 403 and r.json()["__type"] == "InvalidSignatureException"

    def query(parts):
        parts["query"] = "list-type=2"
    r = send(tiny.url, method="GET", path="/tiny", query="list-type=1", service="s3", tamper=query)
    assert r.status == 403 and b"SignatureDoesNotMatch" in r.body

    def path(parts):
        parts["path"] = "/tiny/other"
    r = send(tiny.url, method="GET", path="/tiny/key", service="s3", tamper=path)
    assert r.status == 403

    def payload(parts):
        parts["body"] = b"changed"
        parts["headers"]["Content-Length"] = "7"
    r = send(tiny.url, method="PUT", path="/tiny/key", body=b"original", service="s3",
             tamper=payload)
    assert r.status == 400 and b"XAmzContentSHA256Mismatch" in r.body


def test_session_tokens(tiny):
    tiny.emulator.credentials["ASIATEMPORARY0000001"] = {
        "secret": "tempsecret", "token": "the-token", "expires": time.time() + 3600}
    ok = tiny.client("sts", key="ASIATEMPORARY0000001", secret="tempsecret", token="the-token")
    assert ok.get_caller_identity()["UserId"] == "ASIATEMPORARY0000001"
    missing = tiny.client("sts", key="ASIATEMPORARY0000001", secret="tempsecret")
    assert error_of(missing.get_caller_identity)[0] == "InvalidClientTokenId"
    wrong = tiny.client("ecs", key="ASIATEMPORARY0000001", secret="tempsecret", token="other")
    assert error_of(wrong.list_clusters)[0] == "UnrecognizedClientException"
    tiny.emulator.credentials["ASIATEMPORARY0000001"]["expires"] = time.time() - 1
    assert error_of(ok.get_caller_identity)[0] == "ExpiredToken"


def test_unsigned_requests(tiny):
    r = ecs_call(tiny.url, "ListClusters", {}, sign=False)
    assert r.status == 400 and r.json()["__type"] == "MissingAuthenticationTokenException"
    r = query_call(tiny.url, {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                             "RoleArn": "arn:aws:iam::123456789012:role/r",
                             "RoleSessionName": "session", "WebIdentityToken": "jwt-token"},
                   service="sts", sign=False)
    assert r.status == 200 and b"<AccessKeyId>ASIATINY</AccessKeyId>" in r.body
    r = query_call(tiny.url, {"Action": "GetCallerIdentity", "Version": "2011-06-15"},
                   service="sts", sign=False)
    assert r.status == 403 and b"MissingAuthenticationToken" in r.body


def test_malformed_authorization(tiny):
    r = send(tiny.url, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=bogus",
                                "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
                                "Content-Type": "application/x-amz-json-1.1"},
             body=b"{}", sign=False)
    assert r.status == 400 and r.json()["__type"] == "IncompleteSignatureException"


def test_s3_virtual_host_style(tiny):
    port = tiny.url.rsplit(":", 1)[1]
    host = f"tiny.localhost:{port}"
    r = send(tiny.url, method="PUT", path="/vkey", body=b"vhost", service="s3",
             headers={"Host": host})
    assert r.status == 200, r.body
    assert r.headers["etag"] == '"abc"'
    assert tiny.client("s3").get_object(Bucket="tiny", Key="vkey")["Body"].read() == b"vhost"
    r = send(tiny.url, method="GET", path="/vkey", service="s3", headers={"Host": host})
    assert r.status == 200 and r.body == b"vhost"
