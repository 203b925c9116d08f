"""End-to-end scenarios of the Application reconciler (issue 5): the real
aviary binary (`run`, `plan`, `apply`) converges, keeps converged, updates
and deletes the whole stack of an Application in the emulator, and every
resource and setting is checked through the AWS APIs. Waits are bounded
polls; the emulator's delay scale makes NAT gateways, load balancers and
tasks fast, and a short --resync keeps the daemon's passes close together."""

import json
import os
import shutil
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from harness import ACCESS_KEY, REGION, SECRET_KEY, free_port, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCOUNT = "123456789012"
MANAGED_BY = "aviary.io/managed-by"
APPLICATION = "aviary.io/application"
SHARED_EXECUTION_ROLE = "aviary-ecs-task-execution"  # of earlier versions: never created now
CONVERGE_TIMEOUT = 90.0
DELETE_TIMEOUT = 90.0
IMAGE = "ghcr.io/example/model:{tag}"  # another registry: the emulator's ECS does not pull it

FULL = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  image: {image}
  port: 8080
  healthCheck: {{path: {path}, interval: 10s, healthyThreshold: 2}}
  cpu: 512
  memory: 1024
  env: {{MODEL_VERSION: "1"}}
  network: {{cidr: 10.40.0.0/16}}
  scaling: {{min: {min}, max: {max}, cpuPercent: {cpu}{extra_scaling}}}
  notifications:
    email: [{email}]
  dashboard: {dashboard}
  rollout: {{strategy: allAtOnce, scaleDownDelay: 1s}}
"""

MINIMAL = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  image: {image}
  port: 8080
{extra}"""


def full_manifest(name, path="/health", min=2, max=4, cpu=60, extra_scaling=
                  ", memoryPercent: 70, requestsPerTarget: 500", email="ml@example.com",
                  dashboard="true", image=IMAGE.format(tag="1")):
    return FULL.format(name=name, image=image, path=path, min=min, max=max, cpu=cpu,
                       extra_scaling=extra_scaling, email=email, dashboard=dashboard)


def minimal_manifest(name, extra="", image=IMAGE.format(tag="1")):
    return MINIMAL.format(name=name, image=image, extra=extra)


def write_atomic(directory, name, text):
    tmp = os.path.join(directory, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(directory, name))


# ---- AWS, read through boto3 -------------------------------------------------

class Aws:
    """boto3 clients on the emulator (generous retries: some tests inject faults)."""

    def __init__(self, emulator):
        self.emulator = emulator
        self._clients = {}

    def __call__(self, service):
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, endpoint_url=self.emulator.url, region_name=REGION,
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                config=Config(retries={"max_attempts": 10, "mode": "standard"}))
        return self._clients[service]


def tag_filters(app):
    return [{"Name": f"tag:{MANAGED_BY}", "Values": ["aviary"]},
            {"Name": f"tag:{APPLICATION}", "Values": [app]}]


def tags_dict(tags, key="Key", value="Value"):
    return {t[key]: t[value] for t in tags or []}


def owned(tags, app):
    return tags.get(MANAGED_BY) == "aviary" and tags.get(APPLICATION) == app


