"""ECS service module: task definitions, services, deployments and the task
lifecycle against the real EC2 and ELBv2 modules. Time is moved by hand
(clock offset) and every service ticked, so nothing sleeps."""

import pytest

from awsemu import base
from awsemu.base import AwsError
from awsemu.services.ec2 import Ec2Service
from awsemu.services.ecs import Ecs
from awsemu.services.elbv2 import Elbv2Service

REGION = "us-east-1"


def ctx(em, service, op, region=REGION):
    return base.RequestContext(em, service, op, region, "AKIDEXAMPLE")


def call(em, _service, _op, **params):
    return getattr(em.services[_service], _op)(ctx(em, _service, _op), params)


def advance(em, seconds, step=1.0):
    """Move emulated time forward, ticking every service every ``step`` seconds."""
    n = int(seconds / step)
    for _ in range(max(n, 1)):
        em.clock.offset += step
        for s in list(em.services.values()):
            s.tick()


def make_world(extra=()):
    """A VPC with two subnets, a task security group, an active ALB with an
    HTTP:80 listener forwarding to target groups web-a (100) and web-b (0)
    (5 s health checks, 2 to become healthy, 5 s deregistration delay) and
    an ECS cluster "apps"."""
    em = base.Emulator(delay_scale=1.0)
    for cls in (Ec2Service, Ecs, Elbv2Service) + tuple(extra):
        em.register(cls)
    vpc = call(em, "ec2", "CreateVpc", CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    advance(em, 2)
    azs = ["us-east-1a", "us-east-1b"]
    subnets = [call(em, "ec2", "CreateSubnet", VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                    AvailabilityZone=azs[i])["Subnet"]["SubnetId"] for i in range(2)]
    sg = call(em, "ec2", "CreateSecurityGroup", GroupName="tasks", Description="tasks",
              VpcId=vpc)["GroupId"]
    igw = call(em, "ec2", "CreateInternetGateway")["InternetGateway"]["InternetGatewayId"]
    call(em, "ec2", "AttachInternetGateway", InternetGatewayId=igw, VpcId=vpc)
    lb = call(em, "elbv2", "CreateLoadBalancer", Name="web", Subnets=subnets,
              SecurityGroups=[sg])["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = []
    for name in ("web-a", "web-b"):
        tg = call(em, "elbv2", "CreateTargetGroup", Name=name, Protocol="HTTP", Port=8080,
                  VpcId=vpc, TargetType="ip", HealthCheckIntervalSeconds=5,
                  HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                  UnhealthyThresholdCount=2
                  )["TargetGroups"][0]["TargetGroupArn"]
        call(em, "elbv2", "ModifyTargetGroupAttributes", TargetGroupArn=tg, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
        tgs.append(tg)
    listener = call(em, "elbv2", "CreateListener", LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                    DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                        {"TargetGroupArn": tgs[0], "Weight": 100},
                        {"TargetGroupArn": tgs[1], "Weight": 0}]}}])["Listeners"][0]["ListenerArn"]
    call(em, "ecs", "CreateCluster", clusterName="apps")
    advance(em, 61)   # the load balancer becomes active
    return {"em": em, "vpc": vpc, "subnets": subnets, "sg": sg, "lb": lb, "tg_a": tgs[0],
            "tg_b": tgs[1], "listener": listener}


def set_weights(w, a, b):
    call(w["em"], "elbv2", "ModifyListener", ListenerArn=w["listener"], DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": w["tg_a"], "Weight": a},
            {"TargetGroupArn": w["tg_b"], "Weight": b}]}}])


def task_enis(em):
    return [e for e in call(em, "ec2", "DescribeNetworkInterfaces")["NetworkInterfaces"]
            if e["Description"].startswith("arn:aws:ecs:")]


def healthy(w, tg="tg_a"):
    return set(w["em"].services["elbv2"].healthy_targets(w[tg]))


def register_td(em, image="repo/web:1", family="web", cpu="256", memory="512"):
    return call(em, "ecs", "RegisterTaskDefinition", family=family, networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"], cpu=cpu, memory=memory,
                executionRoleArn=f"arn:aws:iam::{base.ACCOUNT_ID}:role/exec",
                containerDefinitions=[{"name": "app", "image": image, "essential": True,
                                       "portMappings": [{"containerPort": 8080}]}]
                )["taskDefinition"]


