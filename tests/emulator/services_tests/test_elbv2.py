"""ELBv2 service: load balancers, target groups, listeners with weighted
forward, target health over time, tags and the cross-service functions."""

import pytest

from awsemu.base import AwsError
from svc_helpers import advance, ctx, make_emulator, tags

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"


def err(fn, *args, **kwargs):
    with pytest.raises(AwsError) as e:
        fn(*args, **kwargs)
    return e.value


@pytest.fixture
def env():
    emu = make_emulator(delay_scale=0.01)
    ec2, elb = emu.services["ec2"], emu.services["elbv2"]
    r, er = ctx(emu, "elbv2"), ctx(emu, "ec2")
    vpc = ec2.CreateVpc(er, {"CidrBlock": "10.0.0.0/16"})["Vpc"]["VpcId"]
    subs = [ec2.CreateSubnet(er, {"VpcId": vpc, "CidrBlock": f"10.0.{i}.0/24",
                                  "AvailabilityZone": az})["Subnet"]["SubnetId"]
            for i, az in enumerate(["us-east-1a", "us-east-1b"])]
    igw = ec2.CreateInternetGateway(er, {})["InternetGateway"]["InternetGatewayId"]
    ec2.AttachInternetGateway(er, {"InternetGatewayId": igw, "VpcId": vpc})
    sg = ec2.CreateSecurityGroup(er, {"GroupName": "lb", "Description": "lb",
                                      "VpcId": vpc})["GroupId"]
    return {"emu": emu, "ec2": ec2, "elb": elb, "r": r, "er": er, "vpc": vpc, "subs": subs,
            "sg": sg}


def make_lb(env, name="shop"):
    out = env["elb"].CreateLoadBalancer(env["r"], {
        "Name": name, "Subnets": env["subs"], "SecurityGroups": [env["sg"]],
        "Scheme": "internet-facing", "Type": "application",
        "Tags": tags(("aviary.io/application", "shop"))})
    return out["LoadBalancers"][0]


def make_tg(env, name, **extra):
    params = {"Name": name, "Protocol": "HTTP", "Port": 8080, "VpcId": env["vpc"],
              "TargetType": "ip"}
    params.update(extra)
    return env["elb"].CreateTargetGroup(env["r"], params)["TargetGroups"][0]


def forward(*pairs):
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": a, "Weight": w} for a, w in pairs]}}]


def test_load_balancer_lifecycle(env):
    elb, r, emu, ec2 = env["elb"], env["r"], env["emu"], env["ec2"]
    lb = make_lb(env)
    assert lb["State"] == {"Code": "provisioning"}
    assert lb["LoadBalancerArn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop/")
    assert lb["DNSName"].startswith("shop-") and \
        lb["DNSName"].endswith(".us-east-1.elb.amazonaws.com")
    assert len(lb["AvailabilityZones"]) == 2 and lb["VpcId"] == env["vpc"]
    # Identical request: same load balancer. Different settings: error.
    assert make_lb(env)["LoadBalancerArn"] == lb["LoadBalancerArn"]
    e = err(elb.CreateLoadBalancer, r, {"Name": "shop", "Subnets": env["subs"],
                                        "Scheme": "internal"})
    assert e.code == "DuplicateLoadBalancerName"
    # The load balancer holds ENIs in its subnets.
    enis = ec2.DescribeNetworkInterfaces(env["er"], {"Filters": [
        {"Name": "description", "Values": ["ELB app/shop/*"]}]})["NetworkInterfaces"]
    assert len(enis) == 2
    assert err(ec2.DeleteSubnet, env["er"], {"SubnetId": env["subs"][0]}).code == \
        "DependencyViolation"
    advance(emu, 0.61)
    got = elb.DescribeLoadBalancers(r, {"Names": ["shop"]})["LoadBalancers"][0]
    assert got["State"]["Code"] == "active"
    assert elb.lb_dimension(lb["LoadBalancerArn"]).startswith("app/shop/")
    assert [x["LoadBalancerName"] for x in elb.load_balancers()] == ["shop"]
    elb.DeleteLoadBalancer(r, {"LoadBalancerArn": lb["LoadBalancerArn"]})
    elb.DeleteLoadBalancer(r, {"LoadBalancerArn": lb["LoadBalancerArn"]})   # idempotent
    assert err(elb.DescribeLoadBalancers, r, {"Names": ["shop"]}).code == "LoadBalancerNotFound"
    advance(emu, 0.21)   # ENIs are released a little later
    ec2.DeleteSubnet(env["er"], {"SubnetId": env["subs"][0]})