def tagged_resources(aws, app):
    """Everything in the emulator tagged for ``app``, per kind (lists of ids),
    looked up service by service through the tags, the application's IAM
    roles included)."""
    ec2 = aws("ec2")
    out = {}
    f = tag_filters(app)
    out["vpc"] = [v["VpcId"] for v in ec2.describe_vpcs(Filters=f)["Vpcs"]]
    out["subnet"] = [s["SubnetId"] for s in ec2.describe_subnets(Filters=f)["Subnets"]]
    out["igw"] = [g["InternetGatewayId"]
                  for g in ec2.describe_internet_gateways(Filters=f)["InternetGateways"]]
    out["nat"] = [n["NatGatewayId"] for n in ec2.describe_nat_gateways(Filters=f)["NatGateways"]
                  if n["State"] not in ("deleted", "deleting")]
    out["eip"] = [a["AllocationId"] for a in ec2.describe_addresses(Filters=f)["Addresses"]]
    out["route_table"] = [r["RouteTableId"]
                          for r in ec2.describe_route_tables(Filters=f)["RouteTables"]]
    out["security_group"] = [g["GroupId"]
                             for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]]
    elb = aws("elbv2")
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    tgs = elb.describe_target_groups()["TargetGroups"]
    arns = [x["LoadBalancerArn"] for x in lbs] + [x["TargetGroupArn"] for x in tgs]
    tagged = set()
    for i in range(0, len(arns), 20):
        for d in elb.describe_tags(ResourceArns=arns[i:i + 20])["TagDescriptions"]:
            if owned(tags_dict(d["Tags"]), app):
                tagged.add(d["ResourceArn"])
    out["load_balancer"] = [x["LoadBalancerArn"] for x in lbs if x["LoadBalancerArn"] in tagged]
    out["target_group"] = [x["TargetGroupArn"] for x in tgs if x["TargetGroupArn"] in tagged]
    ecs = aws("ecs")
    clusters = [c for c in ecs.describe_clusters(clusters=[f"aviary-{app}"],
                                                 include=["TAGS"])["clusters"]
                if c["status"] == "ACTIVE" and owned(tags_dict(c.get("tags"), "key", "value"),
                                                     app)]
    out["cluster"] = [c["clusterArn"] for c in clusters]
    out["service"] = []
    for c in clusters:
        arns = ecs.list_services(cluster=c["clusterArn"])["serviceArns"]
        for i in range(0, len(arns), 10):
            for s in ecs.describe_services(cluster=c["clusterArn"], services=arns[i:i + 10],
                                           include=["TAGS"])["services"]:
                if s["status"] != "INACTIVE" and owned(tags_dict(s.get("tags"), "key", "value"),
                                                       app):
                    out["service"].append(s["serviceArn"])
    out["task_definition"] = []
    for arn in ecs.list_task_definitions(familyPrefix=f"aviary-{app}",
                                         status="ACTIVE")["taskDefinitionArns"]:
        td = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
        if owned(tags_dict(td.get("tags"), "key", "value"), app):
            out["task_definition"].append(arn)
    ecr = aws("ecr")
    out["repository"] = [
        r["repositoryName"] for r in ecr.describe_repositories()["repositories"]
        if owned(tags_dict(ecr.list_tags_for_resource(resourceArn=r["repositoryArn"])["tags"]),
                 app)]
    logs = aws("logs")
    out["log_group"] = [
        g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
        if owned(logs.list_tags_log_group(logGroupName=g["logGroupName"])["tags"], app)]
    sns = aws("sns")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:aviary-{app}"
    try:
        sns.get_topic_attributes(TopicArn=topic)
        t = tags_dict(sns.list_tags_for_resource(ResourceArn=topic)["Tags"])
        out["topic"] = [topic] if owned(t, app) else []
    except sns.exceptions.NotFoundException:
        out["topic"] = []
    cw = aws("cloudwatch")
    out["alarm"] = [
        a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]
        if owned(tags_dict(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"]), app)]
    out["dashboard"] = [d["DashboardName"] for d in
                        cw.list_dashboards(DashboardNamePrefix=f"aviary-{app}")["DashboardEntries"]
                        if d["DashboardName"] == f"aviary-{app}"]
    iam = aws("iam")
    out["role"] = []
    for role in (f"aviary-{app}-execution", f"aviary-{app}-task"):
        try:
            r = iam.get_role(RoleName=role)["Role"]
        except iam.exceptions.NoSuchEntityException:
            continue
        if owned(tags_dict(r.get("Tags")), app):
            out["role"].append(role)
    out["scalable_target"] = [
        t["ResourceId"] for t in aws("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs")["ScalableTargets"]
        if t["ResourceId"].startswith(f"service/aviary-{app}/")]
    return out


def leftovers(aws, app):
    return {k: v for k, v in tagged_resources(aws, app).items() if v}


# ---- the daemon ---------------------------------------------------------------

class Daemon:
    """`aviary run` with the default reconcilers on a manifest directory."""

    def __init__(self, aviary, source, state_dir, resync="1s", log_name="aviary.log"):
        self.aviary = aviary
        self.port = free_port()
        self.server = f"127.0.0.1:{self.port}"
        self.proc = aviary.start("run", "--source", source, "--state-dir", state_dir,
                                 "--listen", self.server, "--deletion-grace", "1s",
                                 "--resync", resync, "--workers", "2", log_name=log_name)
        self.log_name = log_name
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout=15, message="/readyz")

    def get(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"aviary exited {self.proc.returncode}:\n"
                                 f"{self.aviary.log(self.log_name)[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://{self.server}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def obj(self, name):
        code, body = self.get(f"/v1/objects/Application/{name}")
        return json.loads(body) if code == 200 else None

    def phase(self, name):
        return (self.obj(name) or {}).get("phase")

    def wait_ready(self, name, timeout=CONVERGE_TIMEOUT, generation=None):
        if generation is not None:
            # The status has no observed generation: once the daemon holds the
            # new spec, two more reconciles finish the one that may have been
            # running with the old spec and one with the new.
            wait_for(lambda: (self.obj(name) or {}).get("generation") == generation,
                     timeout=15, message=f"{name} generation {generation}")
            self.wait_reconciles(2, timeout=timeout)

        def ready():
            o = self.obj(name)
            if o is None:
                return None
            if o.get("phase") == "Failed":
                raise AssertionError(f"{name} failed: {json.dumps(o['conditions'])}")
            synced = condition(o, "Synced")
            return o if o.get("phase") == "Ready" and synced and synced["status"] == "True" \
                else None
        return wait_for(ready, timeout=timeout, interval=0.2, message=f"{name} Ready")

    def reconciles(self):
        """Finished reconciles so far (all outcomes), from /metrics."""
        code, text = self.get("/metrics")
        total = 0
        for line in text.splitlines():
            if line.startswith("aviary_reconciles_total{"):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def wait_reconciles(self, n, timeout=30):
        start = self.reconciles()
        wait_for(lambda: self.reconciles() >= start + n, timeout=timeout, interval=0.1,
                 message=f"{n} more reconciles")

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=30)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


def condition(o, ctype):
    for c in (o or {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def events(o, reason):
    return [e for e in (o or {}).get("events", []) if e["reason"] == reason]


@pytest.fixture
def aws(emulator):
    return Aws(emulator)


@pytest.fixture
def dirs(tmp_path):
    src = tmp_path / "manifests"
    src.mkdir()
    return str(src), str(tmp_path / "state")


def mutating(emulator):
    return [c for c in emulator.calls(mutating=True) if c["status"] != 0]


# ---- checks of a converged application ---------------------------------------

def check_network(aws, app, cidr="10.40.0.0/16", nat=True):
    ec2 = aws("ec2")
    f = tag_filters(app)
    vpcs = ec2.describe_vpcs(Filters=f)["Vpcs"]
    assert len(vpcs) == 1, vpcs
    vpc = vpcs[0]
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == cidr
    assert tags_dict(vpc["Tags"]).get("Name") == f"aviary-{app}"
    for attr, key in (("enableDnsSupport", "EnableDnsSupport"),
                      ("enableDnsHostnames", "EnableDnsHostnames")):
        assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attr)[key]["Value"] is True
    subnets = ec2.describe_subnets(Filters=f)["Subnets"]
    assert len(subnets) == 4, subnets
    public = [s for s in subnets if s["MapPublicIpOnLaunch"]]
    private = [s for s in subnets if not s["MapPublicIpOnLaunch"]]
    assert len(public) == 2 and len(private) == 2
    assert len({s["AvailabilityZone"] for s in public}) == 2
    assert len({s["AvailabilityZone"] for s in private}) == 2
    assert all(s["VpcId"] == vpc_id for s in subnets)
    igws = ec2.describe_internet_gateways(Filters=f)["InternetGateways"]
    assert len(igws) == 1 and igws[0]["Attachments"][0]["VpcId"] == vpc_id
    nats = [n for n in ec2.describe_nat_gateways(Filters=f)["NatGateways"]
            if n["State"] != "deleted"]
    if nat:
        assert len(nats) == 1 and nats[0]["State"] == "available", nats
        assert nats[0]["SubnetId"] in {s["SubnetId"] for s in public}
        eips = ec2.describe_addresses(Filters=f)["Addresses"]
        assert len(eips) == 1
        assert nats[0]["NatGatewayAddresses"][0]["AllocationId"] == eips[0]["AllocationId"]
    else:
        assert nats == []
    tables = ec2.describe_route_tables(Filters=f)["RouteTables"]
    default_targets = {}
    for t in tables:
        for assoc in t.get("Associations", []):
            if assoc.get("SubnetId"):
                route = [r for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
                assert len(route) == 1, t
                default_targets[assoc["SubnetId"]] = route[0].get("GatewayId") or \
                    route[0].get("NatGatewayId")
                assert route[0]["State"] == "active"
    for s in public:
        assert default_targets[s["SubnetId"]] == igws[0]["InternetGatewayId"]
    for s in private:
        if nat:
            assert default_targets[s["SubnetId"]] == nats[0]["NatGatewayId"]
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]}
    lb_sg, tasks_sg = groups[f"aviary-{app}-lb"], groups[f"aviary-{app}-tasks"]
    assert lb_sg["VpcId"] == vpc_id and tasks_sg["VpcId"] == vpc_id
    lb_in = {(p["FromPort"], p["ToPort"], r["CidrIp"]) for p in lb_sg["IpPermissions"]
             for r in p["IpRanges"]}
    assert lb_in == {(80, 80, "0.0.0.0/0"), (443, 443, "0.0.0.0/0")}, lb_sg["IpPermissions"]
    tasks_in = [(p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]],
                 p["IpRanges"]) for p in tasks_sg["IpPermissions"]]
    assert tasks_in == [(8080, 8080, [lb_sg["GroupId"]], [])], tasks_sg["IpPermissions"]
    return {"vpc": vpc_id, "public": sorted(s["SubnetId"] for s in public),
            "private": sorted(s["SubnetId"] for s in private), "lb_sg": lb_sg["GroupId"],
            "tasks_sg": tasks_sg["GroupId"]}


