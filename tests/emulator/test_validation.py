"""Input validation against the models: missing, unknown, mistyped and
out-of-range parameters get the error each protocol's AWS service sends."""

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from rawsign import ecs_call, query_call, send
from tiny import TINY


@pytest.fixture
def tiny(make_emulator):
    return make_emulator(load_services=False, extra_services=TINY)


def unvalidated(emu, service):
    """A boto3 client that does not validate parameters itself."""
    return emu.client(service, config=Config(parameter_validation=False,
                                             retries={"total_max_attempts": 1}))


def error(call):
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_json_missing_required(tiny):
    code, msg = error(lambda: unvalidated(tiny, "ecs").create_service(desiredCount=1))
    assert code == "InvalidParameterException"
    assert msg == ("1 validation error detected: Value null at 'serviceName' failed to satisfy "
                   "constraint: Member must not be null")


def test_json_enum_unknown_and_type(tiny):
    code, msg = error(lambda: unvalidated(tiny, "ecs").create_service(
        serviceName="s", launchType="BOGUS"))
    assert code == "InvalidParameterException" and "enum value set: [EC2, FARGATE" in msg
    r = ecs_call(tiny.url, "CreateService", {"serviceName": "s", "notAMember": 1})
    assert r.status == 400 and r.json()["__type"] == "InvalidParameterException"
    assert "notAMember" in r.json()["message"]
    r = ecs_call(tiny.url, "CreateService", {"serviceName": "s", "desiredCount": "three"})
    assert r.status == 400 and r.json()["__type"] == "SerializationException"
    r = ecs_call(tiny.url, "CreateService", {"serviceName": "s", "desiredCount": 2})
    assert r.status == 200 and r.json()["service"]["desiredCount"] == 2
    r = send(tiny.url, headers={"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
                                "Content-Type": "application/x-amz-json-1.1"}, body=b"{nope")
    assert r.status == 400 and r.json()["__type"] == "SerializationException"


def test_ec2_errors(tiny):
    code, msg = error(lambda: unvalidated(tiny, "ec2").create_subnet(CidrBlock="10.0.0.0/24"))
    assert (code, msg) == ("MissingParameter", "The request must contain the parameter VpcId")
    r = query_call(tiny.url, {"Action": "DescribeVpcs", "Version": "2016-11-15", "Bogus": "1"},
                   service="ec2")
    assert r.status == 400 and b"<Code>UnknownParameter</Code>" in r.body
    assert b"<Response><Errors><Error>" in r.body and b"<RequestID>" in r.body
    r = query_call(tiny.url, {"Action": "DescribeVpcs", "Version": "2016-11-15",
                              "MaxResults": "many"}, service="ec2")
    assert r.status == 400 and b"<Code>InvalidParameterValue</Code>" in r.body
    r = query_call(tiny.url, {"Action": "DescribeVpcs", "Version": "2016-11-15",
                              "MaxResults": "4"}, service="ec2")
    assert r.status == 400 and b"greater than or equal to 5" in r.body
    r = query_call(tiny.url, {"Action": "DescribeVpcs", "Version": "2015-12-01"}, service="ec2")
    assert r.status == 403  # the Version names ELBv2, which is signed for another service
    r = query_call(tiny.url, {"Action": "DescribeVpcs", "Version": "2099-01-01"}, service="ec2")
    assert r.status == 400 and b"<Code>InvalidParameterValue</Code>" in r.body
    r = query_call(tiny.url, {"Action": "DescribeNothing", "Version": "2016-11-15"}, service="ec2")
    assert r.status == 400 and b"<Code>InvalidAction</Code>" in r.body


def test_query_errors(tiny):
    code, msg = error(lambda: unvalidated(tiny, "iam").create_role(AssumeRolePolicyDocument="{}"))
    assert code == "ValidationError" and "at 'roleName'" in msg and "must not be null" in msg
    code, msg = error(lambda: tiny.client("iam").create_role(
        RoleName="r" * 65, AssumeRolePolicyDocument="{}"))
    assert code == "ValidationError" and "length less than or equal to 64" in msg
    code, msg = error(lambda: tiny.client("iam").create_role(
        RoleName="bad name!", AssumeRolePolicyDocument="{}"))
    assert code == "ValidationError" and "regular expression pattern" in msg
    role = tiny.client("iam").create_role(RoleName="good", AssumeRolePolicyDocument="{}")
    assert role["Role"]["Arn"].endswith(":role/good")
    code, msg = error(lambda: unvalidated(tiny, "sns").create_topic())
    assert code == "InvalidParameter" and msg.startswith("Invalid parameter: Name")


def test_s3_errors(tiny):
    r = send(tiny.url, method="PUT", path="/tiny", query="versioning", body=b"<Versioning",
             service="s3")
    assert r.status == 400 and b"<Code>MalformedXML</Code>" in r.body
    body = (b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b'<Status>Maybe</Status></VersioningConfiguration>')
    r = send(tiny.url, method="PUT", path="/tiny", query="versioning", body=body, service="s3")
    assert r.status == 400 and b"<Code>InvalidArgument</Code>" in r.body
    body = body.replace(b"Maybe", b"Enabled").replace(b"</Vers", b"<Extra/></Vers")
    r = send(tiny.url, method="PUT", path="/tiny", query="versioning", body=body, service="s3")
    assert r.status == 400 and b"<Code>MalformedXML</Code>" in r.body
    tiny.client("s3").put_bucket_versioning(Bucket="tiny",
                                            VersioningConfiguration={"Status": "Enabled"})
    code, _ = error(lambda: tiny.client("s3").get_object(Bucket="tiny", Key="absent"))
    assert code == "NoSuchKey"


def test_handler_errors_are_serialized(tiny):
    code, msg = error(lambda: tiny.client("ecs").describe_clusters(clusters=["x"]))
    assert (code, msg) == ("ClusterNotFoundException", "Cluster not found.")
    code, msg = error(lambda: tiny.client("iam").get_role(RoleName="nobody"))
    assert code == "NoSuchEntity"
