"""Round trips through the real service modules (awsemu/services/) with
boto3 and awscli: a network, an ECS cluster, S3 objects. Parts whose module
is not there yet are skipped with a message."""

import json
import subprocess

import pytest
from botocore.exceptions import ClientError


def need(emu, service):
    if service not in emu.emulator.services:
        pytest.skip(f"no {service} service module loaded yet")


def test_network(emu):
    need(emu, "ec2")
    ec2 = emu.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]
    assert vpc["VpcId"].startswith("vpc-") and vpc["CidrBlock"] == "10.20.0.0/16"
    subnets = [ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=f"10.20.{i}.0/24",
                                 AvailabilityZone=f"us-east-1{z}")["Subnet"]
               for i, z in ((1, "a"), (2, "b"))]
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    assert sorted(s["SubnetId"] for s in found["Subnets"]) == \
        sorted(s["SubnetId"] for s in subnets)
    with pytest.raises(ClientError) as info:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert info.value.response["Error"]["Code"] == "DependencyViolation"
    for s in subnets:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    with pytest.raises(ClientError) as info:
        ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])
    assert info.value.response["Error"]["Code"] == "InvalidVpcID.NotFound"
    mutating = [c["operation"] for c in emu.emulator.calls if c["mutating"]]
    assert mutating[:3] == ["CreateVpc", "CreateSubnet", "CreateSubnet"]


def test_ecs_cluster_with_awscli(emu):
    need(emu, "ecs")
    arn = emu.client("ecs").create_cluster(clusterName="demo")["cluster"]["clusterArn"]
    assert arn == "arn:aws:ecs:us-east-1:123456789012:cluster/demo"
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", emu.url, "ecs", "describe-clusters",
                        "--clusters", "demo"], env=emu.cli_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["clusters"][0]["clusterArn"] == arn
    r = subprocess.run(["/usr/bin/aws", "--endpoint-url", emu.url, "ecs", "describe-services",
                        "--cluster", "demo", "--services", "absent"], env=emu.cli_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["failures"][0]["reason"] == "MISSING"


def test_s3_objects(emu):
    need(emu, "s3")
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="training-data")
    s3.put_object(Bucket="training-data", Key="data/train.csv", Body=b"a,b\n1,2\n")
    got = s3.get_object(Bucket="training-data", Key="data/train.csv")
    assert got["Body"].read() == b"a,b\n1,2\n"
    listed = s3.list_objects_v2(Bucket="training-data", Prefix="data/")
    assert [o["Key"] for o in listed["Contents"]] == ["data/train.csv"]


def test_no_output_warnings_after_scenarios(emu):
    """Results with keys their output shape lacks are reported by /health."""
    test_network(emu) if "ec2" in emu.emulator.services else None
    test_ecs_cluster_with_awscli(emu) if "ecs" in emu.emulator.services else None
    assert emu.app.output_warnings == []


def test_output_warnings_are_reported(make_emulator):
    from awsemu.base import Service

    class Sloppy(Service):
        SERVICE = "ecs"

        def ListClusters(self, req, params):
            return {"clusterArns": [], "clusterARNs": ["typo"]}

    emu = make_emulator(load_services=False, extra_services=[Sloppy])
    assert emu.client("ecs").list_clusters()["clusterArns"] == []
    assert emu.app.output_warnings == ["ecs ListClusters: output has no member 'clusterARNs'"]
