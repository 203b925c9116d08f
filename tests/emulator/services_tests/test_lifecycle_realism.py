"""AWS behaviours a converging controller trips over: tasks that cannot pull
their ECR image or exit at once, recreating a service that is still
draining, target groups that stay in use briefly after their listener goes,
load balancer changes on a running service, and the lookup limits and
filters aviary relies on (DescribeServices, DescribeTargetGroups by name,
DescribeSecurityGroupRules)."""

import pytest

from awsemu import base
from awsemu.base import AwsError
from awsemu.services.ecr import EcrService

from test_ecs import (advance, call, create_service, describe, healthy, make_world,
                      register_td)

ECR_IMAGE = f"{base.ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/web:1.0"


def tasks_of(em, status):
    arns = call(em, "ecs", "ListTasks", cluster="apps", serviceName="web-a",
                desiredStatus=status)["taskArns"]
    return call(em, "ecs", "DescribeTasks", cluster="apps", tasks=arns)["tasks"] if arns else []


def test_task_fails_to_start_until_its_ecr_image_is_pushed():
    w = make_world(extra=(EcrService,))
    em = w["em"]
    call(em, "ecr", "CreateRepository", repositoryName="web")
    td = register_td(em, image=ECR_IMAGE)
    create_service(w, td["taskDefinitionArn"], desired=1)
    advance(em, 6)   # past start_seconds: the pull fails
    stopped = tasks_of(em, "STOPPED")
    assert len(stopped) == 1
    t = stopped[0]
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError:") and ECR_IMAGE in \
        t["stoppedReason"]
    assert t["containers"][0]["reason"] == t["stoppedReason"]
    assert "startedAt" not in t
    assert em.services["elbv2"].target_states(w["tg_a"]) == {}   # never registered
    assert describe(em, "web-a")["deployments"][0]["failedTasks"] == 1
    # the scheduler waits before it tries again
    assert tasks_of(em, "RUNNING") == []
    em.services["ecr"].push_image_internal("web", "1.0")
    advance(em, 30)
    s = describe(em, "web-a")
    assert s["runningCount"] == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
    assert len(healthy(w)) == 1


def test_other_registries_and_regions():
    w = make_world(extra=(EcrService,))
    ecr = w["em"].services["ecr"]
    assert ecr.pull_error_internal("nginx:1.25") is None   # not ECR: not checked
    assert ecr.pull_error_internal(
        "999999999999.dkr.ecr.us-east-1.amazonaws.com/x:1") is None   # another account
    other_region = f"{base.ACCOUNT_ID}.dkr.ecr.eu-west-1.amazonaws.com/web:1.0"
    assert "not found" in ecr.pull_error_internal(other_region)   # one region only
    ecr.create_repository_internal("us-east-1", "web")
    digest = ecr.push_image_internal("web", "1.0")
    assert ecr.pull_error_internal(ECR_IMAGE) is None
    assert ecr.pull_error_internal(ECR_IMAGE.replace(":1.0", "@" + digest)) is None
    assert ecr.pull_error_internal(ECR_IMAGE.replace(":1.0", "")) is not None   # :latest


