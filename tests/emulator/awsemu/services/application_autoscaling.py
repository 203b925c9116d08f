"""Application Auto Scaling for ECS services (ecs:service:DesiredCount):
scalable targets, target-tracking (and stored step) policies with the
CloudWatch alarms AWS creates for them, scaling activities, and real target
tracking in tick(). JSON protocol.

Target tracking, once per (scaled) minute per target: each policy's metric is
read from the model (ECS CPU/memory from the image profiles of the running
tasks; ALBRequestCountPerTarget from the traffic model's requests per target
over the last minute; customized metrics from CloudWatch), the wanted
capacity is ceil(current * metric / target); scale-out happens when any
policy has been above its target for 3 evaluations in a row (its AlarmHigh)
and wants more (after ScaleOutCooldown), scale-in only when every policy has
been below 90% of its target for 15 in a row (AlarmLow) and wants less
(after ScaleInCooldown, unless DisableScaleIn). The ECS service's desiredCount is
changed through the ECS module, so DescribeServices shows it.
"""

import math
import random
import re
import uuid

from .. import base
from ..base import AwsError

ECS_DIMENSION = "ecs:service:DesiredCount"
RESOURCE_RE = re.compile(r"^service/([A-Za-z0-9_-]{1,255})/([A-Za-z0-9_-]{1,255})$")
LABEL_RE = re.compile(r"^(app/[^/]+/[^/]+)/(targetgroup/[^/]+/[^/]+)$")
EVALUATION_SECONDS = 60.0
HIGH_PERIODS = 3    # minutes above target before scaling out (AlarmHigh)
LOW_PERIODS = 15    # minutes below 90% of target before scaling in (AlarmLow)
DEFAULT_COOLDOWN = 300
MAX_ACTIVITIES = 200
SERVICE_ROLE = ("arn:aws:iam::{acct}:role/aws-service-role/ecs.application-autoscaling."
                "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService")


def _validation(msg):
    return AwsError("ValidationException", msg)


def _not_registered(ns, rid, dim):
    return AwsError("ObjectNotFoundException", "No scalable target registered for service "
                    f"namespace: {ns}, resource ID: {rid}, scalable dimension: {dim}")