def test_load_balancer_validation(env):
    elb, r = env["elb"], env["r"]
    assert err(elb.CreateLoadBalancer, r, {"Name": "x", "Subnets": env["subs"][:1]}).code == \
        "ValidationError"
    assert err(elb.CreateLoadBalancer, r, {"Name": "a" * 33, "Subnets": env["subs"]}).code == \
        "ValidationError"
    assert err(elb.CreateLoadBalancer, r, {"Name": "-bad", "Subnets": env["subs"]}).code == \
        "ValidationError"
    assert err(elb.CreateLoadBalancer, r, {"Name": "x", "Subnets": ["subnet-0123456789abcdef0",
                                                                    env["subs"][0]]}).code == \
        "SubnetNotFound"
    assert err(elb.CreateLoadBalancer, r, {"Name": "x", "Subnets": env["subs"],
                                           "SecurityGroups": ["sg-0123456789abcdef0"]}).code == \
        "InvalidSecurityGroup"
    # Internet-facing needs an internet gateway on the VPC.
    ec2, er = env["ec2"], env["er"]
    vpc = ec2.CreateVpc(er, {"CidrBlock": "10.1.0.0/16"})["Vpc"]["VpcId"]
    subs = [ec2.CreateSubnet(er, {"VpcId": vpc, "CidrBlock": f"10.1.{i}.0/24",
                                  "AvailabilityZone": az})["Subnet"]["SubnetId"]
            for i, az in enumerate(["us-east-1a", "us-east-1c"])]
    assert err(elb.CreateLoadBalancer, r, {"Name": "x", "Subnets": subs}).code == "InvalidSubnet"
    internal = elb.CreateLoadBalancer(r, {"Name": "x", "Subnets": subs, "Scheme": "internal"})
    assert internal["LoadBalancers"][0]["DNSName"].startswith("internal-x-")


