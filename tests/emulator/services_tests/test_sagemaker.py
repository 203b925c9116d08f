"""SageMaker notebook instances: the state machine, role/subnet checks
against the real IAM and EC2 modules, presigned URLs and tags."""

import json

import pytest

from awsemu import base
from awsemu.base import AwsError
from awsemu.services.ec2 import Ec2Service
from awsemu.services.iam import IamService
from awsemu.services.sagemaker import Sagemaker

from test_ecs import advance, call

TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


def world():
    em = base.Emulator()
    for cls in (Ec2Service, IamService, Sagemaker):
        em.register(cls)
    role = call(em, "iam", "CreateRole", RoleName="nb",
                AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    other = dict(TRUST, Statement=[dict(TRUST["Statement"][0],
                                        Principal={"Service": "ecs-tasks.amazonaws.com"})])
    ecs_role = call(em, "iam", "CreateRole", RoleName="ecs",
                    AssumeRolePolicyDocument=json.dumps(other))["Role"]["Arn"]
    return em, role, ecs_role


def status(em, name="lab"):
    return call(em, "sagemaker", "DescribeNotebookInstance",
                NotebookInstanceName=name)["NotebookInstanceStatus"]


def test_notebook_state_machine():
    em, role, ecs_role = world()
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="lab",
             InstanceType="ml.t3.medium", RoleArn=ecs_role)
    assert e.value.code == "ValidationException" and "Could not assume role" in e.value.message
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="lab",
             InstanceType="ml.t3.medium", RoleArn=role.replace("nb", "missing"))
    assert e.value.code == "ValidationException"
    arn = call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="Lab",
               InstanceType="ml.t3.medium", RoleArn=role,
               Tags=[{"Key": "team", "Value": "ml"}])["NotebookInstanceArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:{base.ACCOUNT_ID}:notebook-instance/lab"
    d = call(em, "sagemaker", "DescribeNotebookInstance", NotebookInstanceName="Lab")
    assert d["NotebookInstanceStatus"] == "Pending"
    assert d["Url"] == "Lab.notebook.us-east-1.sagemaker.aws" and d["VolumeSizeInGB"] == 5
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="Lab",
             InstanceType="ml.t3.medium", RoleArn=role)
    assert "duplicate" in e.value.message
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "StopNotebookInstance", NotebookInstanceName="Lab")
    assert e.value.code == "ValidationException"
    advance(em, 181, step=10)
    assert status(em, "Lab") == "InService"
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "UpdateNotebookInstance", NotebookInstanceName="Lab",
             InstanceType="ml.t3.large")
    assert e.value.code == "ValidationException"
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "DeleteNotebookInstance", NotebookInstanceName="Lab")
    assert e.value.code == "ValidationException"
    call(em, "sagemaker", "StopNotebookInstance", NotebookInstanceName="Lab")
    assert status(em, "Lab") == "Stopping"
    advance(em, 61, step=10)
    assert status(em, "Lab") == "Stopped"
    call(em, "sagemaker", "UpdateNotebookInstance", NotebookInstanceName="Lab",
         InstanceType="ml.t3.large", VolumeSizeInGB=20)
    assert status(em, "Lab") == "Updating"
    advance(em, 61, step=10)
    d = call(em, "sagemaker", "DescribeNotebookInstance", NotebookInstanceName="Lab")
    assert (d["NotebookInstanceStatus"], d["InstanceType"], d["VolumeSizeInGB"]) == \
        ("Stopped", "ml.t3.large", 20)
    call(em, "sagemaker", "StartNotebookInstance", NotebookInstanceName="Lab")
    assert status(em, "Lab") == "Pending"
    advance(em, 181, step=10)
    url = call(em, "sagemaker", "CreatePresignedNotebookInstanceUrl",
               NotebookInstanceName="Lab")["AuthorizedUrl"]
    assert url.startswith("https://Lab.notebook.us-east-1.sagemaker.aws?authToken=")
    assert call(em, "sagemaker", "AddTags", ResourceArn=arn,
                Tags=[{"Key": "env", "Value": "dev"}])["Tags"] == [
        {"Key": "team", "Value": "ml"}, {"Key": "env", "Value": "dev"}]
    assert len(call(em, "sagemaker", "ListTags", ResourceArn=arn)["Tags"]) == 2
    call(em, "sagemaker", "StopNotebookInstance", NotebookInstanceName="Lab")
    advance(em, 61, step=10)
    call(em, "sagemaker", "DeleteNotebookInstance", NotebookInstanceName="Lab")
    assert status(em, "Lab") == "Deleting"
    advance(em, 61, step=10)
    with pytest.raises(AwsError) as e:
        status(em, "Lab")
    assert e.value.message == "RecordNotFound"


def test_notebook_in_a_subnet():
    em, role, _ = world()
    vpc = call(em, "ec2", "CreateVpc", CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    advance(em, 2)
    subnet = call(em, "ec2", "CreateSubnet", VpcId=vpc, CidrBlock="10.1.0.0/24")[
        "Subnet"]["SubnetId"]
    sg = call(em, "ec2", "CreateSecurityGroup", GroupName="nb", Description="nb",
              VpcId=vpc)["GroupId"]
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="lab",
             InstanceType="ml.t3.medium", RoleArn=role, DirectInternetAccess="Disabled")
    assert e.value.code == "ValidationException"
    with pytest.raises(AwsError) as e:
        call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="lab",
             InstanceType="ml.t3.medium", RoleArn=role, SubnetId="subnet-0123456789abcdef0",
             SecurityGroupIds=[sg])
    assert "does not exist" in e.value.message
    call(em, "sagemaker", "CreateNotebookInstance", NotebookInstanceName="lab",
         InstanceType="ml.t3.medium", RoleArn=role, SubnetId=subnet, SecurityGroupIds=[sg],
         DirectInternetAccess="Disabled")
    d = call(em, "sagemaker", "DescribeNotebookInstance", NotebookInstanceName="lab")
    eni = d["NetworkInterfaceId"]
    ids = [e["NetworkInterfaceId"] for e in call(em, "ec2", "DescribeNetworkInterfaces")[
        "NetworkInterfaces"]]
    assert eni in ids
    advance(em, 181, step=10)
    call(em, "sagemaker", "StopNotebookInstance", NotebookInstanceName="lab")
    advance(em, 61, step=10)
    call(em, "sagemaker", "DeleteNotebookInstance", NotebookInstanceName="lab")
    advance(em, 61, step=10)
    ids = [e["NetworkInterfaceId"] for e in call(em, "ec2", "DescribeNetworkInterfaces")[
        "NetworkInterfaces"]]
    assert eni not in ids
