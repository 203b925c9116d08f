"""ELBv2 SetSubnets and SetSecurityGroups: validation as AWS does it for an
Application Load Balancer, the new state in DescribeLoadBalancers and on the
load balancer's network interfaces, and (through boto3) the wire format and
the call log."""

import pytest

from awsemu.base import AwsError
from svc_helpers import advance, ctx, make_emulator

AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]


def err(fn, *args, **kwargs):
    with pytest.raises(AwsError) as e:
        fn(*args, **kwargs)
    return e.value


def build(ec2, er, cidr_octet=0):
    """A VPC with an internet gateway, three subnets in three zones, a fourth
    in zone a, and two security groups."""
    vpc = ec2.CreateVpc(er, {"CidrBlock": f"10.{cidr_octet}.0.0/16"})["Vpc"]["VpcId"]
    subs = [ec2.CreateSubnet(er, {"VpcId": vpc, "CidrBlock": f"10.{cidr_octet}.{i}.0/24",
                                  "AvailabilityZone": az})["Subnet"]["SubnetId"]
            for i, az in enumerate(AZS + ["us-east-1a"])]
    igw = ec2.CreateInternetGateway(er, {})["InternetGateway"]["InternetGatewayId"]
    ec2.AttachInternetGateway(er, {"InternetGatewayId": igw, "VpcId": vpc})
    sgs = [ec2.CreateSecurityGroup(er, {"GroupName": f"g{i}", "Description": "d",
                                        "VpcId": vpc})["GroupId"] for i in range(2)]
    return vpc, subs, sgs


@pytest.fixture
def env():
    emu = make_emulator(delay_scale=0.01)
    ec2, elb = emu.services["ec2"], emu.services["elbv2"]
    r, er = ctx(emu, "elbv2"), ctx(emu, "ec2")
    vpc, subs, sgs = build(ec2, er)
    lb = elb.CreateLoadBalancer(r, {"Name": "shop", "Subnets": subs[:2],
                                    "SecurityGroups": [sgs[0]]})["LoadBalancers"][0]
    return {"emu": emu, "ec2": ec2, "elb": elb, "r": r, "er": er, "vpc": vpc, "subs": subs,
            "sgs": sgs, "arn": lb["LoadBalancerArn"]}


def lb_enis(env):
    return env["ec2"].DescribeNetworkInterfaces(env["er"], {"Filters": [
        {"Name": "description", "Values": ["ELB app/shop/*"]}]})["NetworkInterfaces"]


def describe(env):
    return env["elb"].DescribeLoadBalancers(env["r"], {"Names": ["shop"]})["LoadBalancers"][0]


def test_set_subnets_moves_zones_and_interfaces(env):
    elb, r, subs = env["elb"], env["r"], env["subs"]
    before = {e["SubnetId"]: e["NetworkInterfaceId"] for e in lb_enis(env)}
    out = elb.SetSubnets(r, {"LoadBalancerArn": env["arn"], "Subnets": [subs[0], subs[2]]})
    assert out["IpAddressType"] == "ipv4"
    assert [(z["SubnetId"], z["ZoneName"]) for z in out["AvailabilityZones"]] == \
        [(subs[0], "us-east-1a"), (subs[2], "us-east-1c")]
    got = describe(env)
    assert [z["SubnetId"] for z in got["AvailabilityZones"]] == [subs[0], subs[2]]
    # The interface in the kept subnet stays; the new subnet gets one with the
    # load balancer's group and a public address; the removed one is released
    # a little later (its subnet cannot be deleted until then).
    enis = {e["SubnetId"]: e for e in lb_enis(env) if e["Status"] == "in-use"}
    assert set(enis) == {subs[0], subs[2]}
    assert enis[subs[0]]["NetworkInterfaceId"] == before[subs[0]]
    assert [g["GroupId"] for g in enis[subs[2]]["Groups"]] == [env["sgs"][0]]
    assert enis[subs[2]]["Association"]["PublicIp"]
    assert err(env["ec2"].DeleteSubnet, env["er"], {"SubnetId": subs[1]}).code == \
        "DependencyViolation"
    advance(env["emu"], 0.21)
    env["ec2"].DeleteSubnet(env["er"], {"SubnetId": subs[1]})
    # Same subnets again: no change. The same subnets by SubnetMappings too.
    elb.SetSubnets(r, {"LoadBalancerArn": env["arn"],
                       "SubnetMappings": [{"SubnetId": subs[2]}, {"SubnetId": subs[0]}]})
    assert {e["NetworkInterfaceId"] for e in lb_enis(env)} == \
        {enis[subs[0]]["NetworkInterfaceId"], enis[subs[2]]["NetworkInterfaceId"]}
    # The idempotent CreateLoadBalancer compares with the new subnets.
    again = elb.CreateLoadBalancer(r, {"Name": "shop", "Subnets": [subs[0], subs[2]],
                                       "SecurityGroups": [env["sgs"][0]]})
    assert again["LoadBalancers"][0]["LoadBalancerArn"] == env["arn"]
    # Deleting the load balancer releases the current interfaces.
    elb.DeleteLoadBalancer(r, {"LoadBalancerArn": env["arn"]})
    advance(env["emu"], 0.21)
    assert lb_enis(env) == []


