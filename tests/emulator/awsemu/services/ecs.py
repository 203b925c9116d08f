"""ECS on Fargate: clusters, task definitions, services with deployments and
tasks that start, register in their target groups, fail ELB health checks
and get replaced, drain and stop. JSON protocol.

Task lifecycle (per the image profile, emulator.profile(image)):
PROVISIONING (ENI created in one of the service's subnets) -> PENDING ->
RUNNING after start_seconds (then registered in each target group with the
profile's health) -> [once the health check grace period is over, a task the
load balancer reports unhealthy is stopped and replaced] ... on stop:
deregistered, DEACTIVATING for the deregistration delay,
STOPPING -> DEPROVISIONING -> STOPPED (ENI deleted). A deployment
completes, and the previous one's tasks are stopped, as the new tasks become
healthy in the load balancer. A task whose image is missing from this
account's ECR, whose awslogs log group does not exist, or whose profile says
start_failure, stops with
TaskFailedToStart / EssentialContainerExited and counts as a failed task.
Every delay goes through clock.delay.
"""

import base64
import fnmatch
import json
import math
import random
import re
import uuid

from .. import base
from ..base import AwsError

# Fargate (Linux) task sizes: cpu units -> allowed memory MiB.
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4096 + 1, 1024)),
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
STOPPED_TASK_RETENTION = 3600.0   # AWS shows stopped tasks for about an hour
MAX_STOPPED_TASKS = 2000
MAX_EVENTS = 100
STOP_PHASE_SECONDS = (1.0, 2.0, 3.0)  # DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED
RESTART_DELAY = 10.0   # after a task fails to start, before the service launches another
# AWS managed policies that let a task execution role read any secret or
# parameter (by the action ECS calls for it).
SECRETS_READING_MANAGED = {
    "secretsmanager:GetSecretValue": ("AdministratorAccess", "PowerUserAccess",
                                      "SecretsManagerReadWrite"),
    "ssm:GetParameters": ("AdministratorAccess", "PowerUserAccess", "AmazonSSMReadOnlyAccess"),
}


def _as_list(v):
    return v if isinstance(v, list) else [v] if v is not None else []


def _policy_decision(doc, action, resource):
    """"Deny", "Allow" or None: what the statements of one identity policy
    say about ``action`` on ``resource`` (wildcards as IAM matches them;
    conditions are not evaluated)."""
    decision = None
    for st in _as_list(doc.get("Statement")):
        if not isinstance(st, dict):
            continue
        actions = [a.lower() for a in _as_list(st.get("Action"))]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _as_list(st.get("Resource"))):
            continue
        if st.get("Effect") == "Deny":
            return "Deny"
        if st.get("Effect") == "Allow":
            decision = "Allow"
    return decision


def _client(msg):
    return AwsError("ClientException", msg)


def _invalid(msg):
    return AwsError("InvalidParameterException", msg)


def _parse_cpu(v):
    s = str(v).strip().lower().replace(" ", "")
    try:
        if s.endswith("vcpu"):
            return int(round(float(s[:-4]) * 1024))
        return int(s)
    except ValueError:
        return None


def _parse_memory(v):
    s = str(v).strip().lower().replace(" ", "")
    try:
        if s.endswith("gb"):
            return int(round(float(s[:-2]) * 1024))
        if s.endswith("mb"):
            return int(s[:-2])
        return int(s)
    except ValueError:
        return None


def _tags_out(d):
    return [{"key": k, "value": v} for k, v in d.items()]


def _token(n):
    return base64.b64encode(json.dumps({"o": n}).encode()).decode()


def _offset(tok):
    if not tok:
        return 0
    try:
        return int(json.loads(base64.b64decode(tok))["o"])
    except (ValueError, KeyError, TypeError):
        raise _invalid("Invalid nextToken") from None


