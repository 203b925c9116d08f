"""Fault injection (throttling, 500s, drops, latency, one-shot failures)
and the control API (call log, profiles, traffic, webhooks, clock)."""

import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from tiny import TINY


@pytest.fixture
def tiny(make_emulator):
    return make_emulator(load_services=False, extra_services=TINY)


def control(emu, method, path, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(emu.url + "/_emulator/" + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def code_of(call):
    with pytest.raises(ClientError) as info:
        call()
    r = info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("service,call,code,status", [
    ("ecs", lambda c: c.list_clusters(), "ThrottlingException", 400),
    ("iam", lambda c: c.create_role(RoleName="r", AssumeRolePolicyDocument="{}"), "Throttling",
     400),
    ("sns", lambda c: c.create_topic(Name="t"), "Throttling", 400),
    ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded", 503),
    ("s3", lambda c: c.list_buckets(), "SlowDown", 503),
])
def test_throttling_codes_per_protocol(tiny, service, call, code, status):
    control(tiny, "POST", "faults", {"throttle": {"fraction": 1.0, "service": service}})
    assert code_of(lambda: call(tiny.client(service))) == (code, status)
    assert tiny.emulator.calls[-1]["code"] == code
    assert control(tiny, "GET", "health")["status"] == "ok"  # control API unaffected
    control(tiny, "DELETE", "faults")
    call(tiny.client(service))


def test_throttle_fraction_is_deterministic(make_emulator):
    outcomes = []
    for _ in range(2):
        emu = make_emulator(load_services=False, extra_services=TINY, seed=7)
        control(emu, "POST", "faults", {"throttle": {"fraction": 0.5, "operation": "ListClusters"}})
        run = []
        for _ in range(30):
            try:
                emu.client("ecs").list_clusters()
                run.append(True)
            except ClientError:
                run.append(False)
        emu.client("ec2").describe_vpcs()  # other operations are not throttled
        outcomes.append(run)
    assert outcomes[0] == outcomes[1]
    assert 5 < outcomes[0].count(False) < 25


def test_error500_drop_latency_fail_once(tiny):
    ecs = tiny.client("ecs")
    control(tiny, "POST", "faults", {"error500": {"fraction": 1.0, "operation": "ListClusters"}})
    assert code_of(ecs.list_clusters) == ("ServerException", 500)
    tiny.client("sns").create_topic(Name="x")  # other operations unaffected
    control(tiny, "DELETE", "faults")

    control(tiny, "POST", "faults", {"drop": {"fraction": 1.0, "service": "ecs"}})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        ecs.list_clusters()
    assert tiny.emulator.calls[-1]["code"] == "ConnectionDropped"
    control(tiny, "DELETE", "faults")

    control(tiny, "POST", "faults", {"latency_ms": 300})
    start = time.monotonic()
    ecs.list_clusters()
    assert time.monotonic() - start >= 0.3
    control(tiny, "DELETE", "faults")

    control(tiny, "POST", "faults", {"fail_once": {"service": "ecs", "operation": "ListClusters",
                                                   "code": "AccessDeniedException", "status": 400}})
    assert code_of(ecs.list_clusters) == ("AccessDeniedException", 400)
    assert ecs.list_clusters()["clusterArns"]
    control(tiny, "POST", "faults", {"fail_once": {"operation": "DescribeVpcs",
                                                   "code": "Throttling"}})
    assert code_of(tiny.client("ec2").describe_vpcs) == ("RequestLimitExceeded", 503)


def test_call_log(tiny):
    control(tiny, "DELETE", "calls")
    tiny.client("ecs").list_clusters()
    tiny.client("sns").create_topic(Name="t")
    with pytest.raises(ClientError):
        tiny.client("iam").get_role(RoleName="nobody")
    calls = control(tiny, "GET", "calls")
    assert [(c["service"], c["operation"], c["status"], c["mutating"]) for c in calls] == [
        ("ecs", "ListClusters", 200, False), ("sns", "CreateTopic", 200, True),
        ("iam", "GetRole", 404, False)]
    assert calls[2]["code"] == "NoSuchEntity" and calls[0]["code"] is None
    assert [c["operation"] for c in control(tiny, "GET", "calls?mutating=1")] == ["CreateTopic"]
    assert [c["operation"] for c in control(tiny, "GET", "calls?service=iam")] == ["GetRole"]
    assert control(tiny, "DELETE", "calls") == {"deleted": 3}
    assert control(tiny, "GET", "calls") == []


def test_profiles_traffic_clock_webhooks(tiny):
    control(tiny, "PUT", "profiles", {"app:v2": {"error_rate": 0.5}})
    got = control(tiny, "PUT", "profiles", {"app:v2": {"healthy": False}})
    assert got["profiles"]["app:v2"] == {"error_rate": 0.5, "healthy": False}
    assert tiny.emulator.profile("app:v2")["error_rate"] == 0.5
    assert tiny.emulator.profile("app:v2")["cpu"] == tiny.emulator.default_profile["cpu"]

    got = control(tiny, "PUT", "traffic", {"default_rps": 50, "per_lb": {"arn:lb": 5}})
    assert got == {"default_rps": 50.0, "per_lb": {"arn:lb": 5.0}}

    before = tiny.emulator.clock.now()
    got = control(tiny, "POST", "clock", {"offset": 3600})
    assert got["offset"] == 3600 and got["now"] >= before + 3600
    tiny.client("ecs").list_clusters()  # signatures use real time, not the offset

    control(tiny, "POST", "webhooks/alerts", {"text": "rolled back"})
    hooks = control(tiny, "GET", "webhooks")
    assert hooks[0]["name"] == "alerts" and hooks[0]["body"] == {"text": "rolled back"}
    assert hooks[0]["headers"]["content-type"] == "application/json"

    assert control(tiny, "GET", "sns") == []
    assert control(tiny, "GET", "subscriptions") == []  # no sns module with the view
    assert control(tiny, "GET", "weights") == []


def test_control_errors(tiny):
    with pytest.raises(urllib.error.HTTPError) as info:
        control(tiny, "GET", "nothing")
    assert info.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        control(tiny, "POST", "faults", {"throttle": {"fraction": 2}})
    assert info.value.code == 400


def test_load_balancer_quota_and_its_increase(make_emulator):
    emu = make_emulator()
    ec2, elb = emu.client("ec2"), emu.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24",
                                 AvailabilityZone=zones[i])["Subnet"]["SubnetId"]
               for i in range(2)]
    assert control(emu, "GET", "quotas") == {"elbv2.load_balancers": 50}
    control(emu, "PUT", "quotas", {"elbv2.load_balancers": 2})
    for i in range(2):
        elb.create_load_balancer(Name=f"lb{i}", Subnets=subnets, Scheme="internal")
    assert code_of(lambda: elb.create_load_balancer(Name="lb2", Subnets=subnets,
                                                          Scheme="internal")) == \
        ("TooManyLoadBalancers", 400)
    assert control(emu, "PUT", "quotas", {"elbv2.load_balancers": 3}) == \
        {"elbv2.load_balancers": 3}
    elb.create_load_balancer(Name="lb2", Subnets=subnets, Scheme="internal")
    for bad in ({"nope": 1}, {"elbv2.load_balancers": -1}, {"elbv2.load_balancers": "9"}):
        with pytest.raises(urllib.error.HTTPError) as info:
            control(emu, "PUT", "quotas", bad)
        assert info.value.code == 400