def create_service(w, td_arn, name="web-a", desired=2, tg=None, **extra):
    return call(w["em"], "ecs", "CreateService", cluster="apps", serviceName=name,
                taskDefinition=td_arn, desiredCount=desired, launchType="FARGATE",
                loadBalancers=[{"targetGroupArn": tg or w["tg_a"], "containerName": "app",
                                "containerPort": 8080}],
                networkConfiguration={"awsvpcConfiguration": {
                    "subnets": w["subnets"], "securityGroups": [w["sg"]],
                    "assignPublicIp": "DISABLED"}}, **extra)["service"]


def describe(em, name):
    return call(em, "ecs", "DescribeServices", cluster="apps", services=[name])["services"][0]


def test_fargate_sizes_and_revisions():
    w = make_world()
    em = w["em"]
    with pytest.raises(AwsError) as e:
        register_td(em, cpu="256", memory="4096")
    assert e.value.code == "ClientException" and "No Fargate configuration" in e.value.message
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "RegisterTaskDefinition", family="x", networkMode="bridge",
             requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
             containerDefinitions=[{"name": "a", "image": "i"}])
    assert e.value.message == "Fargate only supports network mode 'awsvpc'."
    td1 = register_td(em, cpu="1 vCPU", memory="2 GB")
    td2 = register_td(em)
    assert td1["taskDefinitionArn"].endswith(":task-definition/web:1")
    assert (td1["cpu"], td1["memory"]) == ("1024", "2048")
    assert td2["revision"] == 2 and "FARGATE" in td2["compatibilities"]
    call(em, "ecs", "DeregisterTaskDefinition", taskDefinition="web:1")
    assert call(em, "ecs", "DescribeTaskDefinition", taskDefinition="web:1")[
        "taskDefinition"]["status"] == "INACTIVE"
    assert call(em, "ecs", "DescribeTaskDefinition", taskDefinition="web")[
        "taskDefinition"]["revision"] == 2
    arns = call(em, "ecs", "ListTaskDefinitions", familyPrefix="web")["taskDefinitionArns"]
    assert arns == [td2["taskDefinitionArn"]]
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "DeregisterTaskDefinition", taskDefinition="web")
    assert e.value.code == "ClientException"


def test_tasks_start_register_and_scale_down():
    w = make_world()
    em = w["em"]
    em.profiles["repo/web:1"] = {"start_seconds": 10.0}
    td = register_td(em)
    svc = create_service(w, td["taskDefinitionArn"], desired=2)
    assert svc["status"] == "ACTIVE" and svc["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    advance(em, 1)
    s = describe(em, "web-a")
    assert (s["pendingCount"], s["runningCount"]) == (2, 0)
    tasks = call(em, "ecs", "ListTasks", cluster="apps", serviceName="web-a")["taskArns"]
    assert len(tasks) == 2
    desc = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=tasks)["tasks"]
    assert {t["lastStatus"] for t in desc} <= {"PROVISIONING", "PENDING"}
    subnets = {d["value"] for t in desc for d in t["attachments"][0]["details"]
               if d["name"] == "subnetId"}
    assert subnets == set(w["subnets"])   # spread over both subnets
    enis = task_enis(em)
    assert len(enis) == 2
    assert healthy(w) == set()
    advance(em, 10)
    s = describe(em, "web-a")
    assert (s["pendingCount"], s["runningCount"]) == (0, 2)
    assert healthy(w) == set()    # registered, initial health checks in progress
    assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    advance(em, 11)
    s = describe(em, "web-a")
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"
    assert any("steady state" in e["message"] for e in s["events"])
    ips = {e["PrivateIpAddress"] for e in enis}
    assert healthy(w) == ips
    # scale down to 0: deregistered at once, stopped after draining, ENIs gone
    call(em, "ecs", "UpdateService", cluster="apps", service="web-a", desiredCount=0)
    advance(em, 1)
    assert healthy(w) == set()
    states = em.services["elbv2"].target_states(w["tg_a"])
    assert set(states.values()) == {"draining"}
    tasks = call(em, "ecs", "ListTasks", cluster="apps", serviceName="web-a",
                 desiredStatus="STOPPED")["taskArns"]
    desc = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=tasks)["tasks"]
    assert {t["lastStatus"] for t in desc} == {"DEACTIVATING"}
    advance(em, 10)
    s = describe(em, "web-a")
    assert (s["runningCount"], s["pendingCount"]) == (0, 0)
    stopped = call(em, "ecs", "ListTasks", cluster="apps", serviceName="web-a",
                   desiredStatus="STOPPED")["taskArns"]
    desc = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=stopped)["tasks"]
    assert {t["lastStatus"] for t in desc} == {"STOPPED"}
    assert task_enis(em) == []