def check_registry(aws, app):
    ecr = aws("ecr")
    repo = ecr.describe_repositories(repositoryNames=[app])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert owned(tags_dict(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]),
                 app)
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName=app)["lifecyclePolicyText"])
    counts = [r["selection"]["countNumber"] for r in policy["rules"]
              if r["selection"].get("countType") == "imageCountMoreThan"]
    assert counts and counts[0] > 0, policy
    return repo["repositoryUri"]


def check_compute(aws, app, net, min_count, health_path="/health"):
    iam, logs, ecs = aws("iam"), aws("logs"), aws("ecs")
    role = iam.get_role(RoleName=f"aviary-{app}-execution")["Role"]
    assert owned(tags_dict(role["Tags"]), app)
    attached = [p["PolicyName"] for p in iam.list_attached_role_policies(
        RoleName=f"aviary-{app}-execution")["AttachedPolicies"]]
    assert attached == ["AmazonECSTaskExecutionRolePolicy"]
    task_role = iam.get_role(RoleName=f"aviary-{app}-task")["Role"]
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aviary/{app}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"/aviary/{app}"]
    assert groups[0].get("retentionInDays", 0) > 0
    cluster = ecs.describe_clusters(clusters=[f"aviary-{app}"], include=["TAGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE"
    assert owned(tags_dict(cluster["tags"], "key", "value"), app)
    services = ecs.describe_services(cluster=f"aviary-{app}", services=[f"{app}-a", f"{app}-b"],
                                     include=["TAGS"])["services"]
    assert [s["serviceName"] for s in services] == [f"{app}-a", f"{app}-b"]
    a, b = services
    assert a["desiredCount"] == min_count and b["desiredCount"] == 0, (a["desiredCount"],
                                                                        b["desiredCount"])
    assert a["runningCount"] == min_count
    for s in services:
        assert s["launchType"] == "FARGATE"
        vpc_conf = s["networkConfiguration"]["awsvpcConfiguration"]
        assert sorted(vpc_conf["subnets"]) == net["private"]
        assert vpc_conf["securityGroups"] == [net["tasks_sg"]]
        assert vpc_conf["assignPublicIp"] == "DISABLED"
        assert len(s["loadBalancers"]) == 1 and s["loadBalancers"][0]["containerPort"] == 8080
        assert s["healthCheckGracePeriodSeconds"] == 30
        assert s["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"] is False
        assert s["propagateTags"] in ("SERVICE", "TASK_DEFINITION")
        t = tags_dict(s["tags"], "key", "value")
        assert owned(t, app) and t.get("aviary.io/slot") in ("a", "b")
    td = ecs.describe_task_definition(taskDefinition=a["taskDefinition"])["taskDefinition"]
    assert td["family"] == f"aviary-{app}"
    assert td["networkMode"] == "awsvpc" and td["requiresCompatibilities"] == ["FARGATE"]
    assert (td["cpu"], td["memory"]) == ("512", "1024")
    assert td["executionRoleArn"] == role["Arn"]
    assert td["taskRoleArn"] == task_role["Arn"]
    c = td["containerDefinitions"][0]
    assert c["image"] == IMAGE.format(tag="1")
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert env["MODEL_VERSION"] == "1" and env.get("AVIARY_SLOT") == "a"
    assert c["portMappings"][0]["containerPort"] == 8080
    assert c["logConfiguration"]["logDriver"] == "awslogs"
    assert c["logConfiguration"]["options"]["awslogs-group"] == f"/aviary/{app}"
    return services


def check_load_balancer(aws, app, net, services, health_path="/health"):
    elb = aws("elbv2")
    lb = elb.describe_load_balancers(Names=[f"{app}-alb"])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing" and lb["Type"] == "application"
    assert lb["State"]["Code"] == "active"
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == net["public"]
    assert lb["SecurityGroups"] == [net["lb_sg"]]
    tgs = elb.describe_target_groups(Names=[f"{app}-tga", f"{app}-tgb"])["TargetGroups"]
    assert len(tgs) == 2
    by_name = {t["TargetGroupName"]: t for t in tgs}
    for t in tgs:
        assert t["TargetType"] == "ip" and t["Protocol"] == "HTTP" and t["Port"] == 8080
        assert t["VpcId"] == net["vpc"]
        assert t["HealthCheckPath"] == health_path
        assert t["HealthCheckIntervalSeconds"] == 10 and t["HealthyThresholdCount"] == 2
    tags = {d["ResourceArn"]: tags_dict(d["Tags"]) for d in
            elb.describe_tags(ResourceArns=[lb["LoadBalancerArn"]] +
                              [t["TargetGroupArn"] for t in tgs])["TagDescriptions"]}
    assert all(owned(t, app) for t in tags.values())
    assert tags[by_name[f"{app}-tga"]["TargetGroupArn"]].get("aviary.io/slot") == "a"
    assert tags[by_name[f"{app}-tgb"]["TargetGroupArn"]].get("aviary.io/slot") == "b"
    svc_tg = {s["serviceName"]: s["loadBalancers"][0]["targetGroupArn"] for s in services}
    assert svc_tg[f"{app}-a"] == by_name[f"{app}-tga"]["TargetGroupArn"]
    assert svc_tg[f"{app}-b"] == by_name[f"{app}-tgb"]["TargetGroupArn"]
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [(x["Port"], x["Protocol"]) for x in listeners] == [(80, "HTTP")]
    assert listener_weights(elb, listeners[0]["ListenerArn"], by_name, app) == (100, 0)
    health = elb.describe_target_health(
        TargetGroupArn=by_name[f"{app}-tga"]["TargetGroupArn"])["TargetHealthDescriptions"]
    assert [h["TargetHealth"]["State"] for h in health].count("healthy") >= 1
    return lb, by_name, listeners[0]["ListenerArn"]


def listener_weights(elb, listener_arn, by_name, app):
    listener = elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    action = listener["DefaultActions"][0]
    assert action["Type"] == "forward"
    w = {t["TargetGroupArn"]: t["Weight"] for t in action["ForwardConfig"]["TargetGroups"]}
    return (w[by_name[f"{app}-tga"]["TargetGroupArn"]], w[by_name[f"{app}-tgb"]["TargetGroupArn"]])


def scaling_state(aws, app, slot="a"):
    aas = aws("application-autoscaling")
    rid = f"service/aviary-{app}/{app}-{slot}"
    targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    targets = [t for t in targets if t["ResourceId"].startswith(f"service/aviary-{app}/")]
    assert [t["ResourceId"] for t in targets] in ([], [rid]), (rid, targets)
    policies = aas.describe_scaling_policies(ServiceNamespace="ecs",
                                             ResourceId=rid)["ScalingPolicies"]
    tracked = {}
    for p in policies:
        assert p["PolicyType"] == "TargetTrackingScaling"
        conf = p["TargetTrackingScalingPolicyConfiguration"]
        tracked[conf["PredefinedMetricSpecification"]["PredefinedMetricType"]] = \
            conf["TargetValue"]
    return [(t["MinCapacity"], t["MaxCapacity"]) for t in targets], tracked


def check_notifications(aws, app, emails):
    sns, cw = aws("sns"), aws("cloudwatch")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:aviary-{app}"
    assert owned(tags_dict(sns.list_tags_for_resource(ResourceArn=topic)["Tags"]), app)
    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Endpoint"] for s in subs if s["Protocol"] == "email") == sorted(emails)
    alarms = [a for a in cw.describe_alarms(AlarmNamePrefix=f"aviary-{app}")["MetricAlarms"]]
    assert alarms, "no alarms"
    names = [a["AlarmName"] for a in alarms]
    assert any("out" in n for n in names) and any("in" in n for n in names), names
    for a in alarms:
        assert topic in a["AlarmActions"], a
    return topic


def dashboard_body(aws, app):
    return aws("cloudwatch").get_dashboard(DashboardName=f"aviary-{app}")["DashboardBody"]


# ---- scenarios ------------------------------------------------------------------

def test_converge_check_everything_quiet_drift_update_plan_delete(aviary, emulator, aws, dirs):
    src, state = dirs
    app = "fraud"
    write_atomic(src, f"{app}.yaml", full_manifest(app))
    d = Daemon(aviary, src, state)
    t0 = time.monotonic()
    o = d.wait_ready(app)
    converge_seconds = time.monotonic() - t0

    net = check_network(aws, app)
    registry_uri = check_registry(aws, app)
    services = check_compute(aws, app, net, min_count=2)
    lb, tgs, listener = check_load_balancer(aws, app, net, services)
    assert scaling_state(aws, app) == ([(2, 4)], {"ECSServiceAverageCPUUtilization": 60.0,
                                                  "ECSServiceAverageMemoryUtilization": 70.0,
                                                  "ALBRequestCountPerTarget": 500.0})
    check_notifications(aws, app, ["ml@example.com"])
    body = json.loads(dashboard_body(aws, app))
    assert body["widgets"] and lb["LoadBalancerArn"].split("loadbalancer/")[1] in json.dumps(body)
    o = d.obj(app)
    assert o["phase"] == "Ready"
    assert o["endpoint"] == f"http://{lb['DNSName']}"
    assert f"aviary-{app}" in o["dashboardUrl"]
    assert condition(o, "Available")["status"] == "True"
    assert o.get("registryUri", registry_uri) == registry_uri
    assert o["rollout"]["stableSlot"] == "a"

    # Converged means quiet: resyncs make read calls only.
    emulator.clear_calls()
    d.wait_reconciles(3)
    assert mutating(emulator) == []
    assert len(emulator.calls()) > 0

    drift_before = {(e["message"], e["count"]) for e in events(d.obj(app), "DriftCorrected")}

    # `aviary plan` on the converged application: no changes, reads only.
    path = os.path.join(src, f"{app}.yaml")
    assert d.stop() == 0
    emulator.clear_calls()
    r = aviary.run("plan", path, check=True)
    assert "no changes" in r.stdout and "Plan: 0 to create, 0 to change, 0 to delete." in r.stdout

    # Drift of each kind while the daemon is down; plan shows it, field by field.
    elb, ec2, aas, cw = aws("elbv2"), aws("ec2"), aws("application-autoscaling"), aws("cloudwatch")
    elb.modify_listener(ListenerArn=listener, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tgs[f"{app}-tga"]["TargetGroupArn"], "Weight": 50},
            {"TargetGroupArn": tgs[f"{app}-tgb"]["TargetGroupArn"], "Weight": 50}]}}])
    elb.modify_target_group(TargetGroupArn=tgs[f"{app}-tga"]["TargetGroupArn"],
                            HealthCheckPath="/hacked", HealthyThresholdCount=5)
    ec2.authorize_security_group_ingress(GroupId=net["tasks_sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.revoke_security_group_ingress(GroupId=net["lb_sg"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    aas.register_scalable_target(ServiceNamespace="ecs",
                                 ResourceId=f"service/aviary-{app}/{app}-a",
                                 ScalableDimension="ecs:service:DesiredCount",
                                 MinCapacity=1, MaxCapacity=9)
    widgets = len(body["widgets"])
    body["widgets"] = body["widgets"][:1]  # keeps the header with aviary's ownership marker
    cw.put_dashboard(DashboardName=f"aviary-{app}", DashboardBody=json.dumps(body))
    emulator.clear_calls()
    r = aviary.run("plan", path, check=True)
    assert mutating(emulator) == [], "plan made a mutating call"
    plan = r.stdout
    assert "Plan: 0 to create," in plan and "to change" in plan
    changes = int(plan.split("Plan: 0 to create, ")[1].split(" to change")[0])
    assert "Plan: 0 to create, 6 to change, 0 to delete." in plan, plan
    for line in (f"~ target group {app}-tga  (elbv2.ModifyTargetGroup)",
                 'HealthCheckPath: "/hacked" -> "/health"',
                 f"~ listener HTTP listener :80 of {app}-alb  (elbv2.ModifyListener)",
                 "DefaultActions: forward a=50 b=50 -> forward a=100 b=0",
                 f"~ scalable target service/aviary-{app}/{app}-a",
                 "MinCapacity: 1 -> 2", "MaxCapacity: 9 -> 4",
                 f"~ CloudWatch dashboard aviary-{app}  (cloudwatch.PutDashboard)",
                 f"~ ec2:security-group {net['tasks_sg']}  (ec2.RevokeSecurityGroupIngress)",
                 "ingress tcp 22 0.0.0.0/0: remove",
                 f"~ ec2:security-group {net['lb_sg']}  (ec2.AuthorizeSecurityGroupIngress)",
                 "ingress tcp 443 0.0.0.0/0: add"):
        assert line in plan, (line, plan)
    assert "/hacked" in plan and "/health" in plan, plan
    as_json = json.loads(aviary.run("plan", "-o", "json", path, check=True).stdout)
    assert as_json["change"] == changes and as_json["create"] == 0
    assert mutating(emulator) == []

    # The daemon reverts every drift on its next pass and says so.
    d = Daemon(aviary, src, state, log_name="aviary2.log")
    wait_for(lambda: listener_weights(elb, listener, tgs, app) == (100, 0), timeout=30,
             message="listener weights restored")
    wait_for(lambda: elb.describe_target_groups(TargetGroupArns=[
        tgs[f"{app}-tga"]["TargetGroupArn"]])["TargetGroups"][0]["HealthCheckPath"] == "/health",
        timeout=30, message="health check restored")
    wait_for(lambda: scaling_state(aws, app)[0] == [(2, 4)], timeout=30,
             message="scaling limits restored")
    wait_for(lambda: len(json.loads(dashboard_body(aws, app))["widgets"]) == widgets, timeout=30,
             message="dashboard restored")
    d.wait_ready(app)
    d.wait_reconciles(1)
    net2 = check_network(aws, app)  # both security group rules back to exactly the desired
    assert net2 == net
    assert elb.describe_target_groups(TargetGroupArns=[tgs[f"{app}-tga"]["TargetGroupArn"]])[
        "TargetGroups"][0]["HealthyThresholdCount"] == 2
    drift = [e["message"] for e in events(d.obj(app), "DriftCorrected")
             if (e["message"], e["count"]) not in drift_before]
    for what in (f"{net['lb_sg']} changed outside aviary (missing ingress tcp 443",
                 f"{net['tasks_sg']} changed outside aviary (extra ingress tcp 22",
                 f"target group {app}-tga changed outside aviary (HealthCheckPath",
                 f"HTTP listener :80 of {app}-alb changed outside aviary (DefaultActions",
                 f"scalable target service/aviary-{app}/{app}-a changed outside aviary",
                 "CloudWatch dashboard changed outside aviary"):
        assert any(m.startswith(what) for m in drift), (what, drift)
    emulator.clear_calls()
    d.wait_reconciles(2)
    assert mutating(emulator) == []

    # Updates: scaling, notifications and dashboard in place; a health check
    # is part of the revision, so it goes out as a rollout (allAtOnce here).
    write_atomic(src, f"{app}.yaml", full_manifest(app, path="/ready", min=1, max=6, cpu=50,
                                                   extra_scaling="", email="ops@example.com",
                                                   dashboard="false"))
    o = d.wait_ready(app, generation=2)
    slot = o["rollout"]["stableSlot"]
    wait_for(lambda: scaling_state(aws, app, slot) == (
        [(1, 6)], {"ECSServiceAverageCPUUtilization": 50.0}), timeout=30,
        message="scaling updated")
    assert elb.describe_target_groups(TargetGroupArns=[tgs[f"{app}-tg{slot}"]["TargetGroupArn"]])[
        "TargetGroups"][0]["HealthCheckPath"] == "/ready"
    assert listener_weights(elb, listener, tgs, app) == ((100, 0) if slot == "a" else (0, 100))
    check_notifications(aws, app, ["ops@example.com"])
    assert cw.list_dashboards(DashboardNamePrefix=f"aviary-{app}")["DashboardEntries"] == []
    assert "dashboardUrl" not in d.obj(app)
    # same load balancer and target groups: updated, not replaced
    assert [x["LoadBalancerArn"] for x in elb.describe_load_balancers()["LoadBalancers"]] == \
        [lb["LoadBalancerArn"]]
    assert tagged_resources(aws, app)["target_group"] == \
        [tgs[f"{app}-tga"]["TargetGroupArn"], tgs[f"{app}-tgb"]["TargetGroupArn"]]

    # Deletion: the manifest goes, so does everything tagged for the application.
    os.unlink(path)
    wait_for(lambda: d.obj(app) is None, timeout=DELETE_TIMEOUT, interval=0.3,
             message="object deleted")
    assert leftovers(aws, app) == {}
    iam = aws("iam")
    for role in (f"aviary-{app}-execution", f"aviary-{app}-task"):
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_role(RoleName=role)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=SHARED_EXECUTION_ROLE)
    assert d.stop() == 0
    print(f"converged from nothing in {converge_seconds:.1f}s")


