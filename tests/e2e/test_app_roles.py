"""End-to-end: each Application's own IAM roles and the Container Insights
setting of its cluster. The real aviary daemon converges two applications,
one with spec.secrets, in the emulator; boto3 then checks the roles, their
policies and the task definitions; drift is reverted; `aviary plan` lists
the roles; deletion removes the application's roles and only them, Retain
keeps them. Waits are bounded polls."""

import json
import os

import pytest

from harness import REGION, wait_for
from test_application import (ACCOUNT, Aws, Daemon, events, minimal_manifest, mutating,
                              tags_dict, write_atomic)

SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-password-AbCdEf"
PARAMETER = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/vault/api-key"
SHARED_ROLE = "aviary-ecs-task-execution"
EXEC_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
TIMEOUT = 90.0

WITH_SECRETS = ("  network: {cidr: 10.81.0.0/16, natGateway: false}\n"
                "  scaling: {min: 1, max: 2}\n"
                f"  secrets: {{DB_PASSWORD: \"{SECRET}\", API_KEY: \"{PARAMETER}\"}}\n")
PLAIN = ("  network: {cidr: 10.82.0.0/16, natGateway: false}\n"
         "  scaling: {min: 1, max: 2}\n"
         "  deletionPolicy: Retain\n")


@pytest.fixture
def aws(emulator):
    return Aws(emulator)


def role_or_none(iam, name):
    try:
        return iam.get_role(RoleName=name)["Role"]
    except iam.exceptions.NoSuchEntityException:
        return None


def inline_policies(iam, role):
    """{policy name: document} of a role's inline policies."""
    out = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        out[name] = doc if isinstance(doc, dict) else json.loads(doc)
    return out


def attached(iam, role):
    return [p["PolicyArn"] for p in
            iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]


def resources_of(doc, action):
    out = set()
    for s in doc["Statement"]:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        if action in actions:
            res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            out.update(res)
    return out


def stable_task_definition(ecs, app):
    svc = ecs.describe_services(cluster=f"aviary-{app}", services=[f"{app}-a"])["services"][0]
    return ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]


def insights(ecs, app):
    c = ecs.describe_clusters(clusters=[f"aviary-{app}"], include=["SETTINGS"])["clusters"][0]
    return {s["name"]: s["value"] for s in c.get("settings", [])}.get("containerInsights")


def probe_secret(ecs, app, role_arn):
    """Starts one task of a probe service in the application's cluster whose
    task definition reads vault's secret with execution role role_arn:
    "started", or "denied" when ECS could not fetch the secret. The probe
    service is deleted again."""
    net = ecs.describe_services(cluster=f"aviary-{app}", services=[f"{app}-a"])[
        "services"][0]["networkConfiguration"]
    name = "probe-" + role_arn.rsplit("/", 1)[-1]
    td = ecs.register_task_definition(
        family=name, executionRoleArn=role_arn, networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "probe", "image": "ghcr.io/example/probe:1",
                               "essential": True,
                               "secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET}]}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=f"aviary-{app}", serviceName=name, taskDefinition=td,
                       desiredCount=1, launchType="FARGATE", networkConfiguration=net)

    def outcome():
        stopped = ecs.list_tasks(cluster=f"aviary-{app}", serviceName=name,
                                 desiredStatus="STOPPED")["taskArns"]
        if stopped:
            t = ecs.describe_tasks(cluster=f"aviary-{app}", tasks=stopped)["tasks"][0]
            assert "AccessDeniedException" in t["stoppedReason"], t["stoppedReason"]
            return "denied"
        running = ecs.describe_services(cluster=f"aviary-{app}", services=[name])[
            "services"][0]["runningCount"]
        return "started" if running else None
    try:
        return wait_for(outcome, timeout=30, interval=0.2, message=f"{name} started or denied")
    finally:
        ecs.delete_service(cluster=f"aviary-{app}", service=name, force=True)


def check_roles(iam, app, secrets):
    """The application's two roles as they must be; returns their ARNs."""
    exec_role = role_or_none(iam, f"aviary-{app}-execution")
    task_role = role_or_none(iam, f"aviary-{app}-task")
    assert exec_role is not None and task_role is not None
    assert len(exec_role["RoleName"]) <= 64
    for role in (exec_role, task_role):
        tags = tags_dict(role.get("Tags"))
        assert tags["aviary.io/managed-by"] == "aviary"
        assert tags["aviary.io/application"] == app
        trust = role["AssumeRolePolicyDocument"]
        trust = trust if isinstance(trust, dict) else json.loads(trust)
        assert [s["Principal"]["Service"] for s in trust["Statement"]] == \
            ["ecs-tasks.amazonaws.com"]
    assert attached(iam, exec_role["RoleName"]) == [EXEC_POLICY]
    exec_inline = inline_policies(iam, exec_role["RoleName"])
    if secrets:
        assert list(exec_inline) == ["aviary-secrets"]
        doc = exec_inline["aviary-secrets"]
        assert resources_of(doc, "secretsmanager:GetSecretValue") == {SECRET}
        assert resources_of(doc, "ssm:GetParameters") == {PARAMETER}
    else:
        assert exec_inline == {}
    # The task role: nothing attached, only PutMetricData in Aviary/Model.
    assert attached(iam, task_role["RoleName"]) == []
    task_inline = inline_policies(iam, task_role["RoleName"])
    assert list(task_inline) == ["aviary-model-metrics"]
    [stmt] = task_inline["aviary-model-metrics"]["Statement"]
    assert stmt["Effect"] == "Allow"
    assert stmt["Action"] in ("cloudwatch:PutMetricData", ["cloudwatch:PutMetricData"])
    assert stmt["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Aviary/Model"}}
    return exec_role["Arn"], task_role["Arn"]