def test_set_subnets_validation(env):
    elb, r, subs, ec2, er = env["elb"], env["r"], env["subs"], env["ec2"], env["er"]
    arn = env["arn"]
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn, "Subnets": [subs[0]]}).code == \
        "ValidationError"   # an ALB needs two zones
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn}).code == "ValidationError"
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn,
                                   "Subnets": [subs[0], subs[3]]}).code == "ValidationError"
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn,
                                   "Subnets": [subs[0], subs[1], subs[3]]}).code == \
        "InvalidConfigurationRequest"   # two in zone a
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn,
                                   "Subnets": [subs[0], "subnet-0123456789abcdef0"]}).code == \
        "SubnetNotFound"
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn, "Subnets": subs[:2],
                                   "SubnetMappings": [{"SubnetId": subs[0]}]}).code == \
        "ValidationError"
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn, "SubnetMappings": [
        {"SubnetId": subs[0], "AllocationId": "eipalloc-0123456789abcdef0"},
        {"SubnetId": subs[1]}]}).code == "InvalidConfigurationRequest"
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn, "Subnets": subs[:2],
                                   "IpAddressType": "dualstack"}).code == \
        "InvalidConfigurationRequest"
    _, other, _ = build(ec2, er, cidr_octet=1)
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": arn,
                                   "Subnets": [subs[0], other[1]]}).code == \
        "InvalidConfigurationRequest"   # another VPC
    missing = arn[:-16] + "0" * 16
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": missing, "Subnets": subs[:2]}).code == \
        "LoadBalancerNotFound"
    assert err(elb.SetSubnets, r, {"LoadBalancerArn": "arn:nope", "Subnets": subs[:2]}).code == \
        "ValidationError"
    # Nothing changed by the refused calls.
    assert [z["SubnetId"] for z in describe(env)["AvailabilityZones"]] == subs[:2]
    assert len(lb_enis(env)) == 2


def test_set_security_groups(env):
    elb, r, sgs, ec2, er = env["elb"], env["r"], env["sgs"], env["ec2"], env["er"]
    out = elb.SetSecurityGroups(r, {"LoadBalancerArn": env["arn"],
                                    "SecurityGroups": [sgs[1], sgs[0], sgs[1]]})
    assert out == {"SecurityGroupIds": [sgs[1], sgs[0]]}
    assert describe(env)["SecurityGroups"] == [sgs[1], sgs[0]]
    assert all([g["GroupId"] for g in e["Groups"]] == [sgs[1], sgs[0]] for e in lb_enis(env))
    # A group on the load balancer's interfaces is in use.
    assert err(ec2.DeleteSecurityGroup, er, {"GroupId": sgs[1]}).code == "DependencyViolation"
    elb.SetSecurityGroups(r, {"LoadBalancerArn": env["arn"], "SecurityGroups": [sgs[0]]})
    assert describe(env)["SecurityGroups"] == [sgs[0]]
    ec2.DeleteSecurityGroup(er, {"GroupId": sgs[1]})


def test_set_security_groups_validation(env):
    elb, r, sgs, ec2, er = env["elb"], env["r"], env["sgs"], env["ec2"], env["er"]
    arn = env["arn"]
    assert err(elb.SetSecurityGroups, r, {"LoadBalancerArn": arn,
                                          "SecurityGroups": ["sg-0123456789abcdef0"]}).code == \
        "InvalidSecurityGroup"
    _, _, other = build(ec2, er, cidr_octet=1)
    assert err(elb.SetSecurityGroups, r, {"LoadBalancerArn": arn,
                                          "SecurityGroups": [sgs[0], other[0]]}).code == \
        "InvalidSecurityGroup"   # another VPC
    assert err(elb.SetSecurityGroups, r, {"LoadBalancerArn": arn,
                                          "SecurityGroups": []}).code == \
        "InvalidConfigurationRequest"
    many = [ec2.CreateSecurityGroup(er, {"GroupName": f"m{i}", "Description": "d",
                                         "VpcId": env["vpc"]})["GroupId"] for i in range(6)]
    assert err(elb.SetSecurityGroups, r, {"LoadBalancerArn": arn,
                                          "SecurityGroups": many}).code == \
        "InvalidConfigurationRequest"
    assert err(elb.SetSecurityGroups, r, {"LoadBalancerArn": arn[:-16] + "0" * 16,
                                          "SecurityGroups": [sgs[0]]}).code == \
        "LoadBalancerNotFound"
    assert describe(env)["SecurityGroups"] == [sgs[0]]


def test_through_boto3_with_call_log():
    from emutest import Running
    emu = Running()
    try:
        ec2, elb = emu.client("ec2"), emu.client("elbv2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subs = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24",
                                  AvailabilityZone=az)["Subnet"]["SubnetId"]
                for i, az in enumerate(AZS)]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        sgs = [ec2.create_security_group(GroupName=f"g{i}", Description="d",
                                         VpcId=vpc)["GroupId"] for i in range(2)]
        arn = elb.create_load_balancer(Name="wire", Subnets=subs[:2], SecurityGroups=[sgs[0]])[
            "LoadBalancers"][0]["LoadBalancerArn"]
        out = elb.set_subnets(LoadBalancerArn=arn, Subnets=[subs[1], subs[2]])
        assert [z["SubnetId"] for z in out["AvailabilityZones"]] == [subs[1], subs[2]]
        assert out["IpAddressType"] == "ipv4"
        out = elb.set_security_groups(LoadBalancerArn=arn, SecurityGroups=sgs)
        assert out["SecurityGroupIds"] == sgs
        got = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
        assert got["SecurityGroups"] == sgs
        assert sorted(z["SubnetId"] for z in got["AvailabilityZones"]) == sorted(subs[1:])
        with pytest.raises(Exception) as e:
            elb.set_subnets(LoadBalancerArn=arn, Subnets=[subs[0]])
        assert e.value.response["Error"]["Code"] == "ValidationError"
        calls = [(c["operation"], c["status"], c["mutating"]) for c in emu.emulator.calls
                 if c["service"] == "elbv2" and c["operation"].startswith("Set")]
        assert calls == [("SetSubnets", 200, True), ("SetSecurityGroups", 200, True),
                         ("SetSubnets", 400, True)]
    finally:
        emu.stop()