class Ecs(base.Service):
    SERVICE = "ecs"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.clusters = {}    # (region, name) -> cluster
        self.families = {}    # (region, family) -> [revision dict]
        self.services = {}    # arn -> service
        self.tasks = {}       # arn -> task
        self.rng = random.Random(getattr(emulator, "seed", 0) or 0)
        self._tg_states = {}   # target group -> {ip: state}, refreshed every tick

    # ---- ids ---------------------------------------------------------------
    def _hex(self, n=32):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def _deployment_id(self):
        return "ecs-svc/" + "".join(self.rng.choice("0123456789") for _ in range(19))

    def _uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    # ---- lookups -------------------------------------------------------------
    def _cluster_name(self, ref):
        ref = ref or "default"
        if ref.startswith("arn:"):
            return ref.split("/", 1)[-1]
        return ref

    def _cluster(self, region, ref, active=True):
        c = self.clusters.get((region, self._cluster_name(ref)))
        if c is None or (active and c["status"] != "ACTIVE"):
            raise AwsError("ClusterNotFoundException", "Cluster not found.")
        return c

    def _service_arn(self, region, cluster, name):
        return base.arn("ecs", region, f"service/{cluster}/{name}")

    def _service(self, region, cluster, ref):
        name = ref.rsplit("/", 1)[-1] if ref.startswith("arn:") else ref
        s = self.services.get(self._service_arn(region, cluster["clusterName"], name))
        if s is None:
            raise AwsError("ServiceNotFoundException", "Service not found.")
        return s

    def _taskdef(self, region, ref, allow_inactive=True):
        """The revision named by family, family:revision or ARN."""
        if ref.startswith("arn:"):
            ref = ref.split("task-definition/", 1)[-1]
        family, _, rev = ref.partition(":")
        revs = self.families.get((region, family)) or []
        if rev:
            if not rev.isdigit() or not 1 <= int(rev) <= len(revs):
                return None
            td = revs[int(rev) - 1]
            if td["status"] != "ACTIVE" and not allow_inactive:
                return None
            return td
        active = [td for td in revs if td["status"] == "ACTIVE"]
        return active[-1] if active else None

    # ---- clusters --------------------------------------------------------------
    def _render_cluster(self, c, include=()):
        running = pending = 0
        for t in self.tasks.values():
            if t["clusterArn"] == c["clusterArn"] and t["lastStatus"] != "STOPPED":
                if t["lastStatus"] == "RUNNING":
                    running += 1
                else:
                    pending += 1
        active = sum(1 for s in self.services.values()
                     if s["clusterArn"] == c["clusterArn"] and s["status"] == "ACTIVE")
        out = {k: v for k, v in c.items() if not k.startswith("_") and k not in
               ("tags", "settings")}
        out.update(runningTasksCount=running, pendingTasksCount=pending,
                   activeServicesCount=active, registeredContainerInstancesCount=0,
                   statistics=[], attachments=[])
        if "TAGS" in include:
            out["tags"] = _tags_out(c["tags"])
        if "SETTINGS" in include:
            out["settings"] = c["settings"]
        if "STATISTICS" in include:
            out["statistics"] = [
                {"name": "runningFargateTasksCount", "value": str(running)},
                {"name": "pendingFargateTasksCount", "value": str(pending)},
                {"name": "activeFargateServiceCount", "value": str(active)},
                {"name": "runningEC2TasksCount", "value": "0"},
                {"name": "pendingEC2TasksCount", "value": "0"},
                {"name": "activeEC2ServiceCount", "value": "0"}]
        return out

    def CreateCluster(self, req, params):
        name = params.get("clusterName") or "default"
        if not NAME_RE.match(name):
            raise _invalid("Cluster name can have up to 255 letters (uppercase and lowercase), "
                           "numbers, hyphens, and underscores.")
        tags = self._check_tags(params.get("tags") or [])
        with self.lock:
            c = self.clusters.get((req.region, name))
            if c is not None and c["status"] == "ACTIVE":
                return {"cluster": self._render_cluster(c, ("TAGS", "SETTINGS"))}
            c = {"clusterArn": base.arn("ecs", req.region, f"cluster/{name}"),
                 "clusterName": name, "status": "ACTIVE", "tags": tags,
                 "settings": params.get("settings") or [
                     {"name": "containerInsights", "value": "disabled"}],
                 "capacityProviders": params.get("capacityProviders") or [],
                 "defaultCapacityProviderStrategy":
                     params.get("defaultCapacityProviderStrategy") or [],
                 "_region": req.region}
            if params.get("configuration"):
                c["configuration"] = params["configuration"]
            self.clusters[(req.region, name)] = c
            return {"cluster": self._render_cluster(c, ("TAGS", "SETTINGS"))}

    def DescribeClusters(self, req, params):
        include = params.get("include") or []
        out, failures = [], []
        with self.lock:
            for ref in params.get("clusters") or ["default"]:
                c = self.clusters.get((req.region, self._cluster_name(ref)))
                if c is None:
                    failures.append({"arn": ref if ref.startswith("arn:") else base.arn(
                        "ecs", req.region, f"cluster/{ref}"), "reason": "MISSING"})
                else:
                    out.append(self._render_cluster(c, include))
        return {"clusters": out, "failures": failures}

    def UpdateClusterSettings(self, req, params):
        """Replaces the named settings of an ACTIVE cluster (today only
        containerInsights, whose values ECS accepts are enabled, enhanced and
        disabled) and returns the cluster with its settings."""
        settings = params.get("settings") or []
        if not settings:
            raise AwsError("InvalidParameterException", "settings can not be empty.")
        for s in settings:
            if s.get("name") != "containerInsights":
                raise AwsError("InvalidParameterException",
                               f"Unsupported cluster setting name: {s.get('name')}.")
            if s.get("value") not in ("enabled", "enhanced", "disabled"):
                raise AwsError("InvalidParameterException",
                               "The value for containerInsights must be 'enabled', 'enhanced' "
                               "or 'disabled'.")
        with self.lock:
            c = self._cluster(req.region, params["cluster"])
            current = [dict(s) for s in c.get("settings") or []]
            for s in settings:
                for cur in current:
                    if cur.get("name") == s["name"]:
                        cur["value"] = s["value"]
                        break
                else:
                    current.append({"name": s["name"], "value": s["value"]})
            c["settings"] = current
            return {"cluster": self._render_cluster(c, ("SETTINGS",))}

    def DeleteCluster(self, req, params):
        with self.lock:
            c = self._cluster(req.region, params["cluster"], active=False)
            if c["status"] != "ACTIVE":
                return {"cluster": self._render_cluster(c)}
            if any(s["clusterArn"] == c["clusterArn"] and s["status"] in ("ACTIVE", "DRAINING")
                   for s in self.services.values()):
                raise AwsError("ClusterContainsServicesException",
                               "The Cluster cannot be deleted while Services are active.")
            if any(t["clusterArn"] == c["clusterArn"] and t["lastStatus"] != "STOPPED"
                   for t in self.tasks.values()):
                raise AwsError("ClusterContainsTasksException",
                               "The Cluster cannot be deleted while Tasks are active.")
            c["status"] = "INACTIVE"
            return {"cluster": self._render_cluster(c)}

    # ---- task definitions ---------------------------------------------------------
    def RegisterTaskDefinition(self, req, params):
        family = params["family"]
        if not NAME_RE.match(family):
            raise _client("Family contains invalid characters or is longer than 255 "
                          "characters.")
        compat = params.get("requiresCompatibilities") or []
        fargate = "FARGATE" in compat
        mode = params.get("networkMode")
        if fargate and mode != "awsvpc":
            raise _client("Fargate only supports network mode 'awsvpc'.")
        cpu = mem = None
        if params.get("cpu") is not None:
            cpu = _parse_cpu(params["cpu"])
            if cpu is None or cpu < 128:
                raise _client("Invalid 'cpu' setting for task.")
        if params.get("memory") is not None:
            mem = _parse_memory(params["memory"])
            if mem is None or mem < 128:
                raise _client("Invalid 'memory' setting for task.")
        if fargate:
            if cpu is None:
                raise _client("Fargate requires that 'cpu' be defined at the task level.")
            if mem is None:
                raise _client("Fargate requires that 'memory' be defined at the task level.")
            if mem not in FARGATE_SIZES.get(cpu, []):
                raise _client("No Fargate configuration exists for given values: "
                              f"{cpu} CPU, {mem} memory. See the Amazon ECS documentation "
                              "for the valid values.")
        containers = []
        names = set()
        total_cpu = total_mem = 0
        for cd in params["containerDefinitions"]:
            cd = dict(cd)
            if not cd.get("name"):
                raise _client("Container.name should not be null or empty.")
            if not cd.get("image"):
                raise _client("Container.image should not be null or empty.")
            if not NAME_RE.match(cd["name"]):
                raise _client("Container.name contains invalid characters.")
            if cd["name"] in names:
                raise _client(f"Duplicate container name found: {cd['name']}.")
            names.add(cd["name"])
            if mem is None and not cd.get("memory") and not cd.get("memoryReservation"):
                raise _client(f"Invalid setting for container '{cd['name']}'. At least one of "
                              "'memory' or 'memoryReservation' must be specified.")
            if cd.get("memory") and cd.get("memoryReservation") and \
                    cd["memoryReservation"] > cd["memory"]:
                raise _client(f"Invalid setting for container '{cd['name']}'. "
                              "'memoryReservation' must be less than 'memory'.")
            total_cpu += cd.get("cpu") or 0
            total_mem += cd.get("memoryReservation") or cd.get("memory") or 0
            ports = []
            for pm in cd.get("portMappings") or []:
                pm = dict(pm)
                if pm.get("containerPort") is None:
                    raise _client("Container port mapping must specify containerPort.")
                if mode == "awsvpc":
                    if pm.get("hostPort") not in (None, pm["containerPort"]):
                        raise _client("When networkMode=awsvpc, the host ports and container "
                                      "ports in port mappings must match.")
                    pm["hostPort"] = pm["containerPort"]
                pm.setdefault("protocol", "tcp")
                ports.append(pm)
            cd["portMappings"] = ports
            log = cd.get("logConfiguration") or {}
            if fargate and log.get("logDriver") == "awslogs" and not params.get(
                    "executionRoleArn"):
                raise _client("Fargate requires task definition to have execution role ARN "
                              "to support log driver awslogs.")
            if fargate and ".dkr.ecr." in cd["image"] and not params.get("executionRoleArn"):
                raise _client("Fargate requires task definition to have execution role ARN "
                              "to support ECR images.")
            if fargate and log.get("logDriver") not in (None, "awslogs", "splunk",
                                                        "awsfirelens"):
                raise _client(f"Log driver {log['logDriver']} is not supported on Fargate.")
            cd.setdefault("cpu", 0)
            cd.setdefault("essential", True)
            for k in ("environment", "mountPoints", "volumesFrom"):
                cd.setdefault(k, [])
            containers.append(cd)
        if not any(cd["essential"] for cd in containers):
            raise _client("Task definition must have at least one essential container.")
        if cpu is not None and total_cpu > cpu:
            raise _client("The sum of the container cpu values must not exceed the task cpu.")
        if mem is not None and total_mem > mem:
            raise _client("Invalid setting for container memory: the sum of container "
                          "memory reservations must not exceed the task memory.")
        tags = self._check_tags(params.get("tags") or [])
        compatibilities = ["EC2"]
        if mode == "awsvpc" and cpu is not None and mem is not None:
            compatibilities.append("FARGATE")
        if mode in (None, "bridge", "host", "none"):
            compatibilities.append("EXTERNAL")
        for c in compat:
            if c not in compatibilities:
                raise _client(f"Task definition does not support launch_type {c}.")
        requires = [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}]
        if mode == "awsvpc":
            requires.append({"name": "ecs.capability.task-eni"})
        if any((c.get("logConfiguration") or {}).get("logDriver") == "awslogs"
               for c in containers):
            requires.append({"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"})
            if params.get("executionRoleArn"):
                requires.append({"name": "ecs.capability.execution-role-awslogs"})
        with self.lock:
            revs = self.families.setdefault((req.region, family), [])
            rev = len(revs) + 1
            td = {"taskDefinitionArn": base.arn("ecs", req.region,
                                                f"task-definition/{family}:{rev}"),
                  "containerDefinitions": containers, "family": family, "revision": rev,
                  "volumes": params.get("volumes") or [], "status": "ACTIVE",
                  "requiresAttributes": requires,
                  "placementConstraints": params.get("placementConstraints") or [],
                  "compatibilities": compatibilities,
                  "registeredAt": self.clock.utcnow(),
                  "registeredBy": f"arn:aws:iam::{base.ACCOUNT_ID}:root",
                  "_tags": tags}
            if mode:
                td["networkMode"] = mode
            if compat:
                td["requiresCompatibilities"] = list(compat)
            if cpu is not None:
                td["cpu"] = str(cpu)
            if mem is not None:
                td["memory"] = str(mem)
            for k in ("taskRoleArn", "executionRoleArn", "runtimePlatform", "pidMode",
                      "ipcMode", "proxyConfiguration", "ephemeralStorage",
                      "inferenceAccelerators"):
                if params.get(k) is not None:
                    td[k] = params[k]
            revs.append(td)
            return {"taskDefinition": self._render_td(td), "tags": _tags_out(tags)}

    @staticmethod
    def _render_td(td):
        return {k: v for k, v in td.items() if not k.startswith("_")}

    def DescribeTaskDefinition(self, req, params):
        with self.lock:
            td = self._taskdef(req.region, params["taskDefinition"])
            if td is None:
                raise _client("Unable to describe task definition.")
            out = {"taskDefinition": self._render_td(td)}
            if "TAGS" in (params.get("include") or []):
                out["tags"] = _tags_out(td["_tags"])
            return out

    def DeregisterTaskDefinition(self, req, params):
        ref = params["taskDefinition"]
        short = ref.split("task-definition/", 1)[-1]
        if ":" not in short:
            raise _client("Invalid revision number. Number: " + short)
        with self.lock:
            td = self._taskdef(req.region, ref)
            if td is None:
                raise _client("The specified task definition does not exist.")
            if td["status"] == "ACTIVE":
                td["status"] = "INACTIVE"
                td["deregisteredAt"] = self.clock.utcnow()
            return {"taskDefinition": self._render_td(td)}

    def ListTaskDefinitions(self, req, params):
        status = params.get("status") or "ACTIVE"
        limit = params.get("maxResults") or 100
        if not 1 <= limit <= 100:
            raise _invalid("maxResults must be between 1 and 100.")
        with self.lock:
            arns = []
            for (region, family), revs in sorted(self.families.items()):
                if region != req.region:
                    continue
                if params.get("familyPrefix") and family != params["familyPrefix"]:
                    continue
                arns += [td["taskDefinitionArn"] for td in revs if td["status"] == status]
        if params.get("sort") == "DESC":
            arns.reverse()
        start = _offset(params.get("nextToken"))
        out = {"taskDefinitionArns": arns[start:start + limit]}
        if start + limit < len(arns):
            out["nextToken"] = _token(start + limit)
        return out

    # ---- services -------------------------------------------------------------------
    def _check_network(self, net, td):
        awsvpc = (net or {}).get("awsvpcConfiguration")
        if td.get("networkMode") == "awsvpc" and not awsvpc:
            raise _invalid("Network Configuration must be provided when networkMode 'awsvpc' "
                           "is specified.")
        if not awsvpc:
            return
        ec2 = self.emulator.services.get("ec2")
        subnets = awsvpc.get("subnets") or []
        if not subnets:
            raise _invalid("subnets can not be empty.")
        if len(subnets) > 16:
            raise _invalid("subnets can have at most 16 items.")
        if len(awsvpc.get("securityGroups") or []) > 5:
            raise _invalid("securityGroups can have at most 5 items.")
        if ec2 is None:
            return
        vpcs = set()
        for sid in subnets:
            sub = ec2.get_subnet(sid)
            if sub is None:
                raise _invalid(f"Error retrieving subnet information for [{sid}]: The subnet "
                               f"ID '{sid}' does not exist (Service: AmazonEC2; Status Code: "
                               "400; Error Code: InvalidSubnetID.NotFound)")
            vpcs.add(sub["VpcId"])
        if len(vpcs) > 1:
            raise _invalid("The subnets must all belong to the same VPC.")
        for gid in awsvpc.get("securityGroups") or []:
            sg = ec2.get_security_group(gid)
            if sg is None:
                raise _invalid(f"Error retrieving security group information for [{gid}]: "
                               f"The security group '{gid}' does not exist (Service: "
                               "AmazonEC2; Status Code: 400; Error Code: "
                               "InvalidGroup.NotFound)")
            if sg.get("VpcId") not in vpcs:
                raise _invalid(f"Security group {gid} does not belong to the VPC of the "
                               "subnets.")

    def _check_load_balancers(self, lbs, td):
        elbv2 = self.emulator.services.get("elbv2")
        out = []
        for lb in lbs or []:
            lb = dict(lb)
            if lb.get("loadBalancerName"):
                raise _invalid("loadBalancerName is for Classic Load Balancers, which Fargate "
                               "services cannot use; specify targetGroupArn.")
            tg = lb.get("targetGroupArn")
            if not tg:
                raise _invalid("targetGroupArn must be specified for a load balancer.")
            name, port = lb.get("containerName"), lb.get("containerPort")
            if not name or port is None:
                raise _invalid("containerName and containerPort must be specified for a "
                               "load balancer.")
            cd = next((c for c in td["containerDefinitions"] if c["name"] == name), None)
            if cd is None:
                raise _invalid(f"The container {name} does not exist in the task definition.")
            if not any(pm["containerPort"] == port for pm in cd["portMappings"]):
                raise _invalid(f"The container {name} did not have a container port {port} "
                               "defined.")
            if elbv2 is not None:
                info = elbv2.target_group(tg)
                if info is None:
                    raise _invalid(f"Unable to describe target group {tg}: target group not "
                                   "found.")
                if td.get("networkMode") == "awsvpc" and info.get("TargetType") not in \
                        (None, "ip"):
                    raise _invalid(f"The provided target group {tg} has target type "
                                   f"{info.get('TargetType')}, which is incompatible with the "
                                   "awsvpc network mode specified in the task definition.")
                if "LoadBalancerArns" in info and not info["LoadBalancerArns"]:
                    raise _invalid(f"The target group with targetGroupArn {tg} does not have "
                                   "an associated load balancer.")
            out.append(lb)
        return out

    def CreateService(self, req, params):
        name = params["serviceName"]
        if not NAME_RE.match(name):
            raise _invalid("Service name can have up to 255 letters, numbers, hyphens and "
                           "underscores.")
        if params.get("schedulingStrategy") == "DAEMON":
            raise _invalid("The daemon scheduling strategy is not supported for Fargate.")
        if params.get("desiredCount") is None:
            raise _invalid("desiredCount is required when schedulingStrategy is REPLICA.")
        if params.get("launchType", "FARGATE") != "FARGATE" and not \
                params.get("capacityProviderStrategy"):
            raise _invalid("This emulator models Fargate services only (launchType FARGATE).")
        if (params.get("deploymentController") or {}).get("type", "ECS") != "ECS":
            raise _invalid("Only the ECS deployment controller is modelled.")
        tags = self._check_tags(params.get("tags") or [])
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"))
            if not params.get("taskDefinition"):
                raise _invalid("TaskDefinition must be specified.")
            td = self._taskdef(req.region, params["taskDefinition"])
            if td is None:
                raise _client("TaskDefinition not found.")
            if td["status"] != "ACTIVE":
                raise _client("TaskDefinition is inactive")
            if "FARGATE" not in td["compatibilities"]:
                raise _invalid("Task definition does not support launch_type FARGATE.")
            self._check_network(params.get("networkConfiguration"), td)
            lbs = self._check_load_balancers(params.get("loadBalancers"), td)
            if params.get("healthCheckGracePeriodSeconds") is not None and not lbs:
                raise _invalid("Health check grace period is only valid for services "
                               "configured to use load balancers")
            arn = self._service_arn(req.region, cluster["clusterName"], name)
            old = self.services.get(arn)
            if old is not None and old["status"] == "DRAINING":
                raise _invalid("Unable to Start a service that is still Draining.")
            if old is not None and old["status"] != "INACTIVE":
                raise _invalid("Creation of service was not idempotent.")
            now = self.clock.utcnow()
            dc = {"deploymentCircuitBreaker": {"enable": False, "rollback": False},
                  "maximumPercent": 200, "minimumHealthyPercent": 100}
            for k, v in (params.get("deploymentConfiguration") or {}).items():
                dc[k] = v
            svc = {"serviceArn": arn, "serviceName": name, "clusterArn": cluster["clusterArn"],
                   "loadBalancers": lbs, "serviceRegistries": [], "status": "ACTIVE",
                   "desiredCount": params["desiredCount"], "launchType": "FARGATE",
                   "platformVersion": params.get("platformVersion") or "LATEST",
                   "platformFamily": "Linux", "taskDefinition": td["taskDefinitionArn"],
                   "deploymentConfiguration": dc, "deployments": [],
                   "roleArn": (f"arn:aws:iam::{base.ACCOUNT_ID}:role/aws-service-role/"
                               "ecs.amazonaws.com/AWSServiceRoleForECS"),
                   "events": [], "createdAt": now,
                   "placementConstraints": params.get("placementConstraints") or [],
                   "placementStrategy": params.get("placementStrategy") or [],
                   "schedulingStrategy": "REPLICA",
                   "deploymentController": {"type": "ECS"},
                   "createdBy": f"arn:aws:iam::{base.ACCOUNT_ID}:root",
                   "enableECSManagedTags": bool(params.get("enableECSManagedTags")),
                   "propagateTags": params.get("propagateTags") or "NONE",
                   "enableExecuteCommand": bool(params.get("enableExecuteCommand")),
                   "_tags": tags, "_region": req.region, "_cluster": cluster["clusterName"],
                   "_subnet_rr": 0, "_steady": False}
            if params.get("networkConfiguration"):
                svc["networkConfiguration"] = params["networkConfiguration"]
            if params.get("healthCheckGracePeriodSeconds") is not None:
                svc["healthCheckGracePeriodSeconds"] = params["healthCheckGracePeriodSeconds"]
            if params.get("capacityProviderStrategy"):
                svc["capacityProviderStrategy"] = params["capacityProviderStrategy"]
                del svc["launchType"]
            self._new_deployment(svc, td["taskDefinitionArn"])
            self.services[arn] = svc
            return {"service": self._render_service(svc, ("TAGS",))}

    def _new_deployment(self, svc, td_arn):
        now = self.clock.utcnow()
        for d in svc["deployments"]:
            d["status"] = "ACTIVE"
            d["updatedAt"] = now
        dep = {"id": self._deployment_id(), "status": "PRIMARY", "taskDefinition": td_arn,
               "desiredCount": svc["desiredCount"], "failedTasks": 0, "createdAt": now,
               "updatedAt": now, "launchType": "FARGATE",
               "platformVersion": "1.4.0", "platformFamily": "Linux",
               "rolloutState": "IN_PROGRESS"}
        dep["rolloutStateReason"] = f"ECS deployment {dep['id']} in progress."
        if svc.get("networkConfiguration"):
            dep["networkConfiguration"] = svc["networkConfiguration"]
        svc["deployments"].insert(0, dep)
        svc["taskDefinition"] = td_arn
        svc["_steady"] = False
        return dep

    def _render_service(self, svc, include=()):
        out = {k: v for k, v in svc.items() if not k.startswith("_")}
        running = pending = 0
        deps = []
        mine = [t for t in self.tasks.values() if t["_service"] == svc["serviceArn"]]
        for d in svc["deployments"]:
            r = p = 0
            for t in mine:
                if t["_deployment"] == d["id"] and t["desiredStatus"] == "RUNNING":
                    if t["lastStatus"] == "RUNNING":
                        r += 1
                    else:
                        p += 1
            dd = dict(d, runningCount=r, pendingCount=p)
            deps.append(dd)
            running += r
            pending += p
        out["deployments"] = deps
        out["runningCount"] = running
        out["pendingCount"] = pending
        out["events"] = list(svc["events"])
        if "TAGS" in include:
            out["tags"] = _tags_out(svc["_tags"])
        return out

    def DescribeServices(self, req, params):
        refs = params["services"]
        if len(refs) > 10:
            raise _invalid("services can have at most 10 items.")
        out, failures = [], []
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"), active=False)
            for ref in refs:
                try:
                    out.append(self._render_service(self._service(req.region, cluster, ref),
                                                    params.get("include") or ()))
                except AwsError:
                    failures.append({"arn": ref if ref.startswith("arn:") else
                                     self._service_arn(req.region, cluster["clusterName"],
                                                       ref), "reason": "MISSING"})
        return {"services": out, "failures": failures}

    def UpdateService(self, req, params):
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"))
            svc = self._service(req.region, cluster, params["service"])
            if svc["status"] != "ACTIVE":
                raise AwsError("ServiceNotActiveException", "Service was not ACTIVE.")
            new_dep = bool(params.get("forceNewDeployment"))
            td = self._taskdef(req.region, svc["taskDefinition"])
            if params.get("taskDefinition"):
                td = self._taskdef(req.region, params["taskDefinition"])
                if td is None:
                    raise _client("TaskDefinition not found.")
                if td["status"] != "ACTIVE":
                    raise _client("TaskDefinition is inactive")
                if "FARGATE" not in td["compatibilities"]:
                    raise _invalid("Task definition does not support launch_type FARGATE.")
                if td["taskDefinitionArn"] != svc["taskDefinition"]:
                    new_dep = True
            if params.get("networkConfiguration") is not None:
                self._check_network(params["networkConfiguration"], td)
                if params["networkConfiguration"] != svc.get("networkConfiguration"):
                    new_dep = True
            else:
                self._check_network(svc.get("networkConfiguration"), td)
            lbs = svc["loadBalancers"]
            if params.get("loadBalancers") is not None:
                lbs = self._check_load_balancers(params["loadBalancers"], td)
                if lbs != svc["loadBalancers"]:
                    new_dep = True
            elif params.get("taskDefinition"):
                self._check_load_balancers(lbs, td)
            grace = params.get("healthCheckGracePeriodSeconds")
            if grace is not None and not lbs:
                raise _invalid("Health check grace period is only valid for services "
                               "configured to use load balancers")
            if params.get("platformVersion") and params["platformVersion"] != \
                    svc["platformVersion"]:
                new_dep = True
                svc["platformVersion"] = params["platformVersion"]
            if params.get("desiredCount") is not None:
                svc["desiredCount"] = params["desiredCount"]
                svc["deployments"][0]["desiredCount"] = params["desiredCount"]
                svc["_steady"] = False
            if params.get("deploymentConfiguration"):
                dc = dict(svc["deploymentConfiguration"])
                dc.update(params["deploymentConfiguration"])
                svc["deploymentConfiguration"] = dc
            if grace is not None:
                svc["healthCheckGracePeriodSeconds"] = grace
            for k in ("propagateTags", "enableECSManagedTags", "enableExecuteCommand",
                      "placementStrategy", "placementConstraints"):
                if params.get(k) is not None:
                    svc[k] = params[k]
            if params.get("networkConfiguration") is not None:
                svc["networkConfiguration"] = params["networkConfiguration"]
            svc["loadBalancers"] = lbs
            if new_dep:
                self._new_deployment(svc, td["taskDefinitionArn"])
            return {"service": self._render_service(svc)}

    def DeleteService(self, req, params):
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"))
            svc = self._service(req.region, cluster, params["service"])
            if svc["status"] == "INACTIVE":
                raise AwsError("ServiceNotActiveException", "Service was not ACTIVE.")
            if svc["status"] == "ACTIVE":
                if svc["desiredCount"] > 0 and not params.get("force"):
                    raise _invalid("The service cannot be stopped while it is scaled above 0.")
                svc["status"] = "DRAINING"
                svc["desiredCount"] = 0
                for d in svc["deployments"]:
                    d["desiredCount"] = 0
            return {"service": self._render_service(svc)}

    def ListServices(self, req, params):
        limit = params.get("maxResults") or 10
        if not 1 <= limit <= 100:
            raise _invalid("maxResults must be between 1 and 100.")
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"))
            arns = sorted(s["serviceArn"] for s in self.services.values()
                          if s["clusterArn"] == cluster["clusterArn"]
                          and s["status"] in ("ACTIVE", "DRAINING"))
        start = _offset(params.get("nextToken"))
        out = {"serviceArns": arns[start:start + limit]}
        if start + limit < len(arns):
            out["nextToken"] = _token(start + limit)
        return out

    # ---- tasks --------------------------------------------------------------------------
    def _render_task(self, t, include=()):
        out = {k: v for k, v in t.items() if not k.startswith("_")}
        if "TAGS" in include:
            out["tags"] = _tags_out(t["_tags"])
        else:
            out.pop("tags", None)
        return out

    def ListTasks(self, req, params):
        limit = params.get("maxResults") or 100
        if not 1 <= limit <= 100:
            raise _invalid("maxResults must be between 1 and 100.")
        want = params.get("desiredStatus") or "RUNNING"
        if params.get("serviceName") and params.get("family"):
            raise _invalid("Cannot specify both family and serviceName.")
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"))
            arns = []
            for t in sorted(self.tasks.values(), key=lambda t: t["createdAt"]):
                if t["clusterArn"] != cluster["clusterArn"] or t["desiredStatus"] != want:
                    continue
                if params.get("serviceName") and t["group"] != "service:" + \
                        params["serviceName"].rsplit("/", 1)[-1]:
                    continue
                if params.get("family") and t["group"] != "family:" + params["family"] and \
                        t["_family"] != params["family"]:
                    continue
                if params.get("startedBy") and t.get("startedBy") != params["startedBy"]:
                    continue
                arns.append(t["taskArn"])
        start = _offset(params.get("nextToken"))
        out = {"taskArns": arns[start:start + limit]}
        if start + limit < len(arns):
            out["nextToken"] = _token(start + limit)
        return out

    def DescribeTasks(self, req, params):
        if len(params["tasks"]) > 100:
            raise _invalid("tasks can have at most 100 items.")
        out, failures = [], []
        with self.lock:
            cluster = self._cluster(req.region, params.get("cluster"), active=False)
            for ref in params["tasks"]:
                tid = ref.rsplit("/", 1)[-1]
                arn = base.arn("ecs", req.region, f"task/{cluster['clusterName']}/{tid}")
                t = self.tasks.get(arn)
                if t is None:
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    out.append(self._render_task(t, params.get("include") or ()))
        return {"tasks": out, "failures": failures}

    # ---- tags ---------------------------------------------------------------------------
    @staticmethod
    def _check_tags(tags):
        out = {}
        for t in tags:
            k = t.get("key")
            if not k:
                raise _invalid("Tag key must not be empty.")
            if k.lower().startswith("aws:"):
                raise _invalid("Tag keys starting with 'aws:' are reserved.")
            out[k] = t.get("value", "")
        if len(out) > 50:
            raise _invalid("A resource can have at most 50 tags.")
        return out

    def _resource_tags(self, region, arn):
        """The tag dict of the resource named by ``arn`` (mutable), or None."""
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "ecs":
            raise _invalid("Invalid resource ARN: " + arn)
        kind, _, rest = parts[5].partition("/")
        if kind == "cluster":
            c = self.clusters.get((parts[3], rest))
            return c["tags"] if c and c["status"] == "ACTIVE" else None
        if kind == "service":
            s = self.services.get(arn)
            return s["_tags"] if s and s["status"] != "INACTIVE" else None
        if kind == "task-definition":
            td = self._taskdef(parts[3], rest)
            return td["_tags"] if td else None
        if kind == "task":
            t = self.tasks.get(arn)
            return t["_tags"] if t else None
        raise _invalid("Invalid resource ARN: " + arn)

    def TagResource(self, req, params):
        new = self._check_tags(params["tags"])
        with self.lock:
            tags = self._resource_tags(req.region, params["resourceArn"])
            if tags is None:
                raise AwsError("ResourceNotFoundException", "The specified resource wasn't "
                               "found.")
            merged = dict(tags)
            merged.update(new)
            self._check_tags([{"key": k, "value": v} for k, v in merged.items()])
            tags.update(new)
        return {}

    def UntagResource(self, req, params):
        with self.lock:
            tags = self._resource_tags(req.region, params["resourceArn"])
            if tags is None:
                raise AwsError("ResourceNotFoundException", "The specified resource wasn't "
                               "found.")
            for k in params["tagKeys"]:
                tags.pop(k, None)
        return {}

    def ListTagsForResource(self, req, params):
        with self.lock:
            tags = self._resource_tags(req.region, params["resourceArn"])
            if tags is None:
                raise _invalid("The specified resource wasn't found.")
            return {"tags": _tags_out(tags)}

    # ---- simulation -----------------------------------------------------------------------
    def _event(self, svc, message):
        svc["events"].insert(0, {"id": self._uuid(), "createdAt": self.clock.utcnow(),
                                 "message": f"(service {svc['serviceName']}) {message}"})
        del svc["events"][MAX_EVENTS:]

    def _container(self, td, svc):
        """The container whose image decides the task's behaviour: the one
        behind the load balancer, else the first essential one."""
        names = [lb["containerName"] for lb in svc["loadBalancers"]]
        for cd in td["containerDefinitions"]:
            if cd["name"] in names:
                return cd
        return next(cd for cd in td["containerDefinitions"] if cd["essential"])

    def _launch(self, svc, dep, now):
        td = self._taskdef(svc["_region"], dep["taskDefinition"])
        cd = self._container(td, svc)
        image = cd["image"]
        prof = self.emulator.profile(image)
        region, cname = svc["_region"], svc["_cluster"]
        tid = self._hex()
        arn = base.arn("ecs", region, f"task/{cname}/{tid}")
        awsvpc = (dep.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        subnets = awsvpc.get("subnets") or []
        eni = None
        subnet = az = None
        ec2 = self.emulator.services.get("ec2")
        attachment = self._uuid()
        if subnets and ec2 is not None:
            subnet = subnets[svc["_subnet_rr"] % len(subnets)]
            svc["_subnet_rr"] += 1
            try:
                eni = ec2.create_network_interface_internal(
                    subnet, awsvpc.get("securityGroups") or [],
                    f"arn:aws:ecs:{region}:{base.ACCOUNT_ID}:attachment/{attachment}",
                    public_ip=awsvpc.get("assignPublicIp") == "ENABLED")
            except AwsError as exc:
                self._event(svc, f"was unable to place a task. Reason: {exc.message}")
                return None
            info = ec2.get_subnet(subnet) or {}
            az = info.get("AvailabilityZone")
        ip = eni["PrivateIpAddress"] if eni else None
        nowdt = self.clock.utcnow()
        tags = {}
        if svc["enableECSManagedTags"]:
            tags.update({"aws:ecs:clusterName": cname,
                         "aws:ecs:serviceName": svc["serviceName"]})
        if svc["propagateTags"] == "SERVICE":
            tags.update(svc["_tags"])
        elif svc["propagateTags"] == "TASK_DEFINITION":
            tags.update(td["_tags"])
        details = []
        if eni:
            details = [{"name": "subnetId", "value": subnet},
                       {"name": "networkInterfaceId", "value": eni["NetworkInterfaceId"]},
                       {"name": "macAddress", "value": eni.get("MacAddress", "")},
                       {"name": "privateDnsName", "value": eni.get("PrivateDnsName", "")},
                       {"name": "privateIPv4Address", "value": ip}]
        start = float(prof.get("start_seconds", 5.0))
        t = {"taskArn": arn, "clusterArn": base.arn("ecs", region, f"cluster/{cname}"),
             "taskDefinitionArn": td["taskDefinitionArn"], "group": "service:" +
             svc["serviceName"], "startedBy": dep["id"], "launchType": "FARGATE",
             "platformVersion": "1.4.0", "platformFamily": "Linux",
             "cpu": td.get("cpu"), "memory": td.get("memory"),
             "lastStatus": "PROVISIONING", "desiredStatus": "RUNNING",
             "createdAt": nowdt, "version": 1, "connectivity": "CONNECTED",
             "connectivityAt": nowdt, "healthStatus": "UNKNOWN",
             "enableExecuteCommand": svc["enableExecuteCommand"],
             "attachments": [{"id": attachment, "type": "ElasticNetworkInterface",
                              "status": "ATTACHED" if eni else "PRECREATED",
                              "details": details}],
             "containers": [{"containerArn": base.arn(
                 "ecs", region, f"container/{cname}/{tid}/{self._uuid()}"),
                 "taskArn": arn, "name": c["name"], "image": c["image"],
                 "lastStatus": "PENDING", "healthStatus": "UNKNOWN",
                 "cpu": str(c.get("cpu", 0)),
                 "networkInterfaces": [{"attachmentId": attachment,
                                        "privateIpv4Address": ip}] if ip else []}
                 for c in td["containerDefinitions"]],
             "overrides": {"containerOverrides": [{"name": c["name"]}
                                                  for c in td["containerDefinitions"]]},
             "ephemeralStorage": {"sizeInGiB": 20},
             "_tags": tags, "_service": svc["serviceArn"], "_deployment": dep["id"],
             "_image": image, "_healthy": bool(prof.get("healthy", True)), "_ip": ip,
             "_eni": eni["NetworkInterfaceId"] if eni else None, "_family": td["family"],
             "_pending_at": now + self.clock.delay(min(start * 0.2, 10.0)),
             "_running_at": now + self.clock.delay(start), "_registered": [],
             "_grace_until": None, "_stop_at": None}
        if az:
            t["availabilityZone"] = az
        if tags:
            t["tags"] = _tags_out(tags)
        self.tasks[arn] = t
        return t

    def _stop(self, t, now, reason, code="ServiceSchedulerInitiated"):
        if t["desiredStatus"] == "STOPPED":
            return
        t["desiredStatus"] = "STOPPED"
        t["stopCode"] = code
        t["stoppedReason"] = reason
        t["stoppingAt"] = self.clock.utcnow()
        t["version"] += 1
        self._deregister(t)
        if t["lastStatus"] == "RUNNING":
            t["lastStatus"] = "DEACTIVATING"
        t["_stop_at"] = now

    def _deregister(self, t):
        """Deregister from every target group; the task keeps running
        (DEACTIVATING) for the longest deregistration delay, as ECS waits for
        connections to drain."""
        elbv2 = self.emulator.services.get("elbv2")
        drain = 0.0
        for tg, port in t["_registered"]:
            if elbv2 is None:
                continue
            try:
                elbv2.deregister_targets_internal(tg, [{"Id": t["_ip"], "Port": port}])
                info = elbv2.target_group(tg) or {}
                drain = max(drain, float((info.get("Attributes") or {}).get(
                    "deregistration_delay.timeout_seconds", 0)))
            except (AwsError, ValueError):
                pass
        t["_registered"] = []
        t["_drain"] = self.clock.delay(drain)

    def _register(self, t, svc):
        elbv2 = self.emulator.services.get("elbv2")
        if elbv2 is None or not t["_ip"]:
            return
        for lb in svc["loadBalancers"]:
            try:
                elbv2.register_targets_internal(lb["targetGroupArn"], [
                    {"Id": t["_ip"], "Port": lb["containerPort"], "healthy": t["_healthy"]}])
            except AwsError as exc:
                self._event(svc, f"failed to register targets in ({lb['targetGroupArn']}): "
                                 f"{exc.message}")
                continue
            t["_registered"].append((lb["targetGroupArn"], lb["containerPort"]))
            self._event(svc, f"registered 1 targets in (target-group "
                             f"{lb['targetGroupArn']})")

    def _target_state(self, tg, ip):
        """The load balancer's view of a target (cached for one tick)."""
        cache = self._tg_states
        if tg not in cache:
            elbv2 = self.emulator.services.get("elbv2")
            cache[tg] = elbv2.target_states(tg) if elbv2 is not None and hasattr(
                elbv2, "target_states") else {}
        return cache[tg].get(ip)

    def _failed_target_group(self, t, now):
        """The target group reporting the running task unhealthy once its
        health check grace period is over (ECS then replaces it), or None."""
        if t["lastStatus"] != "RUNNING" or t["_grace_until"] is None or \
                now < t["_grace_until"]:
            return None
        for tg, _ in t["_registered"]:
            if self._target_state(tg, t["_ip"]) == "unhealthy":
                return tg
        return None

    def _task_healthy(self, t, svc):
        """RUNNING, and healthy in every target group it is registered in."""
        if t["lastStatus"] != "RUNNING":
            return False
        if not svc["loadBalancers"]:
            return True
        return bool(t["_registered"]) and all(
            self._target_state(tg, t["_ip"]) == "healthy" for tg, _ in t["_registered"])

    def _start_failure(self, t):
        """(stopCode, reason, container name) when the task cannot start, else
        None: an image missing from this account's ECR (tasks pull when they
        leave PENDING), or the image profile's ``start_failure`` ("pull": the
        image cannot be pulled, "exit": the essential container exits at
        once)."""
        ecr = self.emulator.services.get("ecr")
        check = getattr(ecr, "pull_error_internal", None)
        for c in t["containers"]:
            reason = check(c["image"]) if check is not None else None
            if reason:
                return "TaskFailedToStart", reason, c["name"]
        region = t["clusterArn"].split(":")[3]
        td = self._taskdef(region, t["taskDefinitionArn"]) or {"containerDefinitions": []}
        for cd in td["containerDefinitions"]:
            reason = self._log_error(region, cd.get("logConfiguration") or {})
            if reason:
                return "TaskFailedToStart", reason, cd["name"]
        reason = self._secrets_error(region, td)
        if reason:
            return "TaskFailedToStart", reason[1], reason[0]
        mode = self.emulator.profile(t["_image"]).get("start_failure")
        name = next((c["name"] for c in t["containers"] if c["image"] == t["_image"]),
                    t["containers"][0]["name"])
        if mode == "pull":
            return ("TaskFailedToStart", "CannotPullContainerError: pull image manifest has "
                    f"been retried 5 time(s): failed to resolve ref {t['_image']}: "
                    f"{t['_image']}: not found", name)
        if mode == "exit":
            return "EssentialContainerExited", "Essential container in task exited", name
        return None

    def _secrets_error(self, region, td):
        """(container name, reason) when the task execution role cannot read
        a secret a container names (ECS fetches them with that role before
        the container starts), else None. Only checked with the IAM module
        loaded: the role's inline policies and the AWS managed policies
        that read secrets count."""
        iam = self.emulator.services.get("iam")
        if iam is None or not hasattr(iam, "get_role_by_arn"):
            return None
        role = None
        for cd in td["containerDefinitions"]:
            for secret in cd.get("secrets") or []:
                ref = secret.get("valueFrom") or ""
                ssm = ref.startswith("arn:aws:ssm:") or not ref.startswith("arn:")
                if not ref.startswith("arn:"):
                    ref = base.arn("ssm", region, "parameter/" + ref.lstrip("/"))
                action = "ssm:GetParameters" if ssm else "secretsmanager:GetSecretValue"
                if role is None:
                    role = iam.get_role_by_arn(td.get("executionRoleArn") or "") or {}
                if self._role_allows(role, action, ref):
                    continue
                who = (f"arn:aws:sts::{base.ACCOUNT_ID}:assumed-role/"
                       f"{role.get('RoleName', 'unknown')}/{self._hex(32)}")
                service = "ssm" if ssm else "asm"
                return cd["name"], (
                    "ResourceInitializationError: unable to pull secrets or registry auth: "
                    f"execution resource retrieval failed: unable to retrieve secret from "
                    f"{service}: service call has been retried 1 time(s): AccessDeniedException: "
                    f"User: {who} is not authorized to perform: {action} on resource: {ref} "
                    f"because no identity-based policy allows the {action} action")
        return None

    @staticmethod
    def _role_allows(role, action, resource):
        if not role:
            return False
        decisions = []
        for doc in (role.get("InlinePolicies") or {}).values():
            try:
                decisions.append(_policy_decision(json.loads(doc), action, resource))
            except ValueError:
                continue
        if "Deny" in decisions:
            return False
        if any(arn.rsplit("/", 1)[-1] in SECRETS_READING_MANAGED.get(action, ())
               for arn in role.get("AttachedPolicyArns") or []):
            return True
        return "Allow" in decisions

    def _log_error(self, region, log):
        """Why the awslogs driver cannot start (its log group is missing and
        awslogs-create-group is not "true"), or None. With create-group the
        group is created, as the driver does."""
        logs = self.emulator.services.get("logs")
        if log.get("logDriver") != "awslogs" or logs is None or \
                not hasattr(logs, "get_log_group"):
            return None
        opts = log.get("options") or {}
        group = opts.get("awslogs-group")
        if not group:
            return None   # AWS's answer to a missing awslogs-group is not modelled
        group_region = opts.get("awslogs-region") or region
        if logs.get_log_group(group, group_region) is not None:
            return None
        if opts.get("awslogs-create-group") == "true" and group_region == region:
            req = base.RequestContext(self.emulator, "logs", "CreateLogGroup", region, None)
            logs.CreateLogGroup(req, {"logGroupName": group})
            return None
        return ("ResourceInitializationError: failed to validate logger args: create stream "
                "has been retried 1 times: failed to create Cloudwatch log stream: "
                "ResourceNotFoundException: The specified log group does not exist. : "
                "exit status 1")

    def _fail_start(self, t, svc, now, code, reason, container):
        """Stop a task that could not start; it counts as a failed task of its
        deployment (circuit breaker) and the service waits RESTART_DELAY before
        launching its replacement, as the ECS scheduler throttles restarts."""
        nowdt = self.clock.utcnow()
        t["pullStoppedAt"] = nowdt
        for c in t["containers"]:
            if c["name"] != container:
                continue
            c["reason"] = reason
            if code == "EssentialContainerExited":
                c["exitCode"] = 1
        if code == "EssentialContainerExited":
            t["startedAt"] = nowdt
        self._stop(t, now, reason, code=code)
        if svc is not None:
            for d in svc["deployments"]:
                if d["id"] == t["_deployment"]:
                    d["failedTasks"] += 1
            svc["_launch_after"] = now + self.clock.delay(RESTART_DELAY)

    def _advance_task(self, t, now):
        svc = self.services.get(t["_service"])
        if t["desiredStatus"] == "RUNNING":
            if t["lastStatus"] == "PROVISIONING" and now >= t["_pending_at"]:
                t["lastStatus"] = "PENDING"
                t["pullStartedAt"] = self.clock.utcnow()
                t["version"] += 1
            if t["lastStatus"] == "PENDING" and now >= t["_running_at"]:
                failure = self._start_failure(t)
                if failure is not None:
                    self._fail_start(t, svc, now, *failure)
                    return
                t["lastStatus"] = "RUNNING"
                nowdt = self.clock.utcnow()
                t["pullStoppedAt"] = t["startedAt"] = nowdt
                t["version"] += 1
                for c in t["containers"]:
                    c["lastStatus"] = "RUNNING"
                    c["runtimeId"] = t["taskArn"].rsplit("/", 1)[-1] + "-" + self._hex(10)
                if svc is not None:
                    self._register(t, svc)
                    grace = svc.get("healthCheckGracePeriodSeconds") or 0
                    t["_grace_until"] = now + self.clock.delay(grace)
            failed = self._failed_target_group(t, now)
            if failed:
                self._stop(t, now, f"Task failed ELB health checks in (target-group {failed})")
                if svc is not None:
                    self._event(svc, f"(task {t['taskArn'].rsplit('/', 1)[-1]}) failed ELB "
                                     f"health checks in (target-group {failed})")
                    for d in svc["deployments"]:
                        if d["id"] == t["_deployment"]:
                            d["failedTasks"] += 1
            return
        # stopping
        if t["lastStatus"] == "STOPPED":
            return
        p1, p2, p3 = (self.clock.delay(x) for x in STOP_PHASE_SECONDS)
        if t["lastStatus"] in ("PROVISIONING", "PENDING"):
            t["lastStatus"] = "DEPROVISIONING"
        drain = t.get("_drain", 0.0)
        if t["lastStatus"] == "DEACTIVATING" and now >= t["_stop_at"] + drain + p1:
            t["lastStatus"] = "STOPPING"
            t["executionStoppedAt"] = self.clock.utcnow()
            for c in t["containers"]:
                c["lastStatus"] = "STOPPED"
                c.setdefault("exitCode", 143)
        if t["lastStatus"] == "STOPPING" and now >= t["_stop_at"] + drain + p2:
            t["lastStatus"] = "DEPROVISIONING"
        if t["lastStatus"] == "DEPROVISIONING" and now >= t["_stop_at"] + drain + p3:
            t["lastStatus"] = "STOPPED"
            t["stoppedAt"] = self.clock.utcnow()
            t["version"] += 1
            for c in t["containers"]:
                c["lastStatus"] = "STOPPED"
            for a in t["attachments"]:
                a["status"] = "DELETED"
            ec2 = self.emulator.services.get("ec2")
            if t["_eni"] and ec2 is not None:
                ec2.delete_network_interface_internal(t["_eni"])
            t["_stopped_wall"] = now

    def _by_service(self):
        """{service arn: [task]} (one pass over the tasks)."""
        out = {}
        for t in self.tasks.values():
            out.setdefault(t["_service"], []).append(t)
        return out

    def _reconcile(self, svc, now, tasks):
        live = {}
        for t in tasks:
            if t["desiredStatus"] == "RUNNING":
                live.setdefault(t["_deployment"], []).append(t)
        primary = svc["deployments"][0]
        pt = live.get(primary["id"], [])
        breaker = svc["deploymentConfiguration"].get("deploymentCircuitBreaker") or {}
        threshold = max(3, min(200, math.ceil(0.5 * max(primary["desiredCount"], 1))))
        if breaker.get("enable") and primary["rolloutState"] == "IN_PROGRESS" and \
                primary["failedTasks"] >= threshold:
            primary["rolloutState"] = "FAILED"
            primary["rolloutStateReason"] = ("ECS deployment circuit breaker: tasks failed "
                                             "to start.")
            self._event(svc, f"deployment {primary['id']} deployment failed: tasks failed to "
                             "start.")
            previous = svc.get("_last_completed")
            if breaker.get("rollback") and previous and previous != primary["taskDefinition"]:
                failed = primary
                dep = self._new_deployment(svc, previous)
                self._event(svc, f"rolling back to deployment {dep['id']}.")
                failed["status"] = "ACTIVE"
                primary, pt = dep, []
        launching = not (primary["rolloutState"] == "FAILED" and not breaker.get("rollback"))
        started = []
        if len(pt) < primary["desiredCount"] and launching and \
                now >= svc.get("_launch_after", 0.0):
            for _ in range(primary["desiredCount"] - len(pt)):
                t = self._launch(svc, primary, now)
                if t is None:
                    break
                started.append(t)
        elif len(pt) > primary["desiredCount"]:
            order = sorted(pt, key=lambda t: (t["lastStatus"] == "RUNNING", t["createdAt"]))
            excess = order[:len(pt) - primary["desiredCount"]]
            for t in excess:
                self._stop(t, now, "Scaling activity initiated by (deployment "
                                   f"{primary['id']})")
            self._event(svc, f"has stopped {len(excess)} running tasks: " + " ".join(
                f"(task {t['taskArn'].rsplit('/', 1)[-1]})" for t in excess) + ".")
        if started:
            self._event(svc, f"has started {len(started)} tasks: " + " ".join(
                f"(task {t['taskArn'].rsplit('/', 1)[-1]})" for t in started) + ".")
        healthy_running = sum(1 for t in live.get(primary["id"], [])
                              if self._task_healthy(t, svc))
        keep_old = max(0, primary["desiredCount"] - healthy_running)
        if svc["status"] == "DRAINING":
            keep_old = 0
        for d in svc["deployments"][1:]:
            tasks = sorted(live.get(d["id"], []),
                           key=lambda t: (t["lastStatus"] == "RUNNING", t["createdAt"]))
            excess = max(0, len(tasks) - keep_old)
            for t in tasks[:excess]:
                self._stop(t, now, f"Scaling activity initiated by (deployment {d['id']})")
            if excess:
                self._event(svc, f"has stopped {excess} running tasks: " + " ".join(
                    f"(task {t['taskArn'].rsplit('/', 1)[-1]})" for t in tasks[:excess]) +
                    ".")
            d["desiredCount"] = len(tasks) - excess
            keep_old = max(0, keep_old - d["desiredCount"])
        svc["deployments"][1:] = [d for d in svc["deployments"][1:] if d["desiredCount"] > 0]
        if len(svc["deployments"]) == 1 and healthy_running == primary["desiredCount"] and \
                len(pt) == primary["desiredCount"] and not started:
            if primary["rolloutState"] == "IN_PROGRESS":
                primary["rolloutState"] = "COMPLETED"
                primary["rolloutStateReason"] = (f"ECS deployment {primary['id']} "
                                                 "completed.")
                primary["updatedAt"] = self.clock.utcnow()
                svc["_last_completed"] = primary["taskDefinition"]
            if not svc["_steady"] and svc["status"] == "ACTIVE":
                svc["_steady"] = True
                self._event(svc, "has reached a steady state.")
        if svc["status"] == "DRAINING" and not started and not any(
                t["lastStatus"] != "STOPPED" for t in tasks):
            svc["status"] = "INACTIVE"
            svc["_inactive_at"] = now

    def tick(self):
        with self.lock:
            now = self.clock.now()
            self._tg_states = {}
            for t in list(self.tasks.values()):
                self._advance_task(t, now)
            by_service = self._by_service()
            for svc in list(self.services.values()):
                if svc["status"] in ("ACTIVE", "DRAINING"):
                    self._reconcile(svc, now, by_service.get(svc["serviceArn"], []))
            stopped = [t for t in self.tasks.values() if t["lastStatus"] == "STOPPED"]
            stopped.sort(key=lambda t: t["_stopped_wall"])
            drop = max(0, len(stopped) - MAX_STOPPED_TASKS)
            for i, t in enumerate(stopped):
                if i < drop or now - t["_stopped_wall"] > STOPPED_TASK_RETENTION:
                    del self.tasks[t["taskArn"]]

    # ---- internal (other services) ---------------------------------------------------
    def target_images_internal(self):
        """{ip: image} of the running tasks (the traffic model's view of targets)."""
        with self.lock:
            return {t["_ip"]: t["_image"] for t in self.tasks.values()
                    if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
                    and t["_ip"]}

    def metrics_view_internal(self):
        """Per active service: region, cluster, service, images of running tasks,
        pending and desired counts, whether Container Insights is enabled."""
        with self.lock:
            out = []
            by_service = self._by_service()
            for svc in self.services.values():
                if svc["status"] == "INACTIVE":
                    continue
                running, pending = [], 0
                for t in by_service.get(svc["serviceArn"], []):
                    if t["desiredStatus"] != "RUNNING":
                        continue
                    if t["lastStatus"] == "RUNNING":
                        running.append(t["_image"])
                    else:
                        pending += 1
                c = self.clusters.get((svc["_region"], svc["_cluster"])) or {}
                insights = any(s.get("name") == "containerInsights" and
                               s.get("value") in ("enabled", "enhanced")
                               for s in c.get("settings") or [])
                out.append({"region": svc["_region"], "cluster": svc["_cluster"],
                            "service": svc["serviceName"], "running_images": running,
                            "pending": pending, "desired": svc["desiredCount"],
                            "insights": insights})
            return out

    def get_service_internal(self, region, cluster, name):
        """DescribeServices-shaped dict of an ACTIVE or DRAINING service, or None."""
        with self.lock:
            svc = self.services.get(self._service_arn(region, cluster, name))
            if svc is None or svc["status"] == "INACTIVE":
                return None
            return self._render_service(svc)

    def running_images_internal(self, region, cluster, name):
        """Images of the service's RUNNING tasks (one entry per task)."""
        with self.lock:
            arn = self._service_arn(region, cluster, name)
            return [t["_image"] for t in self.tasks.values()
                    if t["_service"] == arn and t["lastStatus"] == "RUNNING"
                    and t["desiredStatus"] == "RUNNING"]

    def set_desired_count_internal(self, region, cluster, name, count):
        """Set an ACTIVE service's desiredCount (as Application Auto Scaling does).
        Returns False when the service is not ACTIVE."""
        with self.lock:
            svc = self.services.get(self._service_arn(region, cluster, name))
            if svc is None or svc["status"] != "ACTIVE":
                return False
            if svc["desiredCount"] != count:
                svc["desiredCount"] = count
                svc["deployments"][0]["desiredCount"] = count
                svc["_steady"] = False
            return True