def test_application_roles_isolation_drift_plan_and_deletion(aviary, emulator, aws, tmp_path):
    iam, ecs = aws("iam"), aws("ecs")
    src = tmp_path / "manifests"
    src.mkdir()
    state = str(tmp_path / "state")
    write_atomic(str(src), "vault.yaml", minimal_manifest("vault", extra=WITH_SECRETS))
    write_atomic(str(src), "plain.yaml", minimal_manifest("plain", extra=PLAIN))
    d = Daemon(aviary, str(src), state)
    d.wait_ready("vault", timeout=TIMEOUT)
    d.wait_ready("plain", timeout=TIMEOUT)

    # Each application has its own roles; the secrets grant is only on the
    # execution role of the application that names them.
    vault_exec, vault_task = check_roles(iam, "vault", secrets=True)
    plain_exec, plain_task = check_roles(iam, "plain", secrets=False)
    assert role_or_none(iam, SHARED_ROLE) is None
    for role in ("aviary-plain-execution", "aviary-plain-task", "aviary-vault-task"):
        assert SECRET not in json.dumps(inline_policies(iam, role))

    # The task definitions run with them.
    td = stable_task_definition(ecs, "vault")
    assert td["executionRoleArn"] == vault_exec
    assert td["taskRoleArn"] == vault_task
    assert {s["name"]: s["valueFrom"] for s in td["containerDefinitions"][0]["secrets"]} == \
        {"DB_PASSWORD": SECRET, "API_KEY": PARAMETER}
    td = stable_task_definition(ecs, "plain")
    assert (td["executionRoleArn"], td["taskRoleArn"]) == (plain_exec, plain_task)
    assert "secrets" not in td["containerDefinitions"][0]
    assert insights(ecs, "vault") == "enabled"

    # Isolation, as ECS sees it: a task definition with plain's execution
    # role cannot start with vault's secret (the emulator's ECS fetches
    # secrets with the execution role, as ECS does); with vault's own role
    # it starts.
    assert probe_secret(ecs, "plain", plain_exec) == "denied"
    assert probe_secret(ecs, "plain", vault_exec) == "started"

    # Converged means quiet: no new task definition revision, no write.
    families = {app: ecs.list_task_definitions(familyPrefix=f"aviary-{app}")["taskDefinitionArns"]
                for app in ("vault", "plain")}
    emulator.clear_calls()
    d.wait_reconciles(4)
    assert mutating(emulator) == []
    for app, arns in families.items():
        assert ecs.list_task_definitions(familyPrefix=f"aviary-{app}")["taskDefinitionArns"] == arns

    # Drift: plain's execution role given vault's secret by hand, plain's
    # task role widened, vault's Container Insights switched off.
    iam.put_role_policy(RoleName="aviary-plain-execution", PolicyName="borrowed", PolicyDocument=(
        json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET}]})))
    iam.attach_role_policy(RoleName="aviary-plain-task",
                           PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    ecs.update_cluster_settings(cluster="aviary-vault",
                                settings=[{"name": "containerInsights", "value": "disabled"}])
    wait_for(lambda: inline_policies(iam, "aviary-plain-execution") == {} and
             attached(iam, "aviary-plain-task") == [] and
             insights(ecs, "vault") == "enabled", timeout=30, interval=0.2,
             message="drift reverted")
    assert any("Container Insights" in e["message"] for e in events(d.obj("vault"),
                                                                    "DriftCorrected"))
    assert any("aviary-plain-execution" in e["message"] for e in events(d.obj("plain"),
                                                                       "DriftCorrected"))
    check_roles(iam, "plain", secrets=False)

    # Plan: a new application's roles are listed; nothing is written.
    third = tmp_path / "third.yaml"
    third.write_text(minimal_manifest("third", extra=WITH_SECRETS.replace("10.81", "10.83")))
    emulator.clear_calls()
    out = aviary.run("plan", str(third), check=True).stdout
    assert "iam:role aviary-third-execution" in out, out
    assert "iam:role aviary-third-task" in out, out
    assert mutating(emulator) == []

    # Deletion: vault's roles go (Delete, the default); plain's stay.
    os.unlink(src / "vault.yaml")
    wait_for(lambda: d.obj("vault") is None, timeout=TIMEOUT, interval=0.3,
             message="vault deleted")
    assert role_or_none(iam, "aviary-vault-execution") is None
    assert role_or_none(iam, "aviary-vault-task") is None
    check_roles(iam, "plain", secrets=False)
    # Retain keeps the roles of plain.
    os.unlink(src / "plain.yaml")
    wait_for(lambda: d.obj("plain") is None, timeout=TIMEOUT, interval=0.3,
             message="plain forgotten")
    check_roles(iam, "plain", secrets=False)
    assert d.stop() == 0
