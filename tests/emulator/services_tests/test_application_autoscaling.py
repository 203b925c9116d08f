"""Application Auto Scaling: scalable targets, target-tracking policies with
their CloudWatch alarms, and real target tracking changing an ECS service's
desiredCount (visible through DescribeServices)."""

import pytest

from awsemu.base import AwsError
from awsemu.services.application_autoscaling import ApplicationAutoscaling
from awsemu.services.cloudwatch import Cloudwatch
from awsemu.services.sns import Sns

from test_ecs import advance, call, create_service, describe, make_world, register_td

AAS = "application-autoscaling"
RID = "service/apps/web-a"
DIM = "ecs:service:DesiredCount"


def world(image="repo/web:1", desired=2, **profile):
    w = make_world(extra=(Cloudwatch, Sns, ApplicationAutoscaling))
    em = w["em"]
    em.profiles[image] = dict({"start_seconds": 2.0}, **profile)
    td = register_td(em, image=image)
    create_service(w, td["taskDefinitionArn"], desired=desired)
    advance(em, 5)
    return w


def register(em, lo, hi):
    call(em, AAS, "RegisterScalableTarget", ServiceNamespace="ecs", ResourceId=RID,
         ScalableDimension=DIM, MinCapacity=lo, MaxCapacity=hi)


