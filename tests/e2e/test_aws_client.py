"""End-to-end checks of aviary's AWS client (issue 2) through `aviary doctor`
against the emulator, which verifies every signature with botocore's own
signer: static keys, a wrong secret, role assumption from a profile and from
a web identity token via the emulator's STS, endpoint overrides and their
precedence, and retries of throttled and failing calls."""

import base64
import json
import os
import time

import boto3

from harness import ACCESS_KEY, REGION, SECRET_KEY, free_port

TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                   "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}],
}
TRUST_OIDC = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                   "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/"
                                              "oidc.example.com/id/ABC"}}],
}


def iam(emulator):
    return boto3.client("iam", endpoint_url=emulator.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def sts_calls(emulator, operation):
    return [c for c in emulator.calls(service="sts") if c["operation"] == operation]


def test_doctor_signs_requests_the_emulator_accepts(aviary):
    r = aviary.run("doctor", check=True)
    assert "Credentials: environment (access key AKID" in r.stdout
    assert SECRET_KEY not in r.stdout + r.stderr
    assert "Identity:    account 123456789012" in r.stdout
    assert "elbv2" in r.stdout and "(override)" in r.stdout


def test_wrong_secret_is_rejected_and_not_retried(aviary, emulator):
    aviary.env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    r = aviary.run("doctor")
    assert r.returncode == 1
    assert "SignatureDoesNotMatch" in r.stdout and "HTTP 403" in r.stdout
    assert len(sts_calls(emulator, "GetCallerIdentity")) == 1  # a 4xx is never retried


def test_service_override_wins_over_the_global_one(aviary):
    dead = f"http://127.0.0.1:{free_port()}"
    aviary.env["AWS_ENDPOINT_URL_STS"] = dead
    r = aviary.run("doctor")
    assert r.returncode == 1
    assert f"sts                      {dead}  (override)" in r.stdout
    assert "STS GetCallerIdentity failed" in r.stdout
    aviary.env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    r = aviary.run("doctor")
    assert "https://sts.us-east-1.amazonaws.com" in r.stdout


def test_throttling_and_500s_are_retried(aviary, emulator):
    emulator.faults(fail_once={"service": "sts", "operation": "GetCallerIdentity",
                               "code": "Throttling", "status": 400})
    aviary.run("doctor", check=True)
    calls = sts_calls(emulator, "GetCallerIdentity")
    assert [c["status"] for c in calls] == [400, 200], calls
    emulator.clear_calls()
    emulator.faults(error500={"fraction": 1.0, "service": "sts"})
    r = aviary.run("doctor")
    assert r.returncode == 1 and "HTTP 500" in r.stdout
    assert len(sts_calls(emulator, "GetCallerIdentity")) == 3  # the default max attempts


def test_profile_role_assumed_through_sts(aviary, emulator):
    role = iam(emulator).create_role(RoleName="deployer",
                                     AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]
    aws_dir = os.path.join(aviary.home, ".aws")
    os.makedirs(aws_dir, exist_ok=True)
    with open(os.path.join(aws_dir, "credentials"), "w") as f:
        f.write(f"[base]\naws_access_key_id = {ACCESS_KEY}\n"
                f"aws_secret_access_key = {SECRET_KEY}\n")
    with open(os.path.join(aws_dir, "config"), "w") as f:
        f.write(f"[profile deploy]\nrole_arn = {role['Arn']}\nsource_profile = base\n"
                f"region = {REGION}\n")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION"):
        aviary.env.pop(k, None)
    aviary.env["AWS_PROFILE"] = "deploy"
    r = aviary.run("doctor", check=True)
    assert "temporary" in r.stdout
    assert "assumed-role/deployer/" in r.stdout
    assert len(sts_calls(emulator, "AssumeRole")) == 1


def jwt(claims):
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2lnbmF0dXJl"


def test_web_identity_credentials(aviary, emulator):
    role = iam(emulator).create_role(RoleName="irsa",
                                     AssumeRolePolicyDocument=json.dumps(TRUST_OIDC))["Role"]
    token_file = os.path.join(aviary.workdir, "token")
    with open(token_file, "w") as f:
        f.write(jwt({"iss": "https://oidc.example.com/id/ABC", "sub": "system:serviceaccount:x",
                     "exp": int(time.time()) + 3600}))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        aviary.env.pop(k, None)
    aviary.env.update({"AWS_WEB_IDENTITY_TOKEN_FILE": token_file, "AWS_ROLE_ARN": role["Arn"],
                       "AWS_ROLE_SESSION_NAME": "aviary-test"})
    r = aviary.run("doctor", check=True)
    assert "assumed-role/irsa/aviary-test" in r.stdout
    assert len(sts_calls(emulator, "AssumeRoleWithWebIdentity")) == 1
