"""EC2 service: lifecycle, dependency errors, filters, pagination, NAT
gateway eventual states and the cross-service ENI functions."""

import pytest

from awsemu.base import AwsError
from svc_helpers import advance, ctx, make_emulator, tags


@pytest.fixture
def env():
    emu = make_emulator(delay_scale=0.01)
    return emu, emu.services["ec2"], ctx(emu, "ec2")


def err(fn, *args):
    with pytest.raises(AwsError) as e:
        fn(*args)
    return e.value


def vpc(ec2, r, cidr="10.0.0.0/16", name=None):
    spec = [{"ResourceType": "vpc", "Tags": tags(("Name", name))}] if name else []
    return ec2.CreateVpc(r, {"CidrBlock": cidr, "TagSpecifications": spec})["Vpc"]["VpcId"]


def subnet(ec2, r, vpc_id, cidr, az="us-east-1a"):
    return ec2.CreateSubnet(r, {"VpcId": vpc_id, "CidrBlock": cidr,
                                "AvailabilityZone": az})["Subnet"]["SubnetId"]


def test_vpc_ids_state_and_defaults(env):
    emu, ec2, r = env
    out = ec2.CreateVpc(r, {"CidrBlock": "10.1.0.0/16",
                            "TagSpecifications": [{"ResourceType": "vpc",
                                                   "Tags": tags(("app", "x"))}]})["Vpc"]
    assert out["VpcId"].startswith("vpc-") and len(out["VpcId"]) == 21
    assert out["State"] == "pending" and out["Tags"] == tags(("app", "x"))
    advance(emu, 1)
    got = ec2.DescribeVpcs(r, {"VpcIds": [out["VpcId"]]})["Vpcs"][0]
    assert got["State"] == "available" and got["OwnerId"] == "123456789012"
    sgs = ec2.DescribeSecurityGroups(r, {"Filters": [{"Name": "vpc-id",
                                                      "Values": [out["VpcId"]]}]})
    assert [g["GroupName"] for g in sgs["SecurityGroups"]] == ["default"]
    rtbs = ec2.DescribeRouteTables(r, {"Filters": [{"Name": "association.main",
                                                    "Values": ["true"]}]})["RouteTables"]
    assert len(rtbs) == 1 and rtbs[0]["Routes"][0]["GatewayId"] == "local"
    attr = ec2.DescribeVpcAttribute(r, {"VpcId": out["VpcId"], "Attribute": "enableDnsHostnames"})
    assert attr["EnableDnsHostnames"] == {"Value": False}
    ec2.ModifyVpcAttribute(r, {"VpcId": out["VpcId"], "EnableDnsHostnames": {"Value": True}})
    attr = ec2.DescribeVpcAttribute(r, {"VpcId": out["VpcId"], "Attribute": "enableDnsHostnames"})
    assert attr["EnableDnsHostnames"] == {"Value": True}
    e = err(ec2.ModifyVpcAttribute, r, {"VpcId": out["VpcId"], "EnableDnsSupport": {"Value": True},
                                        "EnableDnsHostnames": {"Value": True}})
    assert e.code == "InvalidParameterCombination"


def test_vpc_cidr_validation_and_not_found(env):
    _, ec2, r = env
    assert err(ec2.CreateVpc, r, {"CidrBlock": "10.0.0.0/8"}).code == "InvalidVpc.Range"
    assert err(ec2.CreateVpc, r, {"CidrBlock": "10.0.0.300/16"}).code == "InvalidParameterValue"
    assert err(ec2.DescribeVpcs, r, {"VpcIds": ["vpc-0123456789abcdef0"]}).code == \
        "InvalidVpcID.NotFound"
    # Another region does not see the VPC.
    v = vpc(ec2, r)
    other = ctx(r.emulator, "ec2", region="eu-west-1")
    assert ec2.DescribeVpcs(other, {})["Vpcs"] == []
    assert err(ec2.DeleteVpc, other, {"VpcId": v}).code == "InvalidVpcID.NotFound"


