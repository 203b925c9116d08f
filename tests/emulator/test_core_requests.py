"""Core behaviours the service modules rely on: error members beyond
code/message in every protocol's error body, the --seed option reaching the
services, S3 partial content (206) and HEAD lengths, and confirming SNS
subscriptions through the control API."""

import http.client
import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from awsemu.base import AwsError, Service


def control(emu, method, path, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(emu.url + "/_emulator/" + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def error_of(call):
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response


class ExtraLogs(Service):
    SERVICE = "logs"

    def DescribeLogGroups(self, req, params):
        raise AwsError("InvalidSequenceTokenException", "The given sequenceToken is invalid.",
                       extra={"expectedSequenceToken": "4963"})

    def CreateLogGroup(self, req, params):
        raise AwsError("SomethingUnmodeled", "no shape", extra={"detail": "kept"})


class ExtraEc2(Service):
    SERVICE = "ec2"

    def DescribeVpcs(self, req, params):
        raise AwsError("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist",
                       extra={"ResourceId": "vpc-1"})


def test_dashboard_validation_messages_in_query_error(emu):
    cw = emu.client("cloudwatch")
    body = json.dumps({"widgets": [{"type": "metric", "properties": {}}]})
    r = error_of(lambda: cw.put_dashboard(DashboardName="bad", DashboardBody=body))
    assert r["Error"]["Code"] == "InvalidParameterInput"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert r["Error"]["Message"].startswith("The dashboard body is invalid, there are ")
    # botocore parses the modeled member from inside <Error>, as on AWS
    messages = r["dashboardValidationMessages"]
    assert isinstance(messages, list) and messages
    assert all(set(m) == {"DataPath", "Message"} for m in messages)
    assert any(m["DataPath"].startswith("/widgets/0") for m in messages)


def test_error_members_in_json_and_ec2_bodies(make_emulator):
    emu = make_emulator(load_services=False, extra_services=[ExtraLogs, ExtraEc2])
    r = error_of(lambda: emu.client("logs").describe_log_groups())
    assert r["Error"]["Code"] == "InvalidSequenceTokenException"
    assert r["expectedSequenceToken"] == "4963"
    r = error_of(lambda: emu.client("logs").create_log_group(logGroupName="g"))
    assert r["Error"]["Code"] == "SomethingUnmodeled"
    r = error_of(lambda: emu.client("ec2").describe_vpcs())
    assert r["Error"] == {"Code": "InvalidVpcID.NotFound",
                          "Message": "The vpc ID 'vpc-1' does not exist", "ResourceId": "vpc-1"}
    # the raw JSON body carries the unmodeled member too
    conn = http.client.HTTPConnection("127.0.0.1", emu.server.server_address[1], timeout=10)
    try:
        import botocore.awsrequest
        import botocore.auth
        import botocore.credentials
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=emu.url + "/", data=b'{"logGroupName": "g"}',
            headers={"X-Amz-Target": "Logs_20140328.CreateLogGroup",
                     "Content-Type": "application/x-amz-json-1.1"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(
            "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "logs",
            "us-east-1").add_auth(req)
        prepared = req.prepare()
        conn.request("POST", "/", body=prepared.body, headers=dict(prepared.headers))
        resp = conn.getresponse()
        doc = json.loads(resp.read())
    finally:
        conn.close()
    assert doc == {"__type": "SomethingUnmodeled", "message": "no shape", "detail": "kept"}


def test_seed_reaches_service_modules(make_emulator):
    def subscription_arn(seed):
        emu = make_emulator(seed=seed)
        assert emu.emulator.seed == seed
        sns = emu.client("sns")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        return sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="a@example.com",
                             ReturnSubscriptionArn=True)["SubscriptionArn"]

    assert subscription_arn(7) == subscription_arn(7)
    assert subscription_arn(7) != subscription_arn(8)


def test_run_emulator_passes_seed():
    from awsemu import __main__ as entry
    seen = {}

    class FakeApp:
        def __init__(self, **kw):
            seen.update(kw)
            raise SystemExit(0)

    real = entry.App
    entry.App = FakeApp
    try:
        with pytest.raises(SystemExit):
            entry.main(["--port", "0", "--seed", "42"])
    finally:
        entry.App = real
    assert seen["seed"] == 42


def test_get_object_range_is_206_and_head_has_object_size(emu):
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="ranges")
    data = bytes(range(256)) * 4
    s3.put_object(Bucket="ranges", Key="k", Body=data)
    got = s3.get_object(Bucket="ranges", Key="k", Range="bytes=10-19")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert got["ContentLength"] == 10 and got["Body"].read() == data[10:20]
    got = s3.get_object(Bucket="ranges", Key="k", Range="bytes=-5")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206 and got["Body"].read() == data[-5:]
    got = s3.get_object(Bucket="ranges", Key="k")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200 and "ContentRange" not in got
    assert got["Body"].read() == data
    r = error_of(lambda: s3.get_object(Bucket="ranges", Key="k", Range="bytes=5000-"))
    assert r["Error"]["Code"] == "InvalidRange"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 416
    head = s3.head_object(Bucket="ranges", Key="k")
    assert head["ContentLength"] == len(data)
    assert head["ResponseMetadata"]["HTTPHeaders"]["content-length"] == str(len(data))


def test_control_confirms_subscriptions(emu):
    sns = emu.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="email",
                         Endpoint="ml@example.com")["SubscriptionArn"] == "pending confirmation"
    assert [s["PendingConfirmation"] for s in control(emu, "GET", "subscriptions")] == [True]
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed[0]["SubscriptionArn"] == "PendingConfirmation"
    assert control(emu, "POST", "subscriptions/confirm") == {"confirmed": 1}
    assert [s["PendingConfirmation"] for s in control(emu, "GET", "subscriptions")] == [False]
    listed = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed[0]["SubscriptionArn"].startswith(topic + ":")
    assert control(emu, "POST", "subscriptions/confirm") == {"confirmed": 0}
    with pytest.raises(urllib.error.HTTPError) as info:
        control(emu, "POST", "subscriptions/other")
    assert info.value.code == 404


def test_control_pushes_ecr_images(emu):
    ecr = emu.client("ecr")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1.4.2"
    with pytest.raises(urllib.error.HTTPError) as info:
        control(emu, "POST", "images", {"image": image})
    assert info.value.code == 404   # no repository yet: docker push would fail too
    ecr.create_repository(repositoryName="fraud")
    pushed = control(emu, "POST", "images", {"image": image})
    got = ecr.describe_images(repositoryName="fraud")["imageDetails"]
    assert [(i["imageDigest"], i["imageTags"]) for i in got] == [(pushed["imageDigest"],
                                                                  ["1.4.2"])]
    other = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/model:7"
    control(emu, "POST", "images", {"image": other, "create_repository": True})
    repo = ecr.describe_repositories(repositoryNames=["team/model"])["repositories"][0]
    assert repo["repositoryUri"] == other.rsplit(":", 1)[0]
    for bad in ("nginx:1", "999999999999.dkr.ecr.us-east-1.amazonaws.com/x:1"):
        with pytest.raises(urllib.error.HTTPError) as info:
            control(emu, "POST", "images", {"image": bad})
        assert info.value.code == 400