def cpu_policy(em, target=50.0, name="cpu", **extra):
    return call(em, AAS, "PutScalingPolicy", PolicyName=name, ServiceNamespace="ecs",
                ResourceId=RID, ScalableDimension=DIM, PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=dict({
                    "TargetValue": target, "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                    "ScaleOutCooldown": 60, "ScaleInCooldown": 120}, **extra))


def test_targets_and_policies():
    w = world()
    em = w["em"]
    with pytest.raises(AwsError) as e:
        call(em, AAS, "RegisterScalableTarget", ServiceNamespace="ecs",
             ResourceId="service/apps/nope", ScalableDimension=DIM, MinCapacity=1,
             MaxCapacity=2)
    assert e.value.code == "ValidationException"
    with pytest.raises(AwsError) as e:
        cpu_policy(em)
    assert e.value.code == "ObjectNotFoundException"
    register(em, 1, 4)
    register(em, 1, 6)   # upsert
    t = call(em, AAS, "DescribeScalableTargets", ServiceNamespace="ecs")["ScalableTargets"]
    assert [(x["ResourceId"], x["MinCapacity"], x["MaxCapacity"]) for x in t] == [(RID, 1, 6)]
    with pytest.raises(AwsError) as e:
        register(em, 5, 3)
    assert e.value.code == "ValidationException"
    out = cpu_policy(em)
    assert out["PolicyARN"].startswith("arn:aws:autoscaling:us-east-1:")
    assert ":resource/ecs/service/apps/web-a:policyName/cpu" in out["PolicyARN"]
    names = sorted(a["AlarmName"] for a in out["Alarms"])
    assert len(names) == 2 and names[0].startswith("TargetTracking-service/apps/web-a-AlarmHigh-")
    alarms = call(em, "cloudwatch", "DescribeAlarms", AlarmNames=names)["MetricAlarms"]
    high = [a for a in alarms if "AlarmHigh" in a["AlarmName"]][0]
    assert (high["MetricName"], high["Threshold"], high["EvaluationPeriods"]) == \
        ("CPUUtilization", 50.0, 3)
    assert high["AlarmActions"] == [out["PolicyARN"]]
    assert cpu_policy(em, 60.0)["PolicyARN"] == out["PolicyARN"]   # update keeps the ARN
    with pytest.raises(AwsError) as e:
        call(em, AAS, "PutScalingPolicy", PolicyName="req", ServiceNamespace="ecs",
             ResourceId=RID, ScalableDimension=DIM, PolicyType="TargetTrackingScaling",
             TargetTrackingScalingPolicyConfiguration={"TargetValue": 100.0,
                                                       "PredefinedMetricSpecification": {
                                                           "PredefinedMetricType":
                                                           "ALBRequestCountPerTarget"}})
    assert e.value.code == "ValidationException" and "ResourceLabel" in e.value.message
    pols = call(em, AAS, "DescribeScalingPolicies", ServiceNamespace="ecs",
                ResourceId=RID)["ScalingPolicies"]
    assert [p["PolicyName"] for p in pols] == ["cpu"]
    call(em, AAS, "DeregisterScalableTarget", ServiceNamespace="ecs", ResourceId=RID,
         ScalableDimension=DIM)
    assert call(em, AAS, "DescribeScalingPolicies", ServiceNamespace="ecs")[
        "ScalingPolicies"] == []
    assert call(em, "cloudwatch", "DescribeAlarms")["MetricAlarms"] == []
    with pytest.raises(AwsError) as e:
        call(em, AAS, "DeregisterScalableTarget", ServiceNamespace="ecs", ResourceId=RID,
             ScalableDimension=DIM)
    assert e.value.code == "ObjectNotFoundException"


def test_register_applies_new_minimum():
    w = world(desired=1)
    em = w["em"]
    register(em, 3, 5)
    assert describe(em, "web-a")["desiredCount"] == 3
    acts = call(em, AAS, "DescribeScalingActivities", ServiceNamespace="ecs",
                ResourceId=RID)["ScalingActivities"]
    assert acts[0]["Description"] == "Setting desired count to 3."
    assert acts[0]["StatusCode"] == "Successful"


def test_cpu_tracking_scales_out_to_max_and_back_in():
    w = world(cpu=90.0)
    em = w["em"]
    register(em, 1, 5)
    cpu_policy(em, 45.0)
    advance(em, 2 * 61)
    assert describe(em, "web-a")["desiredCount"] == 2   # AlarmHigh needs 3 minutes
    advance(em, 61)
    assert describe(em, "web-a")["desiredCount"] == 4   # ceil(2 * 90 / 45)
    advance(em, 61)
    s = describe(em, "web-a")
    assert s["desiredCount"] == 5                           # capped at max
    acts = call(em, AAS, "DescribeScalingActivities", ServiceNamespace="ecs")[
        "ScalingActivities"]
    assert [a["Description"] for a in acts] == ["Setting desired count to 5.",
                                                "Setting desired count to 4."]
    assert "AlarmHigh" in acts[0]["Cause"]
    advance(em, 10)
    assert describe(em, "web-a")["runningCount"] == 5   # ECS started the tasks
    # the image's CPU drops: scale in, after the scale-in cooldown, to the minimum
    em.profiles["repo/web:1"]["cpu"] = 5.0
    advance(em, 10 * 61)
    assert describe(em, "web-a")["desiredCount"] == 5   # AlarmLow needs 15 minutes
    advance(em, 6 * 61)
    assert describe(em, "web-a")["desiredCount"] == 1


def test_request_count_per_target_tracking():
    w = world(cpu=10.0, desired=1)
    em = w["em"]
    em.traffic["default_rps"] = 10.0     # 600 requests a minute
    elb = em.services["elbv2"]
    label = elb.lb_dimension(w["lb"]) + "/" + elb.tg_dimension(w["tg_a"])
    register(em, 1, 10)
    call(em, AAS, "PutScalingPolicy", PolicyName="req", ServiceNamespace="ecs",
         ResourceId=RID, ScalableDimension=DIM, PolicyType="TargetTrackingScaling",
         TargetTrackingScalingPolicyConfiguration={
             "TargetValue": 200.0, "ScaleOutCooldown": 120, "ScaleInCooldown": 300,
             "PredefinedMetricSpecification": {
                 "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label}})
    for _ in range(6):
        advance(em, 61)
    # 600 requests a minute at 200 per target need 3 tasks
    assert describe(em, "web-a")["desiredCount"] == 3