def subnet_settings(ec2, subnets):
    """The subnets as described, less the free address count (tasks and load
    balancers use addresses)."""
    out = ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
    for s in out:
        s.pop("AvailableIpAddressCount")
    return out


def test_existing_vpc_is_used_never_changed(aviary, emulator, aws, dirs):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    wait_for(lambda: ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["State"] == "available",
             timeout=10, message="VPC available")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.60.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{'ab'[i % 2]}")["Subnet"]["SubnetId"]
               for i in range(4)]
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for s in subnets:
        ec2.associate_route_table(RouteTableId=rt, SubnetId=s)
    before_vpc = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]
    before_subnets = subnet_settings(ec2, subnets)
    before_tables = ec2.describe_route_tables(RouteTableIds=[rt])["RouteTables"]
    emulator.clear_calls()

    src, state = dirs
    app = "shared"
    write_atomic(src, f"{app}.yaml", minimal_manifest(app, extra=(
        f"  network: {{vpcId: {vpc}, publicSubnets: [{subnets[0]}, {subnets[1]}],\n"
        f"            privateSubnets: [{subnets[2]}, {subnets[3]}]}}\n")))
    d = Daemon(aviary, src, state)
    d.wait_ready(app)
    mine = tagged_resources(aws, app)
    assert mine["vpc"] == [] and mine["subnet"] == [] and mine["igw"] == [] and \
        mine["nat"] == [] and mine["route_table"] == []
    assert len(mine["security_group"]) == 2
    assert all(g["VpcId"] == vpc for g in ec2.describe_security_groups(
        GroupIds=mine["security_group"])["SecurityGroups"])
    lb = aws("elbv2").describe_load_balancers(Names=[f"{app}-alb"])["LoadBalancers"][0]
    assert lb["VpcId"] == vpc
    assert sorted(z["SubnetId"] for z in lb["AvailabilityZones"]) == sorted(subnets[:2])
    svc = aws("ecs").describe_services(cluster=f"aviary-{app}",
                                       services=[f"{app}-a"])["services"][0]
    assert sorted(svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == \
        sorted(subnets[2:])
    # The named VPC, its subnets and routes are untouched (no tags added either).
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0] == before_vpc
    assert subnet_settings(ec2, subnets) == before_subnets
    assert ec2.describe_route_tables(RouteTableIds=[rt])["RouteTables"] == before_tables
    ops = {c["operation"] for c in mutating(emulator) if c["service"] == "ec2"}
    assert ops <= {"CreateSecurityGroup", "AuthorizeSecurityGroupIngress",
                   "RevokeSecurityGroupEgress", "AuthorizeSecurityGroupEgress", "CreateTags"}, ops

    os.unlink(os.path.join(src, f"{app}.yaml"))
    wait_for(lambda: d.obj(app) is None, timeout=DELETE_TIMEOUT, interval=0.3,
             message="object deleted")
    assert leftovers(aws, app) == {}
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["State"] == "available"
    assert len(ec2.describe_subnets(SubnetIds=subnets)["Subnets"]) == 4
    assert d.stop() == 0


