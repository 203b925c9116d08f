"""IAM roles and STS credentials: trust policies, attached and inline
policies, delete conflicts, tags, caller identity and assumed roles."""

import base64
import json
import urllib.parse

import pytest

from awsemu.base import AwsError
from svc_helpers import ctx, make_emulator, tags

TRUST_ECS = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})
TRUST_ACCOUNT = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "sts:AssumeRole"}]})
TRUST_OIDC = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/"
                               "token.actions.githubusercontent.com"},
    "Action": "sts:AssumeRoleWithWebIdentity"}]})
INLINE = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["logs:CreateLogStream"], "Resource": "*"}]})
EXEC_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def err(fn, *args):
    with pytest.raises(AwsError) as e:
        fn(*args)
    return e.value


@pytest.fixture
def env():
    emu = make_emulator()
    return emu, emu.services["iam"], emu.services["sts"], ctx(emu, "iam"), ctx(emu, "sts")


def jwt(claims):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return enc({"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2ln"


def test_role_lifecycle(env):
    emu, iam, _, r, _ = env
    role = iam.CreateRole(r, {"RoleName": "shop-exec", "Path": "/aviary/",
                              "AssumeRolePolicyDocument": TRUST_ECS,
                              "Tags": tags(("aviary.io/managed-by", "aviary"))})["Role"]
    assert role["Arn"] == "arn:aws:iam::123456789012:role/aviary/shop-exec"
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    assert json.loads(urllib.parse.unquote(role["AssumeRolePolicyDocument"])) == \
        json.loads(TRUST_ECS)
    assert err(iam.CreateRole, r, {"RoleName": "SHOP-EXEC", "AssumeRolePolicyDocument":
                                   TRUST_ECS}).code == "EntityAlreadyExists"
    e = err(iam.CreateRole, r, {"RoleName": "bad", "AssumeRolePolicyDocument": "{not json"})
    assert e.code == "MalformedPolicyDocument"
    assert err(iam.GetRole, r, {"RoleName": "nope"}).code == "NoSuchEntity"
    iam.AttachRolePolicy(r, {"RoleName": "shop-exec", "PolicyArn": EXEC_POLICY})
    iam.AttachRolePolicy(r, {"RoleName": "shop-exec", "PolicyArn": EXEC_POLICY})
    assert err(iam.AttachRolePolicy, r, {"RoleName": "shop-exec", "PolicyArn":
               "arn:aws:iam::aws:policy/NoSuchPolicy"}).code == "NoSuchEntity"
    assert err(iam.AttachRolePolicy, r, {"RoleName": "shop-exec", "PolicyArn":
               "not-an-arn-at-all-xxxx"}).code == "InvalidInput"
    listed = iam.ListAttachedRolePolicies(r, {"RoleName": "shop-exec"})
    assert listed["AttachedPolicies"] == [{"PolicyName": "AmazonECSTaskExecutionRolePolicy",
                                           "PolicyArn": EXEC_POLICY}]
    assert listed["IsTruncated"] is False
    iam.PutRolePolicy(r, {"RoleName": "shop-exec", "PolicyName": "logs", "PolicyDocument": INLINE})
    assert err(iam.PutRolePolicy, r, {"RoleName": "shop-exec", "PolicyName": "x",
                                      "PolicyDocument": '{"Statement": [{"Effect": "Maybe"}]}'}
               ).code == "MalformedPolicyDocument"
    got = iam.GetRolePolicy(r, {"RoleName": "shop-exec", "PolicyName": "logs"})
    assert urllib.parse.unquote(got["PolicyDocument"]) == INLINE
    assert iam.ListRolePolicies(r, {"RoleName": "shop-exec"})["PolicyNames"] == ["logs"]
    assert err(iam.DeleteRole, r, {"RoleName": "shop-exec"}).code == "DeleteConflict"
    iam.DetachRolePolicy(r, {"RoleName": "shop-exec", "PolicyArn": EXEC_POLICY})
    assert err(iam.DetachRolePolicy, r, {"RoleName": "shop-exec", "PolicyArn": EXEC_POLICY}
               ).code == "NoSuchEntity"
    assert err(iam.DeleteRole, r, {"RoleName": "shop-exec"}).code == "DeleteConflict"
    iam.DeleteRolePolicy(r, {"RoleName": "shop-exec", "PolicyName": "logs"})
    iam.TagRole(r, {"RoleName": "shop-exec", "Tags": tags(("aviary.io/application", "shop"))})
    assert iam.ListRoleTags(r, {"RoleName": "shop-exec"})["Tags"] == tags(
        ("aviary.io/managed-by", "aviary"), ("aviary.io/application", "shop"))
    iam.UpdateAssumeRolePolicy(r, {"RoleName": "shop-exec", "PolicyDocument": TRUST_ACCOUNT})
    assert iam.get_role_by_arn(role["Arn"])["TrustPolicy"] == json.loads(TRUST_ACCOUNT)
    iam.DeleteRole(r, {"RoleName": "shop-exec"})
    assert iam.get_role_by_arn(role["Arn"]) is None
    # IAM is global: another region sees the same roles.
    iam.CreateRole(ctx(emu, "iam", region="eu-west-1"),
                   {"RoleName": "g", "AssumeRolePolicyDocument": TRUST_ECS})
    assert iam.GetRole(r, {"RoleName": "g"})["Role"]["RoleName"] == "g"


def test_list_pagination(env):
    _, iam, _, r, _ = env
    iam.CreateRole(r, {"RoleName": "p", "AssumeRolePolicyDocument": TRUST_ECS})
    for i in range(5):
        iam.PutRolePolicy(r, {"RoleName": "p", "PolicyName": f"p{i}", "PolicyDocument": INLINE})
    first = iam.ListRolePolicies(r, {"RoleName": "p", "MaxItems": 3})
    assert first["IsTruncated"] and first["PolicyNames"] == ["p0", "p1", "p2"]
    rest = iam.ListRolePolicies(r, {"RoleName": "p", "MaxItems": 3, "Marker": first["Marker"]})
    assert not rest["IsTruncated"] and rest["PolicyNames"] == ["p3", "p4"]


def test_caller_identity_and_assume_role(env):
    emu, iam, sts, r, sr = env
    me = sts.GetCallerIdentity(sr, {})
    assert me["Account"] == "123456789012" and me["UserId"].startswith("AIDA")
    arn = iam.CreateRole(r, {"RoleName": "deployer", "AssumeRolePolicyDocument": TRUST_ACCOUNT,
                             "MaxSessionDuration": 7200})["Role"]["Arn"]
    out = sts.AssumeRole(sr, {"RoleArn": arn, "RoleSessionName": "aviary", "DurationSeconds": 900})
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert abs(creds["Expiration"].timestamp() - (emu.clock.now() + 900)) < 2
    reg = emu.credentials[creds["AccessKeyId"]]
    assert reg["secret"] == creds["SecretAccessKey"] and reg["token"] == creds["SessionToken"]
    assert out["AssumedRoleUser"]["Arn"] == \
        "arn:aws:sts::123456789012:assumed-role/deployer/aviary"
    who = sts.GetCallerIdentity(ctx(emu, "sts", access_key=creds["AccessKeyId"]), {})
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"] and who["UserId"].endswith(":aviary")
    assert err(sts.AssumeRole, sr, {"RoleArn": arn, "RoleSessionName": "x",
                                    "DurationSeconds": 10000}).code == "ValidationError"
    # Role chaining is limited to one hour.
    chained = ctx(emu, "sts", access_key=creds["AccessKeyId"])
    assert err(sts.AssumeRole, chained, {"RoleArn": arn, "RoleSessionName": "y",
                                         "DurationSeconds": 7200}).code == "ValidationError"
    # A role that only trusts ECS tasks, or that does not exist, is denied.
    ecs_arn = iam.CreateRole(r, {"RoleName": "task", "AssumeRolePolicyDocument": TRUST_ECS})[
        "Role"]["Arn"]
    e = err(sts.AssumeRole, sr, {"RoleArn": ecs_arn, "RoleSessionName": "x"})
    assert e.code == "AccessDenied" and e.status == 403
    assert err(sts.AssumeRole, sr, {"RoleArn": "arn:aws:iam::123456789012:role/missing",
                                    "RoleSessionName": "x"}).code == "AccessDenied"


def test_assume_role_with_web_identity(env):
    emu, iam, sts, r, sr = env
    arn = iam.CreateRole(r, {"RoleName": "ci", "AssumeRolePolicyDocument": TRUST_OIDC})[
        "Role"]["Arn"]
    token = jwt({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref",
                 "aud": "sts.amazonaws.com", "exp": emu.clock.now() + 600})
    out = sts.AssumeRoleWithWebIdentity(sr, {"RoleArn": arn, "RoleSessionName": "ci",
                                             "WebIdentityToken": token})
    assert out["SubjectFromWebIdentityToken"] == "repo:o/r:ref"
    assert out["Audience"] == "sts.amazonaws.com"
    assert out["Credentials"]["AccessKeyId"] in emu.credentials
    assert err(sts.AssumeRoleWithWebIdentity, sr, {"RoleArn": arn, "RoleSessionName": "ci",
                                                   "WebIdentityToken": "not-a-jwt"}).code == \
        "InvalidIdentityToken"
    old = jwt({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref",
               "exp": emu.clock.now() - 1})
    assert err(sts.AssumeRoleWithWebIdentity, sr, {"RoleArn": arn, "RoleSessionName": "ci",
                                                   "WebIdentityToken": old}).code == \
        "ExpiredTokenException"
    other = jwt({"iss": "https://evil.example.com", "sub": "someone"})
    assert err(sts.AssumeRoleWithWebIdentity, sr, {"RoleArn": arn, "RoleSessionName": "ci",
                                                   "WebIdentityToken": other}).code == \
        "AccessDenied"
