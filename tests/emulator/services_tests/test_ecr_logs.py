"""ECR repositories and CloudWatch Logs log groups."""

import json

import pytest

from awsemu.base import AwsError
from svc_helpers import ctx, make_emulator, tags

POLICY = json.dumps({"rules": [{
    "rulePriority": 1, "description": "keep last 2",
    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2},
    "action": {"type": "expire"}}]})


def err(fn, *args):
    with pytest.raises(AwsError) as e:
        fn(*args)
    return e.value


@pytest.fixture
def env():
    emu = make_emulator()
    return emu, emu.services["ecr"], emu.services["logs"], ctx(emu, "ecr"), ctx(emu, "logs")


def test_repository_lifecycle(env):
    emu, ecr, _, r, _ = env
    repo = ecr.CreateRepository(r, {"repositoryName": "shop",
                                    "imageScanningConfiguration": {"scanOnPush": True},
                                    "tags": tags(("aviary.io/application", "shop"))})["repository"]
    assert repo["repositoryUri"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop"
    assert repo["repositoryArn"] == "arn:aws:ecr:us-east-1:123456789012:repository/shop"
    assert repo["imageTagMutability"] == "MUTABLE"
    assert repo["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert err(ecr.CreateRepository, r, {"repositoryName": "shop"}).code == \
        "RepositoryAlreadyExistsException"
    assert err(ecr.DescribeRepositories, r, {"repositoryNames": ["nope"]}).code == \
        "RepositoryNotFoundException"
    got = ecr.DescribeRepositories(r, {"repositoryNames": ["shop"]})["repositories"][0]
    assert got["imageScanningConfiguration"] == {"scanOnPush": True}
    ecr.PutImageScanningConfiguration(r, {"repositoryName": "shop",
                                          "imageScanningConfiguration": {"scanOnPush": False}})
    assert ecr.DescribeRepositories(r, {})["repositories"][0]["imageScanningConfiguration"] == \
        {"scanOnPush": False}
    ecr.TagResource(r, {"resourceArn": repo["repositoryArn"], "tags": tags(("k", "v"))})
    assert ecr.ListTagsForResource(r, {"resourceArn": repo["repositoryArn"]})["tags"] == tags(
        ("aviary.io/application", "shop"), ("k", "v"))
    assert err(ecr.ListTagsForResource, r, {"resourceArn": "bogus"}).code == \
        "InvalidParameterException"
    # Images, lifecycle policy, deletion.
    assert ecr.DescribeImages(r, {"repositoryName": "shop"})["imageDetails"] == []
    assert err(ecr.GetLifecyclePolicy, r, {"repositoryName": "shop"}).code == \
        "LifecyclePolicyNotFoundException"
    ecr.PutLifecyclePolicy(r, {"repositoryName": "shop", "lifecyclePolicyText": POLICY})
    assert ecr.GetLifecyclePolicy(r, {"repositoryName": "shop"})["lifecyclePolicyText"] == POLICY
    for i in range(4):
        emu.clock.offset += 1
        ecr.push_image_internal("shop", f"v{i}")
    imgs = ecr.DescribeImages(r, {"repositoryName": "shop"})["imageDetails"]
    assert sorted(t for i in imgs for t in i["imageTags"]) == ["v2", "v3"]
    assert imgs[0]["imageDigest"].startswith("sha256:")
    assert err(ecr.DescribeImages, r, {"repositoryName": "shop",
                                       "imageIds": [{"imageTag": "v0"}]}).code == \
        "ImageNotFoundException"
    assert err(ecr.DeleteRepository, r, {"repositoryName": "shop"}).code == \
        "RepositoryNotEmptyException"
    ecr.DeleteRepository(r, {"repositoryName": "shop", "force": True})
    assert ecr.DescribeRepositories(r, {})["repositories"] == []


def test_lifecycle_policy_validation_and_immutability(env):
    emu, ecr, _, r, _ = env
    ecr.CreateRepository(r, {"repositoryName": "imm", "imageTagMutability": "IMMUTABLE"})
    bad = json.dumps({"rules": [{"rulePriority": 1, "selection": {
        "tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 3},
        "action": {"type": "expire"}}], "padding": "x" * 60})
    e = err(ecr.PutLifecyclePolicy, r, {"repositoryName": "imm", "lifecyclePolicyText": bad})
    assert e.code == "InvalidParameterException" and "tagPrefixList" in e.message
    e = err(ecr.PutLifecyclePolicy, r, {"repositoryName": "imm",
                                        "lifecyclePolicyText": "{" + " " * 120})
    assert e.code == "InvalidParameterException"
    ecr.push_image_internal("imm", "v1")
    with pytest.raises(AwsError) as e:
        ecr.push_image_internal("imm", "v1")
    assert e.value.code == "ImageTagAlreadyExistsException"


def test_repository_pagination(env):
    _, ecr, _, r, _ = env
    for i in range(5):
        ecr.CreateRepository(r, {"repositoryName": f"r{i}"})
    first = ecr.DescribeRepositories(r, {"maxResults": 3})
    rest = ecr.DescribeRepositories(r, {"maxResults": 3, "nextToken": first["nextToken"]})
    assert [x["repositoryName"] for x in first["repositories"] + rest["repositories"]] == \
        [f"r{i}" for i in range(5)]
    assert "nextToken" not in rest


def test_log_groups(env):
    emu, _, logs, _, r = env
    logs.CreateLogGroup(r, {"logGroupName": "/aviary/shop", "tags": {"aviary.io/application":
                                                                      "shop"}})
    assert err(logs.CreateLogGroup, r, {"logGroupName": "/aviary/shop"}).code == \
        "ResourceAlreadyExistsException"
    assert err(logs.PutRetentionPolicy, r, {"logGroupName": "/aviary/shop",
                                            "retentionInDays": 10}).code == \
        "InvalidParameterException"
    logs.PutRetentionPolicy(r, {"logGroupName": "/aviary/shop", "retentionInDays": 14})
    g = logs.DescribeLogGroups(r, {"logGroupNamePrefix": "/aviary/"})["logGroups"][0]
    assert g["retentionInDays"] == 14
    assert g["arn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/aviary/shop:*"
    logs.TagLogGroup(r, {"logGroupName": "/aviary/shop", "tags": {"k": "v"}})
    assert logs.ListTagsLogGroup(r, {"logGroupName": "/aviary/shop"})["tags"] == {
        "aviary.io/application": "shop", "k": "v"}
    assert logs.get_log_group("/aviary/shop")["retentionInDays"] == 14
    assert err(logs.ListTagsLogGroup, r, {"logGroupName": "/nope"}).code == \
        "ResourceNotFoundException"
    logs.DeleteLogGroup(r, {"logGroupName": "/aviary/shop"})
    assert err(logs.DeleteLogGroup, r, {"logGroupName": "/aviary/shop"}).code == \
        "ResourceNotFoundException"
    assert logs.get_log_group("/aviary/shop") is None


def test_log_group_listing(env):
    _, _, logs, _, r = env
    for name in ("/b/2", "/a/1", "/b/1", "/c"):
        logs.CreateLogGroup(r, {"logGroupName": name})
    out = logs.DescribeLogGroups(r, {"limit": 2})
    assert [g["logGroupName"] for g in out["logGroups"]] == ["/a/1", "/b/1"]
    out = logs.DescribeLogGroups(r, {"limit": 2, "nextToken": out["nextToken"]})
    assert [g["logGroupName"] for g in out["logGroups"]] == ["/b/2", "/c"]
    assert "nextToken" not in out
    assert [g["logGroupName"] for g in logs.DescribeLogGroups(
        r, {"logGroupNamePrefix": "/b/"})["logGroups"]] == ["/b/1", "/b/2"]
    assert err(logs.DescribeLogGroups, r, {"logGroupNamePrefix": "/b", "logGroupNamePattern": "b"}
               ).code == "InvalidParameterException"
    other = ctx(r.emulator, "logs", region="eu-west-1")
    assert logs.DescribeLogGroups(other, {})["logGroups"] == []