def test_essential_container_exit_trips_the_circuit_breaker():
    w = make_world()
    em = w["em"]
    em.profiles["repo/crash:1"] = {"start_failure": "exit", "start_seconds": 1.0}
    good = register_td(em, image="repo/web:1")
    crash = register_td(em, image="repo/crash:1")
    create_service(w, good["taskDefinitionArn"], desired=1, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    advance(em, 20)
    assert describe(em, "web-a")["deployments"][0]["rolloutState"] == "COMPLETED"
    call(em, "ecs", "UpdateService", cluster="apps", service="web-a",
         taskDefinition=crash["taskDefinitionArn"])
    advance(em, 3)
    exited = [t for t in tasks_of(em, "STOPPED")
              if t["taskDefinitionArn"] == crash["taskDefinitionArn"]]
    assert exited and exited[0]["stopCode"] == "EssentialContainerExited"
    assert exited[0]["stoppedReason"] == "Essential container in task exited"
    assert exited[0]["containers"][0]["exitCode"] == 1
    advance(em, 60)   # three failures (10 s apart) trip the breaker, which rolls back
    s = describe(em, "web-a")
    assert s["taskDefinition"] == good["taskDefinitionArn"]
    messages = [e["message"] for e in s["events"]]
    assert any("deployment failed: tasks failed to start" in m for m in messages)
    assert any("rolling back to deployment" in m for m in messages)
    assert s["runningCount"] == 1


def test_service_cannot_be_recreated_while_draining():
    w = make_world()
    em = w["em"]
    td = register_td(em)
    create_service(w, td["taskDefinitionArn"], desired=1)
    advance(em, 8)
    call(em, "ecs", "UpdateService", cluster="apps", service="web-a", desiredCount=0)
    call(em, "ecs", "DeleteService", cluster="apps", service="web-a")
    assert describe(em, "web-a")["status"] == "DRAINING"
    with pytest.raises(AwsError) as e:
        create_service(w, td["taskDefinitionArn"], desired=1)
    assert e.value.code == "InvalidParameterException"
    assert e.value.message == "Unable to Start a service that is still Draining."
    advance(em, 15)
    assert describe(em, "web-a")["status"] == "INACTIVE"
    assert create_service(w, td["taskDefinitionArn"], desired=1)["status"] == "ACTIVE"


def test_target_group_in_use_shortly_after_its_listener_is_deleted():
    w = make_world()
    em = w["em"]
    with pytest.raises(AwsError) as e:
        call(em, "elbv2", "DeleteTargetGroup", TargetGroupArn=w["tg_b"])
    assert e.value.code == "ResourceInUse"
    call(em, "elbv2", "DeleteListener", ListenerArn=w["listener"])
    with pytest.raises(AwsError) as e:   # still in use for a few seconds
        call(em, "elbv2", "DeleteTargetGroup", TargetGroupArn=w["tg_b"])
    assert e.value.code == "ResourceInUse"
    tg = call(em, "elbv2", "DescribeTargetGroups", TargetGroupArns=[w["tg_b"]])
    assert tg["TargetGroups"][0]["LoadBalancerArns"] == []
    advance(em, 16)
    call(em, "elbv2", "DeleteTargetGroup", TargetGroupArn=w["tg_b"])
    call(em, "elbv2", "DeleteTargetGroup", TargetGroupArn=w["tg_b"])   # gone: no error


def test_update_service_moves_tasks_to_another_target_group():
    w = make_world()
    em = w["em"]
    td = register_td(em)
    create_service(w, td["taskDefinitionArn"], desired=1)
    advance(em, 20)
    first = describe(em, "web-a")["deployments"][0]["id"]
    assert len(healthy(w, "tg_a")) == 1
    s = call(em, "ecs", "UpdateService", cluster="apps", service="web-a", loadBalancers=[
        {"targetGroupArn": w["tg_b"], "containerName": "app", "containerPort": 8080}])["service"]
    assert s["loadBalancers"][0]["targetGroupArn"] == w["tg_b"]
    assert [d["status"] for d in s["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert s["deployments"][1]["id"] == first
    advance(em, 25)
    assert len(healthy(w, "tg_b")) == 1 and healthy(w, "tg_a") == set()
    assert len(describe(em, "web-a")["deployments"]) == 1
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "UpdateService", cluster="apps", service="web-a", loadBalancers=[
            {"targetGroupArn": w["tg_b"], "containerName": "nope", "containerPort": 8080}])
    assert e.value.code == "InvalidParameterException"


def test_lookup_limits_and_filters():
    w = make_world()
    em = w["em"]
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "DescribeServices", cluster="apps",
             services=[f"s{i}" for i in range(11)])
    assert e.value.code == "InvalidParameterException"
    both = call(em, "elbv2", "DescribeTargetGroups", Names=["web-b", "web-a"])["TargetGroups"]
    assert sorted(t["TargetGroupArn"] for t in both) == sorted([w["tg_a"], w["tg_b"]])
    assert all(t["LoadBalancerArns"] == [w["lb"]] for t in both)
    with pytest.raises(AwsError) as e:
        call(em, "elbv2", "DescribeTargetGroups", Names=["web-a", "web-c"])
    assert e.value.code == "TargetGroupNotFound"
    with pytest.raises(AwsError) as e:
        call(em, "elbv2", "DescribeTargetGroups", Names=["web-a"], LoadBalancerArn=w["lb"])
    assert e.value.code == "ValidationError"
    # security group rules: group-id, security-group-rule-id and tag filters only
    added = call(em, "ec2", "AuthorizeSecurityGroupIngress", GroupId=w["sg"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
         "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}], TagSpecifications=[
        {"ResourceType": "security-group-rule", "Tags": [{"Key": "app", "Value": "web"}]}])
    rid = added["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    rules = call(em, "ec2", "DescribeSecurityGroupRules", Filters=[
        {"Name": "group-id", "Values": [w["sg"]]}])["SecurityGroupRules"]
    assert sorted(r["IsEgress"] for r in rules) == [False, True]   # + default egress
    by_tag = call(em, "ec2", "DescribeSecurityGroupRules", Filters=[
        {"Name": "tag:app", "Values": ["web"]}])["SecurityGroupRules"]
    assert [r["SecurityGroupRuleId"] for r in by_tag] == [rid]
    by_id = call(em, "ec2", "DescribeSecurityGroupRules", Filters=[
        {"Name": "security-group-rule-id", "Values": [rid]}])["SecurityGroupRules"]
    assert by_id[0]["CidrIpv4"] == "10.0.0.0/16" and by_id[0]["FromPort"] == 8080
    with pytest.raises(AwsError) as e:
        call(em, "ec2", "DescribeSecurityGroupRules", Filters=[
            {"Name": "ip-protocol", "Values": ["tcp"]}])
    assert e.value.code == "InvalidParameterValue"