def expected_counts(app):
    return {"vpc": 1, "subnet": 4, "igw": 1, "nat": 1, "eip": 1, "route_table": 2,
            "security_group": 2, "load_balancer": 1, "target_group": 2, "cluster": 1,
            "service": 2, "repository": 1, "log_group": 1, "topic": 1, "scalable_target": 1,
            "dashboard": 1}


def test_crash_between_creates_never_duplicates(aviary, emulator, aws, tmp_path):
    """kill -9 the daemon after N mutating calls, restart it on the same state:
    every resource exists exactly once."""
    for i, n in enumerate((3, 14, 30)):
        app = f"crash{n}"
        src = tmp_path / f"src{n}"
        src.mkdir()
        state = str(tmp_path / f"state{n}")
        write_atomic(str(src), f"{app}.yaml", minimal_manifest(app, extra=(
            "  scaling: {min: 1, max: 2}\n  notifications: {email: [x@example.com]}\n")))
        emulator.clear_calls()
        d = Daemon(aviary, str(src), state, log_name=f"crash{n}.log")
        wait_for(lambda: len(emulator.calls(mutating=True)) >= n, timeout=60, interval=0.01,
                 message=f"{n} mutating calls")
        d.kill()
        made = len(emulator.calls(mutating=True))
        d = Daemon(aviary, str(src), state, log_name=f"crash{n}-restart.log")
        d.wait_ready(app)
        counts = {k: len(v) for k, v in tagged_resources(aws, app).items()}
        want = expected_counts(app)
        assert {k: counts[k] for k in want} == want, (n, made, counts)
        assert counts["alarm"] >= 2 and counts["task_definition"] >= 1
        assert d.stop() == 0