def test_subnet_rules(env):
    _, ec2, r = env
    v = vpc(ec2, r)
    s1 = subnet(ec2, r, v, "10.0.0.0/24", "us-east-1a")
    assert err(ec2.CreateSubnet, r, {"VpcId": v, "CidrBlock": "10.0.0.128/25"}).code == \
        "InvalidSubnet.Conflict"
    assert err(ec2.CreateSubnet, r, {"VpcId": v, "CidrBlock": "10.9.0.0/24"}).code == \
        "InvalidSubnet.Range"
    e = err(ec2.CreateSubnet, r, {"VpcId": v, "CidrBlock": "10.0.1.0/24",
                                  "AvailabilityZone": "us-east-1z"})
    assert e.code == "InvalidParameterValue" and "us-east-1a" in e.message
    got = ec2.DescribeSubnets(r, {"SubnetIds": [s1]})["Subnets"][0]
    assert got["AvailableIpAddressCount"] == 251 and got["MapPublicIpOnLaunch"] is False
    ec2.ModifySubnetAttribute(r, {"SubnetId": s1, "MapPublicIpOnLaunch": {"Value": True}})
    assert ec2.DescribeSubnets(r, {"SubnetIds": [s1]})["Subnets"][0]["MapPublicIpOnLaunch"]
    zones = ec2.DescribeAvailabilityZones(r, {})["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert zones[0]["ZoneId"] == "use1-az1"


def test_vpc_delete_dependencies(env):
    _, ec2, r = env
    v = vpc(ec2, r)
    s = subnet(ec2, r, v, "10.0.0.0/24")
    igw = ec2.CreateInternetGateway(r, {})["InternetGateway"]["InternetGatewayId"]
    ec2.AttachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})
    sg = ec2.CreateSecurityGroup(r, {"GroupName": "web", "Description": "d", "VpcId": v})["GroupId"]
    rtb = ec2.CreateRouteTable(r, {"VpcId": v})["RouteTable"]["RouteTableId"]
    assoc = ec2.AssociateRouteTable(r, {"RouteTableId": rtb, "SubnetId": s})["AssociationId"]
    eni = ec2.create_network_interface_internal(s, [sg], "task")
    for step in (
            lambda: ec2.delete_network_interface_internal(eni["NetworkInterfaceId"]),
            lambda: ec2.DisassociateRouteTable(r, {"AssociationId": assoc}),
            lambda: ec2.DeleteSubnet(r, {"SubnetId": s}),
            lambda: ec2.DeleteRouteTable(r, {"RouteTableId": rtb}),
            lambda: ec2.DeleteSecurityGroup(r, {"GroupId": sg}),
            lambda: ec2.DetachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})):
        e = err(ec2.DeleteVpc, r, {"VpcId": v})
        assert e.code == "DependencyViolation"
        step()
    ec2.DeleteVpc(r, {"VpcId": v})
    assert ec2.get_vpc(v) is None
    assert ec2.DescribeSecurityGroups(r, {})["SecurityGroups"] == []
    assert ec2.DescribeRouteTables(r, {})["RouteTables"] == []
    ec2.DeleteInternetGateway(r, {"InternetGatewayId": igw})


def test_subnet_with_eni_and_attached_igw(env):
    _, ec2, r = env
    v = vpc(ec2, r)
    s = subnet(ec2, r, v, "10.0.0.0/24")
    eni = ec2.create_network_interface_internal(s, [], "ecs task")
    assert err(ec2.DeleteSubnet, r, {"SubnetId": s}).code == "DependencyViolation"
    igw = ec2.CreateInternetGateway(r, {})["InternetGateway"]["InternetGatewayId"]
    ec2.AttachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})
    assert err(ec2.AttachInternetGateway, r, {"InternetGatewayId": igw, "VpcId": v}).code == \
        "Resource.AlreadyAssociated"
    assert err(ec2.DeleteInternetGateway, r, {"InternetGatewayId": igw}).code == \
        "DependencyViolation"
    ec2.delete_network_interface_internal(eni["NetworkInterfaceId"])
    ec2.DeleteSubnet(r, {"SubnetId": s})