def test_new_deployment_replaces_tasks():
    w = make_world()
    em = w["em"]
    td1 = register_td(em, image="repo/web:1")
    td2 = register_td(em, image="repo/web:2")
    create_service(w, td1["taskDefinitionArn"], desired=2)
    advance(em, 7)
    s = call(em, "ecs", "UpdateService", cluster="apps", service="web-a",
             taskDefinition=td2["taskDefinitionArn"])["service"]
    deps = s["deployments"]
    assert [d["status"] for d in deps] == ["PRIMARY", "ACTIVE"]
    assert deps[0]["taskDefinition"] == td2["taskDefinitionArn"]
    assert deps[0]["rolloutState"] == "IN_PROGRESS"
    advance(em, 2)
    s = describe(em, "web-a")
    assert s["runningCount"] == 2 and s["pendingCount"] == 2   # old still serving
    advance(em, 8)
    s = describe(em, "web-a")
    # new tasks run but are not healthy in the target group yet: old ones stay
    assert len(s["deployments"]) == 2 and s["runningCount"] == 4
    advance(em, 11)
    s = describe(em, "web-a")
    assert len(s["deployments"]) == 1
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"
    assert s["runningCount"] == 2
    images = em.services["ecs"].target_images_internal()
    now_healthy = healthy(w)
    assert len(now_healthy) == 2 and {images[ip] for ip in now_healthy} == {"repo/web:2"}


def test_unhealthy_tasks_are_replaced():
    w = make_world()
    em = w["em"]
    em.profiles["repo/bad:1"] = {"healthy": False, "start_seconds": 2.0}
    td = register_td(em, image="repo/bad:1")
    create_service(w, td["taskDefinitionArn"], desired=1, healthCheckGracePeriodSeconds=30)
    advance(em, 4)
    first = call(em, "ecs", "ListTasks", cluster="apps", serviceName="web-a")["taskArns"]
    assert len(first) == 1
    assert em.services["elbv2"].target_states(w["tg_a"])   # registered
    advance(em, 11)
    assert set(em.services["elbv2"].target_states(w["tg_a"]).values()) == {"unhealthy"}
    t = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=first)["tasks"][0]
    assert t["desiredStatus"] == "RUNNING"    # still within the grace period
    advance(em, 20)
    t = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=first)["tasks"][0]
    assert t["desiredStatus"] == "STOPPED"
    assert t["stoppedReason"].startswith("Task failed ELB health checks")
    now = call(em, "ecs", "ListTasks", cluster="apps", serviceName="web-a")["taskArns"]
    assert len(now) == 1 and now != first
    s = describe(em, "web-a")
    assert s["deployments"][0]["failedTasks"] >= 1
    assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS"


def test_circuit_breaker_rolls_back():
    w = make_world()
    em = w["em"]
    em.profiles["repo/bad:1"] = {"healthy": False, "start_seconds": 1.0}
    good = register_td(em, image="repo/web:1")
    bad = register_td(em, image="repo/bad:1")
    create_service(w, good["taskDefinitionArn"], desired=1, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    advance(em, 20)
    assert describe(em, "web-a")["deployments"][0]["rolloutState"] == "COMPLETED"
    call(em, "ecs", "UpdateService", cluster="apps", service="web-a",
         taskDefinition=bad["taskDefinitionArn"])
    advance(em, 200)
    s = describe(em, "web-a")
    assert s["taskDefinition"] == good["taskDefinitionArn"]
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"


def test_service_errors_and_deletion():
    w = make_world()
    em = w["em"]
    td = register_td(em)
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "CreateService", cluster="apps", serviceName="x",
             taskDefinition=td["taskDefinitionArn"], desiredCount=1, launchType="FARGATE")
    assert e.value.code == "InvalidParameterException" and "Network Configuration" in \
        e.value.message
    with pytest.raises(AwsError) as e:
        create_service(w, td["taskDefinitionArn"], name="y",
                       tg=w["tg_a"].replace("web-a", "nope"))
    assert e.value.code == "InvalidParameterException"
    lonely = call(em, "elbv2", "CreateTargetGroup", Name="lonely", Protocol="HTTP", Port=80,
                  VpcId=w["vpc"], TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    with pytest.raises(AwsError) as e:
        create_service(w, td["taskDefinitionArn"], name="y", tg=lonely)
    assert "does not have an associated load balancer" in e.value.message
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "CreateService", cluster="nope", serviceName="x",
             taskDefinition=td["taskDefinitionArn"], desiredCount=1)
    assert e.value.code == "ClusterNotFoundException"
    create_service(w, td["taskDefinitionArn"], desired=1, tags=[{"key": "a", "value": "1"}],
                   propagateTags="SERVICE", enableECSManagedTags=True)
    with pytest.raises(AwsError) as e:
        create_service(w, td["taskDefinitionArn"], desired=1)
    assert e.value.message == "Creation of service was not idempotent."
    advance(em, 6)
    task = call(em, "ecs", "ListTasks", cluster="apps")["taskArns"][0]
    tags = call(em, "ecs", "DescribeTasks", cluster="apps", tasks=[task], include=["TAGS"])[
        "tasks"][0]["tags"]
    assert {"key": "a", "value": "1"} in tags and \
        {"key": "aws:ecs:serviceName", "value": "web-a"} in tags
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "DeleteCluster", cluster="apps")
    assert e.value.code == "ClusterContainsServicesException"
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "DeleteService", cluster="apps", service="web-a")
    assert e.value.code == "InvalidParameterException"
    s = call(em, "ecs", "DeleteService", cluster="apps", service="web-a", force=True)["service"]
    assert s["status"] == "DRAINING"
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "UpdateService", cluster="apps", service="web-a", desiredCount=1)
    assert e.value.code == "ServiceNotActiveException"
    advance(em, 14)
    assert describe(em, "web-a")["status"] == "INACTIVE"
    assert call(em, "ecs", "ListServices", cluster="apps")["serviceArns"] == []
    c = call(em, "ecs", "DeleteCluster", cluster="apps")["cluster"]
    assert c["status"] == "INACTIVE"
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "ListServices", cluster="apps")
    assert e.value.code == "ClusterNotFoundException"