def test_deletion_finishes_after_a_restart_in_the_middle(aviary, emulator, aws, dirs):
    src, state = dirs
    app = "hello"  # examples/minimal.yaml: image and port only
    shutil.copy(os.path.join(REPO, "examples", "minimal.yaml"), os.path.join(src, f"{app}.yaml"))
    d = Daemon(aviary, src, state)
    d.wait_ready(app)
    emulator.clear_calls()
    os.unlink(os.path.join(src, f"{app}.yaml"))
    wait_for(lambda: d.phase(app) == "Deleting", timeout=15, message="Deleting")
    # Kill it once some of the teardown has happened (services, load balancer...).
    wait_for(lambda: len([c for c in emulator.calls(mutating=True)
                          if c["operation"].startswith("Delete")]) >= 3,
             timeout=DELETE_TIMEOUT, interval=0.01, message="teardown under way")
    d.kill()
    assert leftovers(aws, app) != {}, "the teardown was already complete: kill earlier"
    d = Daemon(aviary, src, state, log_name="aviary2.log")
    wait_for(lambda: d.obj(app) is None, timeout=DELETE_TIMEOUT, interval=0.3,
             message="deletion finished after the restart")
    assert leftovers(aws, app) == {}
    assert d.stop() == 0


def test_throttling_and_server_errors_still_converge(aviary, emulator, aws, dirs):
    src, state = dirs
    app = "flaky"
    emulator.faults(throttle={"fraction": 0.1}, error500={"fraction": 0.1}, seed=7)
    write_atomic(src, f"{app}.yaml", minimal_manifest(app, extra="  scaling: {min: 2, max: 3}\n"))
    d = Daemon(aviary, src, state)
    d.wait_ready(app, timeout=120)
    faulted = [c for c in emulator.calls() if c["status"] >= 500 or
               c.get("code") in ("Throttling", "ThrottlingException", "RequestLimitExceeded")]
    assert faulted, "no fault was injected"
    emulator.clear_faults()
    counts = {k: len(v) for k, v in tagged_resources(aws, app).items()}
    want = expected_counts(app)
    want.pop("topic")  # no notifications in this manifest
    assert {k: counts[k] for k in want} == want, counts
    assert d.stop() == 0