def test_security_group_rules(env):
    _, ec2, r = env
    v = vpc(ec2, r)
    lb = ec2.CreateSecurityGroup(r, {"GroupName": "lb", "Description": "lb", "VpcId": v})["GroupId"]
    task = ec2.CreateSecurityGroup(r, {"GroupName": "task", "Description": "t",
                                       "VpcId": v})["GroupId"]
    assert err(ec2.CreateSecurityGroup, r, {"GroupName": "lb", "Description": "x",
                                            "VpcId": v}).code == "InvalidGroup.Duplicate"
    http = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "web"}]}
    out = ec2.AuthorizeSecurityGroupIngress(r, {
        "GroupId": lb, "IpPermissions": [http],
        "TagSpecifications": [{"ResourceType": "security-group-rule", "Tags": tags(("a", "b"))}]})
    rule = out["SecurityGroupRules"][0]
    assert rule["SecurityGroupRuleId"].startswith("sgr-") and rule["CidrIpv4"] == "0.0.0.0/0"
    assert rule["Tags"] == tags(("a", "b"))
    assert err(ec2.AuthorizeSecurityGroupIngress, r, {"GroupId": lb, "IpPermissions": [http]}
               ).code == "InvalidPermission.Duplicate"
    ec2.AuthorizeSecurityGroupIngress(r, {"GroupId": task, "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": lb}]}]})
    g = ec2.DescribeSecurityGroups(r, {"GroupIds": [task]})["SecurityGroups"][0]
    assert g["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == lb
    assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert "FromPort" not in g["IpPermissionsEgress"][0]
    rules = ec2.DescribeSecurityGroupRules(r, {"Filters": [{"Name": "group-id",
                                                            "Values": [task]}]})
    assert sorted(x["IsEgress"] for x in rules["SecurityGroupRules"]) == [False, True]
    # lb is referenced by task's rule: cannot delete.
    assert err(ec2.DeleteSecurityGroup, r, {"GroupId": lb}).code == "DependencyViolation"
    assert err(ec2.AuthorizeSecurityGroupIngress, r, {"GroupId": lb, "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}
               ).code == "InvalidParameterValue"
    out = ec2.RevokeSecurityGroupIngress(r, {"GroupId": task, "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": lb}]}]})
    assert out["Return"] is True
    assert err(ec2.RevokeSecurityGroupIngress, r, {"GroupId": task, "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "UserIdGroupPairs": [{"GroupId": lb}]}]}).code == "InvalidPermission.NotFound"
    ec2.RevokeSecurityGroupIngress(r, {"GroupId": lb,
                                       "SecurityGroupRuleIds": [rule["SecurityGroupRuleId"]]})
    assert ec2.DescribeSecurityGroups(r, {"GroupIds": [lb]})["SecurityGroups"][0][
        "IpPermissions"] == []
    ec2.DeleteSecurityGroup(r, {"GroupId": lb})
    default = [x for x in ec2.DescribeSecurityGroups(r, {})["SecurityGroups"]
               if x["GroupName"] == "default"][0]
    assert err(ec2.DeleteSecurityGroup, r, {"GroupId": default["GroupId"]}).code == "CannotDelete"


def test_routes_and_associations(env):
    emu, ec2, r = env
    v = vpc(ec2, r)
    s = subnet(ec2, r, v, "10.0.0.0/24")
    igw = ec2.CreateInternetGateway(r, {})["InternetGateway"]["InternetGatewayId"]
    rtb = ec2.CreateRouteTable(r, {"VpcId": v})["RouteTable"]["RouteTableId"]
    e = err(ec2.CreateRoute, r, {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0",
                                 "GatewayId": igw})
    assert e.code == "InvalidParameterValue"   # not attached to this VPC
    ec2.AttachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})
    ec2.CreateRoute(r, {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw})
    assert err(ec2.CreateRoute, r, {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0",
                                    "GatewayId": igw}).code == "RouteAlreadyExists"
    a = ec2.AssociateRouteTable(r, {"RouteTableId": rtb, "SubnetId": s})
    assert a["AssociationId"].startswith("rtbassoc-")
    assert err(ec2.AssociateRouteTable, r, {"RouteTableId": rtb, "SubnetId": s}).code == \
        "Resource.AlreadyAssociated"
    got = ec2.DescribeRouteTables(r, {"Filters": [{"Name": "association.subnet-id",
                                                   "Values": [s]}]})["RouteTables"]
    assert [t["RouteTableId"] for t in got] == [rtb]
    assert err(ec2.DeleteRouteTable, r, {"RouteTableId": rtb}).code == "DependencyViolation"
    assert err(ec2.DeleteRoute, r, {"RouteTableId": rtb, "DestinationCidrBlock": "10.0.0.0/16"}
               ).code == "InvalidParameterValue"
    assert err(ec2.ReplaceRoute, r, {"RouteTableId": rtb, "DestinationCidrBlock": "1.0.0.0/8",
                                     "GatewayId": igw}).code == "InvalidRoute.NotFound"
    ec2.DetachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})
    route = [x for x in ec2.DescribeRouteTables(r, {"RouteTableIds": [rtb]})["RouteTables"][0][
        "Routes"] if x["DestinationCidrBlock"] == "0.0.0.0/0"][0]
    assert route["State"] == "blackhole"
    ec2.DeleteRoute(r, {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0"})
    assert err(ec2.DeleteRoute, r, {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0"}
               ).code == "InvalidRoute.NotFound"


def test_nat_gateway_lifecycle(env):
    emu, ec2, r = env
    v = vpc(ec2, r)
    s = subnet(ec2, r, v, "10.0.0.0/24")
    igw = ec2.CreateInternetGateway(r, {})["InternetGateway"]["InternetGatewayId"]
    ec2.AttachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})
    alloc = ec2.AllocateAddress(r, {"Domain": "vpc"})["AllocationId"]
    assert alloc.startswith("eipalloc-")
    nat = ec2.CreateNatGateway(r, {"SubnetId": s, "AllocationId": alloc, "ClientToken": "t1",
                                   "TagSpecifications": [{"ResourceType": "natgateway",
                                                          "Tags": tags(("app", "a"))}]})
    nid = nat["NatGateway"]["NatGatewayId"]
    assert nat["NatGateway"]["State"] == "pending"
    # Same client token: same NAT gateway.
    again = ec2.CreateNatGateway(r, {"SubnetId": s, "AllocationId": alloc, "ClientToken": "t1"})
    assert again["NatGateway"]["NatGatewayId"] == nid
    addr = ec2.DescribeAddresses(r, {"AllocationIds": [alloc]})["Addresses"][0]
    assert addr["AssociationId"].startswith("eipassoc-")
    assert err(ec2.ReleaseAddress, r, {"AllocationId": alloc}).code == "InvalidIPAddress.InUse"
    assert err(ec2.DetachInternetGateway, r, {"InternetGatewayId": igw, "VpcId": v}).code == \
        "DependencyViolation"
    advance(emu, 0.1)   # 30 s scaled by 0.01 = 0.3 s: not yet
    assert ec2.DescribeNatGateways(r, {"NatGatewayIds": [nid]})["NatGateways"][0]["State"] == \
        "pending"
    advance(emu, 0.3)
    got = ec2.DescribeNatGateways(r, {"Filter": [{"Name": "tag:app", "Values": ["a"]}]})
    gw = got["NatGateways"][0]
    assert gw["State"] == "available" and gw["NatGatewayAddresses"][0]["PublicIp"] == \
        addr["PublicIp"]
    rtb = ec2.CreateRouteTable(r, {"VpcId": v})["RouteTable"]["RouteTableId"]
    ec2.CreateRoute(r, {"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0",
                        "NatGatewayId": nid})
    assert err(ec2.DeleteSubnet, r, {"SubnetId": s}).code == "DependencyViolation"
    ec2.DeleteNatGateway(r, {"NatGatewayId": nid})
    assert ec2.DescribeNatGateways(r, {"NatGatewayIds": [nid]})["NatGateways"][0]["State"] == \
        "deleting"
    advance(emu, 0.31)
    gw = ec2.DescribeNatGateways(r, {"NatGatewayIds": [nid]})["NatGateways"][0]
    assert gw["State"] == "deleted" and "DeleteTime" in gw
    route = ec2.DescribeRouteTables(r, {"RouteTableIds": [rtb]})["RouteTables"][0]["Routes"][1]
    assert route["State"] == "blackhole"
    ec2.ReleaseAddress(r, {"AllocationId": alloc})
    ec2.DetachInternetGateway(r, {"InternetGatewayId": igw, "VpcId": v})
    ec2.DeleteSubnet(r, {"SubnetId": s})
    advance(emu, 37)   # deleted NAT gateways stay visible about an hour
    assert err(ec2.DescribeNatGateways, r, {"NatGatewayIds": [nid]}).code == "NatGatewayNotFound"


def test_nat_gateway_fails_without_internet_gateway(env):
    emu, ec2, r = env
    v = vpc(ec2, r)
    s = subnet(ec2, r, v, "10.0.0.0/24")
    alloc = ec2.AllocateAddress(r, {"Domain": "vpc"})["AllocationId"]
    nid = ec2.CreateNatGateway(r, {"SubnetId": s, "AllocationId": alloc})["NatGateway"][
        "NatGatewayId"]
    advance(emu, 0.31)
    gw = ec2.DescribeNatGateways(r, {"NatGatewayIds": [nid]})["NatGateways"][0]
    assert gw["State"] == "failed" and gw["FailureCode"] == "Gateway.NotAttached"
    ec2.ReleaseAddress(r, {"AllocationId": alloc})   # released with the failure
    ec2.DeleteSubnet(r, {"SubnetId": s})


def test_tags_filters_and_describe_tags(env):
    _, ec2, r = env
    a = vpc(ec2, r, "10.0.0.0/16", name="a")
    b = vpc(ec2, r, "10.1.0.0/16", name="b")
    ec2.CreateTags(r, {"Resources": [a, b], "Tags": tags(("aviary.io/application", "shop"))})
    ec2.CreateTags(r, {"Resources": [b], "Tags": tags(("aviary.io/managed-by", "aviary"))})
    f = ec2.DescribeVpcs(r, {"Filters": [{"Name": "tag:aviary.io/application", "Values": ["shop"]},
                                         {"Name": "tag-key", "Values": ["aviary.io/managed-by"]}]})
    assert [x["VpcId"] for x in f["Vpcs"]] == [b]
    f = ec2.DescribeVpcs(r, {"Filters": [{"Name": "tag:Name", "Values": ["?"]}]})
    assert len(f["Vpcs"]) == 2
    assert err(ec2.DescribeVpcs, r, {"Filters": [{"Name": "bogus", "Values": ["x"]}]}).code == \
        "InvalidParameterValue"
    assert err(ec2.CreateTags, r, {"Resources": ["vpc-0000000000000000a"],
                                   "Tags": tags(("k", "v"))}).code == "InvalidVpcID.NotFound"
    assert err(ec2.CreateTags, r, {"Resources": [a], "Tags": tags(("aws:x", "v"))}).code == \
        "InvalidParameterValue"
    rows = ec2.DescribeTags(r, {"Filters": [{"Name": "resource-id", "Values": [b]}]})["Tags"]
    assert {(t["Key"], t["ResourceType"]) for t in rows} == {
        ("Name", "vpc"), ("aviary.io/application", "vpc"), ("aviary.io/managed-by", "vpc")}
    ec2.DeleteTags(r, {"Resources": [b], "Tags": [{"Key": "Name", "Value": "wrong"}]})
    ec2.DeleteTags(r, {"Resources": [b], "Tags": [{"Key": "aviary.io/managed-by"}]})
    rows = ec2.DescribeTags(r, {"Filters": [{"Name": "resource-id", "Values": [b]}]})["Tags"]
    assert {t["Key"] for t in rows} == {"Name", "aviary.io/application"}
    e = err(ec2.CreateVpc, r, {"CidrBlock": "10.2.0.0/16", "TagSpecifications": [
        {"ResourceType": "subnet", "Tags": tags(("a", "b"))}]})
    assert e.code == "InvalidParameterValue"


def test_pagination(env):
    _, ec2, r = env
    ids = [vpc(ec2, r, f"10.{i}.0.0/16") for i in range(12)]
    seen, token, pages = [], None, 0
    while True:
        p = {"MaxResults": 5}
        if token:
            p["NextToken"] = token
        out = ec2.DescribeVpcs(r, p)
        seen += [v["VpcId"] for v in out["Vpcs"]]
        pages += 1
        token = out.get("NextToken")
        if not token or pages > 10:
            break
    assert seen == ids and pages == 3
    assert err(ec2.DescribeVpcs, r, {"VpcIds": ids[:1], "MaxResults": 5}).code == \
        "InvalidParameterCombination"


def test_dry_run(env):
    _, ec2, r = env
    e = err(ec2.CreateVpc, r, {"CidrBlock": "10.0.0.0/16", "DryRun": True})
    assert e.code == "DryRunOperation" and e.status == 412
    assert ec2.DescribeVpcs(r, {})["Vpcs"] == []


def test_cross_service_enis(env):
    emu, ec2, r = env
    v = vpc(ec2, r, "10.0.0.0/16")
    s = subnet(ec2, r, v, "10.0.5.0/28")
    assert ec2.get_vpc(v)["CidrBlock"] == "10.0.0.0/16"
    assert ec2.get_subnet(s)["AvailabilityZone"] == "us-east-1a"
    assert ec2.get_vpc("vpc-nope") is None and ec2.get_subnet("subnet-nope") is None
    sg = ec2.CreateSecurityGroup(r, {"GroupName": "t", "Description": "t", "VpcId": v})["GroupId"]
    assert ec2.get_security_group(sg)["GroupName"] == "t"
    ips = []
    for i in range(11):   # a /28 has 16 - 5 usable addresses
        eni = ec2.create_network_interface_internal(s, [sg], f"task {i}", public_ip=(i == 0))
        assert eni["SubnetId"] == s and eni["VpcId"] == v
        ips.append(eni["PrivateIpAddress"])
    assert len(set(ips)) == 11 and ips[0] == "10.0.5.4" and "10.0.5.15" not in ips
    with pytest.raises(AwsError) as e:
        ec2.create_network_interface_internal(s, [sg], "one too many")
    assert e.value.code == "InsufficientFreeAddressesInSubnet"
    assert ec2.get_subnet(s)["AvailableIpAddressCount"] == 0
    enis = ec2.DescribeNetworkInterfaces(r, {"Filters": [{"Name": "group-id", "Values": [sg]}]})
    assert len(enis["NetworkInterfaces"]) == 11
    assert enis["NetworkInterfaces"][0]["Association"]["PublicIp"]
    assert err(ec2.DeleteSecurityGroup, r, {"GroupId": sg}).code == "DependencyViolation"
    first = enis["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.delete_network_interface_internal(first, delay_seconds=10)   # 0.1 s scaled
    assert ec2.DescribeNetworkInterfaces(r, {"NetworkInterfaceIds": [first]})[
        "NetworkInterfaces"][0]["Status"] == "available"
    advance(emu, 0.2)
    assert err(ec2.DescribeNetworkInterfaces, r, {"NetworkInterfaceIds": [first]}).code == \
        "InvalidNetworkInterfaceID.NotFound"
    again = ec2.create_network_interface_internal(s, [sg], "reuse")
    assert again["PrivateIpAddress"] == "10.0.5.4"