def test_tags_and_listing():
    w = make_world()
    em = w["em"]
    td = register_td(em)
    svc = create_service(w, td["taskDefinitionArn"], desired=0)
    call(em, "ecs", "TagResource", resourceArn=svc["serviceArn"],
         tags=[{"key": "aviary.io/app", "value": "web"}])
    assert call(em, "ecs", "ListTagsForResource", resourceArn=svc["serviceArn"])["tags"] == [
        {"key": "aviary.io/app", "value": "web"}]
    call(em, "ecs", "UntagResource", resourceArn=svc["serviceArn"], tagKeys=["aviary.io/app"])
    assert call(em, "ecs", "ListTagsForResource", resourceArn=svc["serviceArn"])["tags"] == []
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "TagResource", resourceArn=svc["serviceArn"] + "x",
             tags=[{"key": "k", "value": "v"}])
    assert e.value.code == "ResourceNotFoundException"
    for i in range(12):
        create_service(w, td["taskDefinitionArn"], name=f"s{i:02d}", desired=0)
    page1 = call(em, "ecs", "ListServices", cluster="apps")
    assert len(page1["serviceArns"]) == 10
    page2 = call(em, "ecs", "ListServices", cluster="apps", nextToken=page1["nextToken"])
    assert len(page2["serviceArns"]) == 3 and "nextToken" not in page2
    out = call(em, "ecs", "DescribeServices", cluster="apps", services=["s00", "missing"])
    assert len(out["services"]) == 1 and out["failures"][0]["reason"] == "MISSING"


def test_update_cluster_settings():
    """UpdateClusterSettings changes containerInsights (enabled, enhanced,
    disabled), DescribeClusters with include SETTINGS reflects it, bad input
    and a missing or deleted cluster are refused."""
    em = base.Emulator(delay_scale=1.0)
    em.register(Ecs)
    call(em, "ecs", "CreateCluster", clusterName="apps",
         settings=[{"name": "containerInsights", "value": "enabled"}])

    def insights():
        c = call(em, "ecs", "DescribeClusters", clusters=["apps"],
                 include=["SETTINGS"])["clusters"][0]
        return [s["value"] for s in c["settings"] if s["name"] == "containerInsights"]

    out = call(em, "ecs", "UpdateClusterSettings", cluster="apps",
               settings=[{"name": "containerInsights", "value": "disabled"}])["cluster"]
    assert out["clusterName"] == "apps"
    assert out["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert insights() == ["disabled"]
    # Without include SETTINGS the settings are not returned.
    c = call(em, "ecs", "DescribeClusters", clusters=["apps"])["clusters"][0]
    assert "settings" not in c
    arn = c["clusterArn"]
    call(em, "ecs", "UpdateClusterSettings", cluster=arn,
         settings=[{"name": "containerInsights", "value": "enhanced"}])
    assert insights() == ["enhanced"]
    for bad in ([], [{"name": "containerInsights", "value": "on"}],
                [{"name": "other", "value": "enabled"}]):
        with pytest.raises(AwsError) as e:
            call(em, "ecs", "UpdateClusterSettings", cluster="apps", settings=bad)
        assert e.value.code == "InvalidParameterException"
    assert insights() == ["enhanced"]
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "UpdateClusterSettings", cluster="nope",
             settings=[{"name": "containerInsights", "value": "enabled"}])
    assert e.value.code == "ClusterNotFoundException"
    call(em, "ecs", "DeleteCluster", cluster="apps")
    with pytest.raises(AwsError) as e:
        call(em, "ecs", "UpdateClusterSettings", cluster="apps",
             settings=[{"name": "containerInsights", "value": "enabled"}])
    assert e.value.code == "ClusterNotFoundException"