def test_target_groups(env):
    elb, r = env["elb"], env["r"]
    tg = make_tg(env, "shop-a", HealthCheckPath="/healthz", HealthCheckIntervalSeconds=10,
                 HealthyThresholdCount=2)
    assert tg["TargetGroupArn"].split(":")[5].startswith("targetgroup/shop-a/")
    assert tg["HealthCheckTimeoutSeconds"] == 5 and tg["UnhealthyThresholdCount"] == 2
    assert tg["Matcher"] == {"HttpCode": "200"} and tg["LoadBalancerArns"] == []
    assert make_tg(env, "shop-a", HealthCheckPath="/healthz", HealthCheckIntervalSeconds=10,
                   HealthyThresholdCount=2)["TargetGroupArn"] == tg["TargetGroupArn"]
    assert err(make_tg, env, "shop-a").code == "DuplicateTargetGroupName"
    assert err(make_tg, env, "x" * 33).code == "ValidationError"
    assert err(make_tg, env, "t", HealthCheckTimeoutSeconds=30,
               HealthCheckIntervalSeconds=30).code == "InvalidConfigurationRequest"
    assert err(make_tg, env, "t", Matcher={"HttpCode": "600"}).code == "ValidationError"
    assert err(make_tg, env, "t", VpcId="vpc-0123456789abcdef0").code == "ValidationError"
    out = elb.ModifyTargetGroup(r, {"TargetGroupArn": tg["TargetGroupArn"],
                                    "HealthCheckPath": "/ready", "Matcher": {"HttpCode": "200-299"}})
    assert out["TargetGroups"][0]["HealthCheckPath"] == "/ready"
    assert out["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 10
    attrs = {a["Key"]: a["Value"] for a in elb.DescribeTargetGroupAttributes(
        r, {"TargetGroupArn": tg["TargetGroupArn"]})["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "300"
    elb.ModifyTargetGroupAttributes(r, {"TargetGroupArn": tg["TargetGroupArn"], "Attributes": [
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]})
    assert elb.target_group(tg["TargetGroupArn"])["Attributes"][
        "deregistration_delay.timeout_seconds"] == "30"
    for bad in ({"Key": "deregistration_delay.timeout_seconds", "Value": "3601"},
                {"Key": "no.such.key", "Value": "1"},
                {"Key": "stickiness.enabled", "Value": "yes"}):
        assert err(elb.ModifyTargetGroupAttributes, r, {
            "TargetGroupArn": tg["TargetGroupArn"], "Attributes": [bad]}).code == "ValidationError"
    assert elb.tg_dimension(tg["TargetGroupArn"]).startswith("targetgroup/shop-a/")
    names = [t["TargetGroupName"] for t in elb.DescribeTargetGroups(r, {})["TargetGroups"]]
    assert names == ["shop-a"]
    assert err(elb.DescribeTargetGroups, r, {"Names": ["nope"]}).code == "TargetGroupNotFound"


def test_listeners_weights_and_history(env):
    elb, r = env["elb"], env["r"]
    lb = make_lb(env)
    a, b = make_tg(env, "shop-a"), make_tg(env, "shop-b")
    la = a["TargetGroupArn"]
    lbarn = lb["LoadBalancerArn"]
    ls = elb.CreateListener(r, {"LoadBalancerArn": lbarn, "Protocol": "HTTP", "Port": 80,
                                "DefaultActions": forward((la, 100),
                                                          (b["TargetGroupArn"], 0))})
    larn = ls["Listeners"][0]["ListenerArn"]
    assert larn.startswith(lbarn.replace(":loadbalancer/", ":listener/") + "/")
    action = ls["Listeners"][0]["DefaultActions"][0]
    assert action["ForwardConfig"]["TargetGroupStickinessConfig"] == {"Enabled": False}
    assert "TargetGroupArn" not in action
    assert elb.listener_weights(lbarn) == {la: 100, b["TargetGroupArn"]: 0}
    assert elb.DescribeTargetGroups(r, {"LoadBalancerArn": lbarn})["TargetGroups"][0][
        "LoadBalancerArns"] == [lbarn]
    assert err(elb.CreateListener, r, {"LoadBalancerArn": lbarn, "Protocol": "HTTP", "Port": 80,
                                       "DefaultActions": forward((la, 1))}).code == \
        "DuplicateListener"
    assert err(elb.DeleteTargetGroup, r, {"TargetGroupArn": la}).code == "ResourceInUse"
    assert err(elb.ModifyListener, r, {"ListenerArn": larn, "DefaultActions": forward(
        (la, 1000))}).code == "ValidationError"
    elb.ModifyListener(r, {"ListenerArn": larn, "DefaultActions": forward(
        (la, 90), (b["TargetGroupArn"], 10))})
    elb.ModifyListener(r, {"ListenerArn": larn, "DefaultActions": forward(
        (la, 90), (b["TargetGroupArn"], 10))})   # no change: no history entry
    hist = elb.weight_history()
    assert [h["weights"][la] for h in hist] == [100, 90]
    assert hist[-1]["listener_arn"] == larn and hist[-1]["load_balancer_arn"] == lbarn
    # A target group used by one load balancer cannot join another.
    other = make_lb(env, "other")
    e = err(elb.CreateListener, r, {"LoadBalancerArn": other["LoadBalancerArn"],
                                    "Protocol": "HTTP", "Port": 80,
                                    "DefaultActions": forward((la, 1))})
    assert e.code == "TargetGroupAssociationLimit"
    # HTTPS on 443 and 80 redirecting: client traffic follows the redirect.
    assert err(elb.CreateListener, r, {"LoadBalancerArn": lbarn, "Protocol": "HTTPS", "Port": 443,
                                       "DefaultActions": forward((la, 1))}).code == \
        "ValidationError"
    assert err(elb.CreateListener, r, {"LoadBalancerArn": lbarn, "Protocol": "HTTPS", "Port": 443,
                                       "Certificates": [{"CertificateArn": "arn:aws:acm:bogus"}],
                                       "DefaultActions": forward((la, 1))}).code == \
        "CertificateNotFound"
    https = elb.CreateListener(r, {"LoadBalancerArn": lbarn, "Protocol": "HTTPS", "Port": 443,
                                   "Certificates": [{"CertificateArn": CERT}],
                                   "DefaultActions": forward((la, 50), (b["TargetGroupArn"], 50))})
    assert https["Listeners"][0]["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    elb.ModifyListener(r, {"ListenerArn": larn, "DefaultActions": [
        {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                                "StatusCode": "HTTP_301"}}]})
    assert elb.listener_weights(lbarn) == {la: 50, b["TargetGroupArn"]: 50}
    assert err(elb.ModifyListener, r, {"ListenerArn": larn, "DefaultActions": [
        {"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}]}).code == \
        "InvalidLoadBalancerAction"
    got = elb.DescribeListeners(r, {"LoadBalancerArn": lbarn})["Listeners"]
    assert sorted(x["Port"] for x in got) == [80, 443]
    redirect = [x for x in got if x["Port"] == 80][0]["DefaultActions"][0]["RedirectConfig"]
    assert redirect["Host"] == "#{host}" and redirect["Path"] == "/#{path}"
    # Deleting the load balancer deletes its listeners and frees the target
    # groups, though not at once: AWS answers ResourceInUse for a few seconds.
    elb.DeleteLoadBalancer(r, {"LoadBalancerArn": lbarn})
    assert err(elb.DescribeListeners, r, {"ListenerArns": [larn]}).code == "ListenerNotFound"
    assert elb.listener_weights(lbarn) == {}
    assert err(elb.DeleteTargetGroup, r, {"TargetGroupArn": la}).code == "ResourceInUse"
    advance(env["emu"], 0.16)   # 15 s scaled
    elb.DeleteTargetGroup(r, {"TargetGroupArn": la})
    assert elb.target_group(la) is None


def test_target_health_over_time(env):
    elb, r, emu = env["elb"], env["r"], env["emu"]
    lb = make_lb(env)
    tg = make_tg(env, "shop-a", HealthCheckIntervalSeconds=10, HealthyThresholdCount=3,
                 UnhealthyThresholdCount=2)
    arn = tg["TargetGroupArn"]
    elb.register_targets_internal(arn, [{"Id": "10.0.0.10", "Port": 8080, "healthy": True},
                                        {"Id": "10.0.1.10", "Port": 8080, "healthy": False}])

    def states():
        out = elb.DescribeTargetHealth(r, {"TargetGroupArn": arn})["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in out}

    assert states() == {"10.0.0.10": "unused", "10.0.1.10": "unused"}
    elb.CreateListener(r, {"LoadBalancerArn": lb["LoadBalancerArn"], "Protocol": "HTTP",
                           "Port": 80, "DefaultActions": [{"Type": "forward",
                                                           "TargetGroupArn": arn}]})
    assert set(states().values()) == {"initial"}
    advance(emu, 0.61)             # load balancer active (60 s scaled)
    advance(emu, 0.21)             # 2 checks x 10 s: the failing target is unhealthy
    assert states() == {"10.0.0.10": "initial", "10.0.1.10": "unhealthy"}
    advance(emu, 0.1)              # 3 checks x 10 s: the good one is healthy
    assert states() == {"10.0.0.10": "healthy", "10.0.1.10": "unhealthy"}
    assert elb.healthy_targets(arn) == ["10.0.0.10"]
    detail = elb.DescribeTargetHealth(r, {"TargetGroupArn": arn, "Targets": [
        {"Id": "10.0.1.10"}, {"Id": "10.9.9.9"}]})["TargetHealthDescriptions"]
    assert detail[0]["TargetHealth"]["Reason"] == "Target.ResponseCodeMismatch"
    assert detail[1]["TargetHealth"] == {"State": "unused", "Reason": "Target.NotRegistered",
                                         "Description": "Target is not registered to the "
                                                        "target group"}
    # A target that starts failing turns unhealthy after UnhealthyThresholdCount checks.
    elb.set_target_health_internal(arn, "10.0.0.10", False)
    assert states()["10.0.0.10"] == "healthy"
    advance(emu, 0.21)
    assert states()["10.0.0.10"] == "unhealthy"
    # Deregistration drains for the deregistration delay (300 s -> 3 s scaled).
    elb.deregister_targets_internal(arn, [{"Id": "10.0.1.10", "Port": 8080}])
    assert states()["10.0.1.10"] == "draining"
    advance(emu, 2.9)
    assert states()["10.0.1.10"] == "draining"
    advance(emu, 0.2)
    assert "10.0.1.10" not in states()


def test_tags(env):
    elb, r = env["elb"], env["r"]
    lb = make_lb(env)
    tg = make_tg(env, "shop-a", Tags=tags(("k", "v")))
    arns = [lb["LoadBalancerArn"], tg["TargetGroupArn"]]
    elb.AddTags(r, {"ResourceArns": arns, "Tags": tags(("aviary.io/slot", "a"))})
    desc = elb.DescribeTags(r, {"ResourceArns": arns})["TagDescriptions"]
    assert desc[0]["Tags"] == tags(("aviary.io/application", "shop"), ("aviary.io/slot", "a"))
    assert desc[1]["Tags"] == tags(("k", "v"), ("aviary.io/slot", "a"))
    elb.RemoveTags(r, {"ResourceArns": [tg["TargetGroupArn"]], "TagKeys": ["k"]})
    assert elb.DescribeTags(r, {"ResourceArns": [tg["TargetGroupArn"]]})["TagDescriptions"][0][
        "Tags"] == tags(("aviary.io/slot", "a"))
    assert err(elb.AddTags, r, {"ResourceArns": arns * 11, "Tags": tags(("a", "b"))}).code == \
        "ValidationError"
    assert err(elb.AddTags, r, {"ResourceArns": arns, "Tags": tags(("a", "b"), ("a", "c"))}
               ).code == "DuplicateTagKeys"
    gone = tg["TargetGroupArn"][:-16] + "0" * 16
    assert err(elb.DescribeTags, r, {"ResourceArns": [gone]}).code == "TargetGroupNotFound"
    many = tags(*[(f"k{i}", "v") for i in range(50)])
    assert err(elb.AddTags, r, {"ResourceArns": arns[:1], "Tags": many}).code == "TooManyTags"


def test_describe_pagination(env):
    elb, r = env["elb"], env["r"]
    for i in range(5):
        make_tg(env, f"tg-{i}")
    seen, marker = [], None
    for _ in range(10):
        p = {"PageSize": 2}
        if marker:
            p["Marker"] = marker
        out = elb.DescribeTargetGroups(r, p)
        seen += [t["TargetGroupName"] for t in out["TargetGroups"]]
        marker = out.get("NextMarker")
        if not marker:
            break
    assert seen == [f"tg-{i}" for i in range(5)]