def test_tags_propagate_from_the_task_definition_and_show_on_services():
    w = make_world()
    em = w["em"]
    td = call(em, "ecs", "RegisterTaskDefinition", family="web", networkMode="awsvpc",
              requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
              executionRoleArn=f"arn:aws:iam::{base.ACCOUNT_ID}:role/exec",
              tags=[{"key": "aviary.io/revision", "value": "r1"}],
              containerDefinitions=[{"name": "app", "image": "repo/web:1",
                                     "portMappings": [{"containerPort": 8080}]}]
              )["taskDefinition"]
    create_service(w, td["taskDefinitionArn"], desired=1, propagateTags="TASK_DEFINITION",
                   tags=[{"key": "aviary.io/slot", "value": "a"}])
    advance(em, 3)
    task = tasks_of(em, "RUNNING")[0]
    assert "tags" not in task   # only with include=["TAGS"]
    arn = task["taskArn"]
    tagged = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=[arn],
                  include=["TAGS"])["tasks"][0]["tags"]
    assert tagged == [{"key": "aviary.io/revision", "value": "r1"}]
    s = call(em, "ecs", "DescribeServices", cluster="apps", services=["web-a"],
             include=["TAGS"])["services"][0]
    assert s["tags"] == [{"key": "aviary.io/slot", "value": "a"}]
    assert s["propagateTags"] == "TASK_DEFINITION"
    assert "tags" not in describe(em, "web-a")


def test_awslogs_log_group_must_exist_unless_the_driver_creates_it():
    from awsemu.services.logs import LogsService
    w = make_world(extra=(LogsService,))
    em = w["em"]

    def td_with_logs(**options):
        opts = {"awslogs-group": "/aviary/web", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "web"}
        opts.update(options)
        return call(em, "ecs", "RegisterTaskDefinition", family="web", networkMode="awsvpc",
                    requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                    executionRoleArn=f"arn:aws:iam::{base.ACCOUNT_ID}:role/exec",
                    containerDefinitions=[{
                        "name": "app", "image": "repo/web:1",
                        "portMappings": [{"containerPort": 8080}],
                        "logConfiguration": {"logDriver": "awslogs", "options": opts}}]
                    )["taskDefinition"]["taskDefinitionArn"]

    create_service(w, td_with_logs(), desired=1)
    advance(em, 6)
    t = tasks_of(em, "STOPPED")[0]
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("ResourceInitializationError:") and \
        "The specified log group does not exist" in t["stoppedReason"]
    call(em, "logs", "CreateLogGroup", logGroupName="/aviary/web")
    advance(em, 25)
    assert describe(em, "web-a")["runningCount"] == 1
    # awslogs-create-group: the driver creates the group itself
    call(em, "ecs", "UpdateService", cluster="apps", service="web-a",
         taskDefinition=td_with_logs(**{"awslogs-group": "/aviary/new",
                                        "awslogs-create-group": "true"}))
    advance(em, 25)
    s = describe(em, "web-a")
    assert s["runningCount"] == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
    assert em.services["logs"].get_log_group("/aviary/new") is not None