def test_cluster_insights_metrics_follow_settings():
    """The emulator publishes Container Insights task counts only while the
    cluster's setting is enabled or enhanced."""
    w = make_world()
    em = w["em"]
    td = register_td(em)
    create_service(w, td["taskDefinitionArn"], desired=1)

    def view():
        return [v for v in em.services["ecs"].metrics_view_internal() if v["service"] == "web-a"][0]

    assert not view()["insights"]
    call(em, "ecs", "UpdateClusterSettings", cluster="apps",
         settings=[{"name": "containerInsights", "value": "enhanced"}])
    assert view()["insights"]
    call(em, "ecs", "UpdateClusterSettings", cluster="apps",
         settings=[{"name": "containerInsights", "value": "disabled"}])
    assert not view()["insights"]


def test_task_needs_its_execution_role_to_read_its_secrets():
    """ECS fetches a container's secrets with the task execution role before
    the container starts: a role without a grant for the secret (or a
    parameter) makes the task fail to start with AccessDenied; the role's
    own inline grant, or a managed policy that reads secrets, lets it start;
    an explicit Deny wins."""
    from awsemu.services.iam import IamService
    w = make_world(extra=(IamService,))
    em = w["em"]
    em.profiles["repo/web:1"] = {"start_seconds": 1.0}
    secret = f"arn:aws:secretsmanager:{REGION}:{base.ACCOUNT_ID}:secret:db-AbCdEf"
    param = f"arn:aws:ssm:{REGION}:{base.ACCOUNT_ID}:parameter/app/key"
    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
             '{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
    for name in ("mine", "other"):
        call(em, "iam", "CreateRole", RoleName=name, AssumeRolePolicyDocument=trust)
    call(em, "iam", "PutRolePolicy", RoleName="mine", PolicyName="secrets", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":['
        '{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":["' + secret +
        '"]},{"Effect":"Allow","Action":["ssm:GetParameters"],"Resource":"' + param + '"}]}'))

    def start(role, name):
        td = call(em, "ecs", "RegisterTaskDefinition", family=name, networkMode="awsvpc",
                  requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                  executionRoleArn=f"arn:aws:iam::{base.ACCOUNT_ID}:role/{role}",
                  containerDefinitions=[{
                      "name": "app", "image": "repo/web:1", "essential": True,
                      "portMappings": [{"containerPort": 8080}],
                      "secrets": [{"name": "DB", "valueFrom": secret},
                                  {"name": "KEY", "valueFrom": param}]}])["taskDefinition"]
        create_service(w, td["taskDefinitionArn"], name=name, desired=1, tg=w["tg_b"])
        advance(em, 5)
        stopped = call(em, "ecs", "ListTasks", cluster="apps", serviceName=name,
                       desiredStatus="STOPPED")["taskArns"]
        if stopped:
            return call(em, "ecs", "DescribeTasks", cluster="apps", tasks=stopped)["tasks"][0]
        return None

    assert start("mine", "own") is None
    assert describe(em, "own")["runningCount"] == 1
    failed = start("other", "borrowed")
    assert failed["stopCode"] == "TaskFailedToStart"
    assert "AccessDeniedException" in failed["stoppedReason"]
    assert "secretsmanager:GetSecretValue" in failed["stoppedReason"] and secret in \
        failed["stoppedReason"]
    # A role that does not exist cannot read anything either.
    assert start("missing", "ghost")["stopCode"] == "TaskFailedToStart"
    # A managed policy that reads every secret and parameter.
    call(em, "iam", "AttachRolePolicy", RoleName="other",
         PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")
    assert start("other", "managed") is None
    # An explicit Deny in an inline policy wins over the managed Allow.
    call(em, "iam", "PutRolePolicy", RoleName="other", PolicyName="deny", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:*",'
        '"Resource":"*"}]}'))
    assert start("other", "denied")["stopCode"] == "TaskFailedToStart"