def test_plan_from_nothing_makes_no_write(aviary, emulator, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(full_manifest("planned"))
    r = aviary.run("plan", str(path), check=True)
    out = r.stdout
    assert "Application planned" in out
    for resource in ("ec2:vpc aviary-planned", "ec2:subnet aviary-planned-public-a",
                     "ec2:nat-gateway", "ec2:security-group aviary-planned-lb",
                     "planned-alb", "planned-tga", "planned-tgb", "ecs:service planned-a",
                     "ecs:service planned-b", "aviary-planned-cpu", "aviary-planned",
                     "ml@example.com"):
        assert resource in out, (resource, out)
    assert "cidr: 10.40.0.0/16" in out
    assert "to change, 0 to delete." in out
    create = int(out.split("Plan: ")[1].split(" to create")[0])
    assert create >= 28, out
    assert mutating(emulator) == []
    assert len(emulator.calls()) > 0
    doc = json.loads(aviary.run("plan", "-o", "json", str(path), check=True).stdout)
    assert doc["create"] == create and doc["applications"][0]["name"] == "planned"
    assert mutating(emulator) == []

    bad = tmp_path / "bad.yaml"
    bad.write_text(full_manifest("planned").replace("cpu: 512", "cpu: 512\n  cpux: 1"))
    r = aviary.run("plan", str(bad))
    assert r.returncode == 1
    assert f"{bad}:10:3: spec.cpux" in r.stderr, r.stderr
    assert aviary.run("plan").returncode == 2
    assert mutating(emulator) == []


def test_apply_wait_converges_the_example_and_run_continues(aviary, emulator, aws, tmp_path):
    example = os.path.join(REPO, "examples", "fraud-model.yaml")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud:1.4.2"
    assert image in open(example).read()
    emulator.push_image(image, create_repository=True)
    state = str(tmp_path / "state")
    r = aviary.run("apply", example, "--wait", "--timeout", "2m", "--state-dir", state,
                   timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fraud-model: pass 1: Provisioning" in r.stdout
    assert "Created: create ec2:vpc aviary-fraud-model" in r.stdout
    assert "fraud-model: Ready: http://fraud-model-alb-" in r.stdout
    net = check_network(aws, "fraud-model")
    assert net["vpc"]
    assert scaling_state(aws, "fraud-model")[0] == [(2, 10)]

    # The daemon continues from apply's status: nothing to create or change.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(example, src / "fraud-model.yaml")
    emulator.clear_calls()
    d = Daemon(aviary, str(src), state)
    o = d.wait_ready("fraud-model")
    d.wait_reconciles(2)
    assert mutating(emulator) == []
    assert o["endpoint"].startswith("http://fraud-model-alb-")
    assert d.stop() == 0

    # One pass without --wait on a converged application: Ready at once.
    r = aviary.run("apply", example, check=True)
    assert "fraud-model: pass 1: Ready" in r.stdout
    assert mutating(emulator) == []

    # A new image whose canary pauses for `aviary promote` (which needs the
    # daemon): apply --wait stops there with exit 1 and says why.
    emulator.push_image(image.replace("1.4.2", "1.4.3"))
    text = open(example).read().replace("fraud:1.4.2", "fraud:1.4.3")
    steps = text[text.index("      steps:"):text.index("    analysis:")]
    text = text.replace(steps, "      steps:\n        - setWeight: 10\n        - pause: {}\n")
    paused = tmp_path / "paused.yaml"
    paused.write_text(text)
    r = aviary.run("apply", str(paused), "--wait", "--timeout", "90s", "--state-dir", state,
                   timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fraud-model: not Ready: phase Paused" in r.stderr, r.stdout + r.stderr


def test_apply_wait_fails_with_the_reason_for_an_invalid_certificate(aviary, emulator, tmp_path):
    path = tmp_path / "tls.yaml"
    cert = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/not-a-real-certificate"
    path.write_text(minimal_manifest("tls", extra=(
        "  network: {cidr: 10.70.0.0/16, natGateway: false}\n"
        f"  tls: {{certificateArn: \"{cert}\"}}\n")))
    r = aviary.run("apply", str(path), "--wait", "--timeout", "90s", timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "CertificateNotFound" in r.stderr, r.stderr
    assert "CreateListener" in r.stderr, r.stderr
    assert "Ready" not in r.stdout.splitlines()[-1]
    # An invalid manifest never reaches AWS.
    emulator.clear_calls()
    bad = tmp_path / "bad.yaml"
    bad.write_text(minimal_manifest("tls", extra="  port: 80\n"))
    r = aviary.run("apply", str(bad), "--wait")
    assert r.returncode == 1 and "bad.yaml" in r.stderr
    assert emulator.calls() == []