class ApplicationAutoscaling(base.Service):
    SERVICE = "application-autoscaling"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.targets = {}     # (region, ns, rid, dim) -> target
        self.policies = {}    # (region, ns, rid, dim, name) -> policy
        self.activities = []  # newest first, all targets
        self.rng = random.Random(getattr(emulator, "seed", 0) or 0)

    def _uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def _check_ids(self, ns, rid, dim):
        if ns != "ecs":
            raise _validation(f"Unsupported service namespace in this emulator: {ns}")
        if dim != ECS_DIMENSION:
            raise _validation(f"Unsupported scalable dimension for service namespace ecs: "
                              f"{dim}")
        m = RESOURCE_RE.match(rid)
        if not m:
            raise _validation(f"Unsupported resource ID: {rid}. ECS resource IDs have the form "
                              "service/CLUSTER/SERVICE.")
        return m.group(1), m.group(2)

    def _ecs(self):
        return self.emulator.services.get("ecs")

    # ---- scalable targets -------------------------------------------------------
    def RegisterScalableTarget(self, req, params):
        ns, rid, dim = params["ServiceNamespace"], params["ResourceId"], \
            params["ScalableDimension"]
        cluster, service = self._check_ids(ns, rid, dim)
        lo, hi = params.get("MinCapacity"), params.get("MaxCapacity")
        for v, n in ((lo, "MinCapacity"), (hi, "MaxCapacity")):
            if v is not None and v < 0:
                raise _validation(f"{n} must be a non-negative integer.")
        with self.lock:
            ecs = self._ecs()
            svc = ecs.get_service_internal(req.region, cluster, service) if ecs else None
            if svc is None:
                raise _validation(f"ECS service doesn't exist: {rid}")
            key = (req.region, ns, rid, dim)
            t = self.targets.get(key)
            if t is None:
                if lo is None or hi is None:
                    raise _validation("MinCapacity and MaxCapacity are required for "
                                      "registering a new scalable target.")
                t = {"ServiceNamespace": ns, "ResourceId": rid, "ScalableDimension": dim,
                     "MinCapacity": lo, "MaxCapacity": hi,
                     "RoleARN": params.get("RoleARN") or SERVICE_ROLE.format(
                         acct=base.ACCOUNT_ID),
                     "CreationTime": self.clock.utcnow(),
                     "SuspendedState": {"DynamicScalingInSuspended": False,
                                        "DynamicScalingOutSuspended": False,
                                        "ScheduledScalingSuspended": False},
                     "_region": req.region, "_cluster": cluster, "_service": service,
                     "_last_eval": self.clock.now(), "_last_out": None, "_last_in": None}
            new_lo = lo if lo is not None else t["MinCapacity"]
            new_hi = hi if hi is not None else t["MaxCapacity"]
            if new_lo > new_hi:
                raise _validation("Minimum capacity cannot be greater than maximum capacity")
            t["MinCapacity"], t["MaxCapacity"] = new_lo, new_hi
            if params.get("SuspendedState"):
                t["SuspendedState"].update(params["SuspendedState"])
            if params.get("RoleARN"):
                t["RoleARN"] = params["RoleARN"]
            self.targets[key] = t
            desired = svc["desiredCount"]
            if desired < new_lo:
                self._scale(t, desired, new_lo, "minimum capacity was set to "
                            f"{new_lo}", f"Setting desired count to {new_lo}.")
            elif desired > new_hi:
                self._scale(t, desired, new_hi, "maximum capacity was set to "
                            f"{new_hi}", f"Setting desired count to {new_hi}.")
        return {}

    def DeregisterScalableTarget(self, req, params):
        ns, rid, dim = params["ServiceNamespace"], params["ResourceId"], \
            params["ScalableDimension"]
        self._check_ids(ns, rid, dim)
        with self.lock:
            key = (req.region, ns, rid, dim)
            if key not in self.targets:
                raise _not_registered(ns, rid, dim)
            for pkey in [k for k in self.policies if k[:4] == key]:
                self._drop_policy(pkey)
            del self.targets[key]
        return {}

    def DescribeScalableTargets(self, req, params):
        ns = params["ServiceNamespace"]
        ids = params.get("ResourceIds") or []
        if len(ids) > 50:
            raise _validation("ResourceIds can have at most 50 items.")
        with self.lock:
            items = [t for (r, n, _, _), t in sorted(self.targets.items())
                     if r == req.region and n == ns
                     and (not ids or t["ResourceId"] in ids)
                     and (not params.get("ScalableDimension") or
                          t["ScalableDimension"] == params["ScalableDimension"])]
            return self._page(items, params, "ScalableTargets")

    def _page(self, items, params, key, limit_default=50):
        limit = params.get("MaxResults") or limit_default
        if not 1 <= limit <= limit_default:
            raise _validation(f"MaxResults must be between 1 and {limit_default}.")
        start = 0
        if params.get("NextToken"):
            if not params["NextToken"].isdigit():
                raise _validation("Invalid NextToken")
            start = int(params["NextToken"])
        out = {key: [{k: v for k, v in x.items() if not k.startswith("_")}
                     for x in items[start:start + limit]]}
        if start + limit < len(items):
            out["NextToken"] = str(start + limit)
        return out

    # ---- policies ----------------------------------------------------------------------
    def PutScalingPolicy(self, req, params):
        ns, rid, dim = params["ServiceNamespace"], params["ResourceId"], \
            params["ScalableDimension"]
        cluster, service = self._check_ids(ns, rid, dim)
        name = params["PolicyName"]
        ptype = params.get("PolicyType") or "StepScaling"
        tt = params.get("TargetTrackingScalingPolicyConfiguration")
        step = params.get("StepScalingPolicyConfiguration")
        if ptype == "TargetTrackingScaling":
            if tt is None:
                raise _validation("TargetTrackingScalingPolicyConfiguration is required for "
                                  "a policy of type TargetTrackingScaling")
            if step is not None:
                raise _validation("StepScalingPolicyConfiguration is not allowed for a policy "
                                  "of type TargetTrackingScaling")
            self._check_target_tracking(tt, req.region)
        else:
            if step is None:
                raise _validation("StepScalingPolicyConfiguration is required for a policy of "
                                  "type StepScaling")
            if tt is not None:
                raise _validation("TargetTrackingScalingPolicyConfiguration is not allowed "
                                  "for a policy of type StepScaling")
        with self.lock:
            tkey = (req.region, ns, rid, dim)
            if tkey not in self.targets:
                raise _not_registered(ns, rid, dim)
            key = tkey + (name,)
            old = self.policies.get(key)
            if old is not None and old["PolicyType"] != ptype:
                raise _validation("A policy of a different type already exists with this "
                                  "name.")
            pid = old["_id"] if old else self._uuid()
            arn = base.arn("autoscaling", req.region, f"scalingPolicy:{pid}:resource/ecs/"
                           f"{rid}:policyName/{name}")
            pol = {"PolicyARN": arn, "PolicyName": name, "ServiceNamespace": ns,
                   "ResourceId": rid, "ScalableDimension": dim, "PolicyType": ptype,
                   "CreationTime": old["CreationTime"] if old else self.clock.utcnow(),
                   "Alarms": [], "_id": pid, "_region": req.region}
            if tt is not None:
                pol["TargetTrackingScalingPolicyConfiguration"] = tt
                if old:
                    self._drop_alarms(old)
                pol["Alarms"] = self._create_alarms(pol, cluster, service)
            else:
                pol["StepScalingPolicyConfiguration"] = step
                if old and old["PolicyType"] == "StepScaling":
                    pol["Alarms"] = old["Alarms"]
            self.policies[key] = pol
            return {"PolicyARN": arn, "Alarms": pol["Alarms"]}

    def _check_target_tracking(self, tt, region):
        pre = tt.get("PredefinedMetricSpecification")
        cust = tt.get("CustomizedMetricSpecification")
        if (pre is None) == (cust is None):
            raise _validation("Exactly one of PredefinedMetricSpecification or "
                              "CustomizedMetricSpecification must be specified")
        if tt["TargetValue"] <= 0 or tt["TargetValue"] > 1e7:
            raise _validation("TargetValue must be a positive number.")
        if pre is not None:
            mtype = pre["PredefinedMetricType"]
            if mtype not in ("ECSServiceAverageCPUUtilization",
                             "ECSServiceAverageMemoryUtilization", "ALBRequestCountPerTarget"):
                raise _validation(f"The predefined metric type {mtype} is not supported for "
                                  "ECS services")
            if mtype == "ALBRequestCountPerTarget":
                label = pre.get("ResourceLabel")
                if not label:
                    raise _validation("ResourceLabel is required for predefined metric type "
                                      "ALBRequestCountPerTarget")
                if not LABEL_RE.match(label):
                    raise _validation(f"Invalid ResourceLabel: {label}. The format is "
                                      "app/<load-balancer-name>/<load-balancer-id>/"
                                      "targetgroup/<target-group-name>/<target-group-id>")
            elif pre.get("ResourceLabel"):
                raise _validation(f"ResourceLabel is not allowed for predefined metric type "
                                  f"{mtype}")
        for k in ("ScaleOutCooldown", "ScaleInCooldown"):
            if tt.get(k) is not None and not 0 <= tt[k] <= 86400:
                raise _validation(f"{k} must be between 0 and 86400")

    def _metric_of(self, pol, cluster, service):
        """(namespace, metric name, dimensions, statistic) the policy tracks."""
        tt = pol["TargetTrackingScalingPolicyConfiguration"]
        pre = tt.get("PredefinedMetricSpecification")
        if pre is None:
            c = tt["CustomizedMetricSpecification"]
            return c["Namespace"], c["MetricName"], c.get("Dimensions") or [], c["Statistic"]
        dims = [{"Name": "ClusterName", "Value": cluster},
                {"Name": "ServiceName", "Value": service}]
        mtype = pre["PredefinedMetricType"]
        if mtype == "ECSServiceAverageCPUUtilization":
            return "AWS/ECS", "CPUUtilization", dims, "Average"
        if mtype == "ECSServiceAverageMemoryUtilization":
            return "AWS/ECS", "MemoryUtilization", dims, "Average"
        tg = LABEL_RE.match(pre["ResourceLabel"]).group(2)
        return "AWS/ApplicationELB", "RequestCountPerTarget", [
            {"Name": "TargetGroup", "Value": tg}], "Sum"

    def _create_alarms(self, pol, cluster, service):
        """The two alarms AWS creates for a target-tracking policy."""
        cw = self.emulator.services.get("cloudwatch")
        if cw is None:
            return []
        tt = pol["TargetTrackingScalingPolicyConfiguration"]
        ns, metric, dims, stat = self._metric_of(pol, cluster, service)
        target = tt["TargetValue"]
        out = []
        specs = [("AlarmHigh", 3, "GreaterThanThreshold", target)]
        if not tt.get("DisableScaleIn"):
            specs.append(("AlarmLow", 15, "LessThanThreshold", target * 0.9))
        for kind, periods, cmp, thr in specs:
            name = f"TargetTracking-{pol['ResourceId']}-{kind}-{self._uuid()}"
            desc = ("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
                    f"{pol['PolicyARN']}.")
            arn = cw.put_alarm_internal(pol["_region"], {
                "AlarmName": name, "AlarmDescription": desc, "ActionsEnabled": True,
                "AlarmActions": [pol["PolicyARN"]], "MetricName": metric, "Namespace": ns,
                "Statistic": stat, "Dimensions": dims, "Period": 60,
                "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
                "Threshold": thr, "ComparisonOperator": cmp})
            out.append({"AlarmName": name, "AlarmARN": arn})
        return out

    def _drop_alarms(self, pol):
        cw = self.emulator.services.get("cloudwatch")
        if cw is not None and pol["Alarms"]:
            cw.delete_alarms_internal(pol["_region"], [a["AlarmName"] for a in pol["Alarms"]])

    def _drop_policy(self, key):
        pol = self.policies.pop(key)
        if pol["PolicyType"] == "TargetTrackingScaling":
            self._drop_alarms(pol)

    def DeleteScalingPolicy(self, req, params):
        ns, rid, dim = params["ServiceNamespace"], params["ResourceId"], \
            params["ScalableDimension"]
        self._check_ids(ns, rid, dim)
        with self.lock:
            key = (req.region, ns, rid, dim, params["PolicyName"])
            if key not in self.policies:
                raise AwsError("ObjectNotFoundException", "No scaling policy found for service "
                               f"namespace: {ns}, resource ID: {rid}, scalable dimension: "
                               f"{dim}, policy name: {params['PolicyName']}")
            self._drop_policy(key)
        return {}

    def DescribeScalingPolicies(self, req, params):
        ns = params["ServiceNamespace"]
        names = params.get("PolicyNames") or []
        with self.lock:
            items = [p for (r, n, rid, dim, name), p in sorted(self.policies.items())
                     if r == req.region and n == ns
                     and (not names or name in names)
                     and (not params.get("ResourceId") or rid == params["ResourceId"])
                     and (not params.get("ScalableDimension") or
                          dim == params["ScalableDimension"])]
            return self._page(items, params, "ScalingPolicies", 50)

    def DescribeScalingActivities(self, req, params):
        ns = params["ServiceNamespace"]
        with self.lock:
            items = [a for a in self.activities
                     if a["_region"] == req.region and a["ServiceNamespace"] == ns
                     and (not params.get("ResourceId") or
                          a["ResourceId"] == params["ResourceId"])
                     and (not params.get("ScalableDimension") or
                          a["ScalableDimension"] == params["ScalableDimension"])]
            return self._page(items, params, "ScalingActivities", 50)

    # ---- scaling ----------------------------------------------------------------------
    def _scale(self, t, old, new, cause, description):
        ecs = self._ecs()
        ok = ecs is not None and ecs.set_desired_count_internal(
            t["_region"], t["_cluster"], t["_service"], new)
        now = self.clock.utcnow()
        self.activities.insert(0, {
            "ActivityId": self._uuid(), "ServiceNamespace": t["ServiceNamespace"],
            "ResourceId": t["ResourceId"], "ScalableDimension": t["ScalableDimension"],
            "Description": description, "Cause": f"{cause}",
            "StartTime": now, "EndTime": now,
            "StatusCode": "Successful" if ok else "Failed",
            "StatusMessage": (f"Successfully set desired count to {new}. Change "
                              "successfully fulfilled by ecs." if ok else
                              f"Failed to set desired count to {new}: the ECS service is "
                              "not active."),
            "_region": t["_region"]})
        del self.activities[MAX_ACTIVITIES:]
        return ok

    def _current_metric(self, pol, t, svc):
        """The tracked metric now, or None when there is no data."""
        ns, metric, dims, stat = self._metric_of(pol, t["_cluster"], t["_service"])
        tt = pol["TargetTrackingScalingPolicyConfiguration"]
        pre = (tt.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        ecs = self._ecs()
        if pre in ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization"):
            key = "cpu" if pre == "ECSServiceAverageCPUUtilization" else "memory"
            images = ecs.running_images_internal(t["_region"], t["_cluster"], t["_service"])
            if not images:
                return None
            return sum(float(self.emulator.profile(i).get(key, 0.0)) for i in images) / \
                len(images)
        cw = self.emulator.services.get("cloudwatch")
        if cw is None:
            return None
        window = EVALUATION_SECONDS
        value = cw.metric_value_internal(t["_region"], ns, metric,
                                         {d["Name"]: d["Value"] for d in dims}, stat, window)
        if value is None and pre == "ALBRequestCountPerTarget":
            return 0.0   # no requests: zero per target
        return value

    def _evaluate(self, t, now):
        ecs = self._ecs()
        svc = ecs.get_service_internal(t["_region"], t["_cluster"], t["_service"]) \
            if ecs else None
        if svc is None or svc["status"] != "ACTIVE":
            return
        current = svc["desiredCount"]
        pols = [p for k, p in sorted(self.policies.items()) if k[:4] == (
            t["_region"], t["ServiceNamespace"], t["ResourceId"], t["ScalableDimension"])
            and p["PolicyType"] == "TargetTrackingScaling"]
        outs, ins = [], []
        all_in = bool(pols)
        for p in pols:
            tt = p["TargetTrackingScalingPolicyConfiguration"]
            value = self._current_metric(p, t, svc)
            if value is None:
                all_in = False
                continue
            target = tt["TargetValue"]
            # the alarms' consecutive breaching minutes (AlarmHigh 3, AlarmLow 15)
            p["_above"] = p.get("_above", 0) + 1 if value > target else 0
            p["_below"] = p.get("_below", 0) + 1 if value < 0.9 * target else 0
            wanted = max(1, math.ceil(max(current, 1) * value / target - 1e-9))
            if p["_above"] >= HIGH_PERIODS and wanted > current:
                outs.append((wanted, p, value))
                all_in = False
            elif p["_below"] >= LOW_PERIODS and wanted < current and \
                    not tt.get("DisableScaleIn"):
                ins.append((wanted, p, value))
            else:
                all_in = False
        lo, hi = t["MinCapacity"], t["MaxCapacity"]
        susp = t["SuspendedState"]
        if outs and not susp.get("DynamicScalingOutSuspended"):
            wanted, p, value = max(outs, key=lambda x: x[0])
            cool = p["TargetTrackingScalingPolicyConfiguration"].get(
                "ScaleOutCooldown", DEFAULT_COOLDOWN)
            new = min(hi, wanted)
            if new > current and (t["_last_out"] is None or
                                  now - t["_last_out"] >= self.clock.delay(cool)):
                alarm = next((a["AlarmName"] for a in p["Alarms"] if "AlarmHigh" in
                              a["AlarmName"]), p["PolicyName"])
                self._scale(t, current, new, f"monitor alarm {alarm} in state ALARM "
                            f"triggered policy {p['PolicyName']}",
                            f"Setting desired count to {new}.")
                t["_last_out"] = now
        elif all_in and ins and not susp.get("DynamicScalingInSuspended"):
            wanted, p, value = max(ins, key=lambda x: x[0])
            cool = max(pp["TargetTrackingScalingPolicyConfiguration"].get(
                "ScaleInCooldown", DEFAULT_COOLDOWN) for _, pp, _ in ins)
            new = max(lo, wanted)
            recent = max(x for x in (t["_last_in"], t["_last_out"]) if x is not None) \
                if (t["_last_in"] or t["_last_out"]) else None
            if new < current and (recent is None or now - recent >= self.clock.delay(cool)):
                alarm = next((a["AlarmName"] for a in p["Alarms"] if "AlarmLow" in
                              a["AlarmName"]), p["PolicyName"])
                self._scale(t, current, new, f"monitor alarm {alarm} in state ALARM "
                            f"triggered policy {p['PolicyName']}",
                            f"Setting desired count to {new}.")
                t["_last_in"] = now

    def tick(self):
        with self.lock:
            now = self.clock.now()
            period = self.clock.delay(EVALUATION_SECONDS)
            for t in list(self.targets.values()):
                if now - t["_last_eval"] >= period:
                    t["_last_eval"] = now
                    self._evaluate(t, now)
