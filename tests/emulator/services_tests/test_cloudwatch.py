"""CloudWatch module and the traffic model: custom metrics, statistics and
percentiles, pagination, metric math, alarms notifying SNS, dashboards, and
ALB/ECS metrics generated from image profiles and listener weights."""

import datetime
import json

import pytest

from awsemu import base
from awsemu.base import AwsError
from awsemu.services.cloudwatch import Cloudwatch
from awsemu.services.sns import Sns

from test_ecs import advance, call, create_service, make_world, register_td, set_weights

UTC = datetime.timezone.utc


def cw_world():
    em = base.Emulator()
    em.register(Cloudwatch)
    em.register(Sns)
    return em


def dt(ts):
    return datetime.datetime.fromtimestamp(ts, UTC)


def query(qid, ns, metric, dims, stat, period=60, **extra):
    return dict({"Id": qid, "MetricStat": {"Metric": {
        "Namespace": ns, "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": period, "Stat": stat}}, **extra)


def get(em, queries, start, end, **extra):
    out = call(em, "cloudwatch", "GetMetricData", MetricDataQueries=queries,
               StartTime=dt(start), EndTime=dt(end), **extra)
    return {r["Id"]: r for r in out["MetricDataResults"]}, out


def test_put_and_get_statistics():
    em = cw_world()
    now = em.clock.now()
    t0 = (int(now) // 60) * 60 - 600
    values = [float(v) for v in range(1, 101)]
    call(em, "cloudwatch", "PutMetricData", Namespace="Aviary", MetricData=[
        {"MetricName": "Lat", "Dimensions": [{"Name": "App", "Value": "web"}],
         "Timestamp": dt(t0 + i), "Value": v, "StorageResolution": 1}
        for i, v in enumerate(values)])
    dims = {"App": "web"}
    qs = [query("s", "Aviary", "Lat", dims, "Sum", 300),
          query("a", "Aviary", "Lat", dims, "Average", 300),
          query("n", "Aviary", "Lat", dims, "SampleCount", 300),
          query("lo", "Aviary", "Lat", dims, "Minimum", 300),
          query("hi", "Aviary", "Lat", dims, "Maximum", 300),
          query("p90", "Aviary", "Lat", dims, "p90", 300),
          query("p99", "Aviary", "Lat", dims, "p99.9", 300, Label="tail"),
          query("other", "Aviary", "Lat", {"App": "x"}, "Sum", 300)]
    res, _ = get(em, qs, t0, t0 + 300)
    assert res["s"]["Values"] == [5050.0]
    assert res["a"]["Values"] == [50.5]
    assert res["n"]["Values"] == [100.0]
    assert (res["lo"]["Values"], res["hi"]["Values"]) == ([1.0], [100.0])
    assert res["p90"]["Values"] == [90.0]
    assert res["p99"]["Values"] == [100.0] and res["p99"]["Label"] == "tail"
    assert res["s"]["Label"] == "Lat" and res["s"]["StatusCode"] == "Complete"
    assert res["s"]["Timestamps"] == [dt(t0)]
    assert res["other"]["Values"] == []
    # 1-second buckets, newest first by default, ascending on request
    res, _ = get(em, [query("m", "Aviary", "Lat", dims, "Sum", 1)], t0, t0 + 5)
    assert res["m"]["Values"] == [5.0, 4.0, 3.0, 2.0, 1.0]
    res, _ = get(em, [query("m", "Aviary", "Lat", dims, "Sum", 1)], t0, t0 + 5,
                 ScanBy="TimestampAscending")
    assert res["m"]["Values"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # pagination with MaxDatapoints
    res, out = get(em, [query("m", "Aviary", "Lat", dims, "Sum", 1)], t0, t0 + 100,
                   MaxDatapoints=60)
    assert len(res["m"]["Values"]) == 60 and res["m"]["StatusCode"] == "PartialData"
    res2, out2 = get(em, [query("m", "Aviary", "Lat", dims, "Sum", 1)], t0, t0 + 100,
                     MaxDatapoints=60, NextToken=out["NextToken"])
    assert len(res2["m"]["Values"]) == 40 and "NextToken" not in out2
    assert sorted(res["m"]["Values"] + res2["m"]["Values"]) == values
    # metric math
    res, _ = get(em, [dict(query("s", "Aviary", "Lat", dims, "Sum", 300), ReturnData=False),
                      dict(query("n", "Aviary", "Lat", dims, "SampleCount", 300),
                           ReturnData=False),
                      {"Id": "avg", "Expression": "s / n * 2"}], t0, t0 + 300)
    assert list(res) == ["avg"] and res["avg"]["Values"] == [101.0]
    with pytest.raises(AwsError) as e:
        get(em, [{"Id": "x", "Expression": "SEARCH('{AWS/EC2}', 'Average', 300)"}],
            t0, t0 + 300)
    assert e.value.code == "ValidationError"


def test_get_metric_data_validation():
    em = cw_world()
    now = em.clock.now()
    q = query("m", "Aviary", "X", {}, "Sum")
    with pytest.raises(AwsError) as e:
        get(em, [q, dict(q)], now - 60, now)
    assert e.value.code == "ValidationError"
    with pytest.raises(AwsError) as e:
        get(em, [dict(q, Id=f"m{i}") for i in range(501)], now - 60, now)
    assert "500" in e.value.message
    with pytest.raises(AwsError) as e:
        get(em, [q], now, now - 60)
    assert e.value.code == "ValidationError"
    with pytest.raises(AwsError) as e:
        get(em, [query("m", "Aviary", "X", {}, "p1000")], now - 60, now)
    assert e.value.code == "ValidationError"
    with pytest.raises(AwsError) as e:
        call(em, "cloudwatch", "PutMetricData", Namespace="AWS/ECS",
             MetricData=[{"MetricName": "x", "Value": 1.0}])
    assert e.value.code == "InvalidParameterValue"


def test_alarm_publishes_to_sns():
    em = cw_world()
    topic = call(em, "sns", "CreateTopic", Name="alerts")["TopicArn"]
    call(em, "cloudwatch", "PutMetricAlarm", AlarmName="errors", MetricName="Errors",
         Namespace="Aviary", Statistic="Sum", Period=10, EvaluationPeriods=2,
         DatapointsToAlarm=2, Threshold=5.0, ComparisonOperator="GreaterThanThreshold",
         AlarmActions=[topic], OKActions=[topic], TreatMissingData="notBreaching",
         Tags=[{"Key": "app", "Value": "web"}])
    a = call(em, "cloudwatch", "DescribeAlarms", AlarmNames=["errors"])["MetricAlarms"][0]
    assert a["StateValue"] == "INSUFFICIENT_DATA"
    assert a["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:{base.ACCOUNT_ID}:alarm:errors"
    assert call(em, "cloudwatch", "ListTagsForResource", ResourceARN=a["AlarmArn"])[
        "Tags"] == [{"Key": "app", "Value": "web"}]
    advance(em, 2)
    a = call(em, "cloudwatch", "DescribeAlarms", AlarmNames=["errors"])["MetricAlarms"][0]
    assert a["StateValue"] == "OK"   # missing data treated as not breaching
    for _ in range(30):
        call(em, "cloudwatch", "PutMetricData", Namespace="Aviary", MetricData=[
            {"MetricName": "Errors", "Value": 3.0, "StorageResolution": 1}])
        advance(em, 1)
    a = call(em, "cloudwatch", "DescribeAlarms", AlarmNames=["errors"])["MetricAlarms"][0]
    assert a["StateValue"] == "ALARM"
    assert "Threshold Crossed" in a["StateReason"]
    pubs = [p for p in em.sns_publishes if p["topic_arn"] == topic]
    assert [json.loads(p["message"])["NewStateValue"] for p in pubs] == ["OK", "ALARM"]
    assert pubs[-1]["subject"] == 'ALARM: "errors" in US East (N. Virginia)'
    body = json.loads(pubs[-1]["message"])
    assert body["OldStateValue"] == "OK" and body["Trigger"]["MetricName"] == "Errors"
    assert call(em, "cloudwatch", "DescribeAlarms", StateValue="OK")["MetricAlarms"] == []
    with pytest.raises(AwsError) as e:
        call(em, "cloudwatch", "DeleteAlarms", AlarmNames=["errors", "nope"])
    assert e.value.code == "ResourceNotFound"
    call(em, "cloudwatch", "DeleteAlarms", AlarmNames=["errors"])
    assert call(em, "cloudwatch", "DescribeAlarms")["MetricAlarms"] == []
    with pytest.raises(AwsError) as e:
        call(em, "cloudwatch", "PutMetricAlarm", AlarmName="bad", MetricName="E",
             Namespace="A", Statistic="Sum", Period=45, EvaluationPeriods=1, Threshold=1.0,
             ComparisonOperator="GreaterThanThreshold")
    assert e.value.code == "ValidationError"


def test_dashboards():
    em = cw_world()
    body = json.dumps({"widgets": [{"type": "metric", "x": 0, "y": 0, "width": 12,
                                    "height": 6, "properties": {"metrics": [
                                        ["AWS/ECS", "CPUUtilization", "ClusterName", "c"]],
                                        "region": "us-east-1"}}]})
    assert call(em, "cloudwatch", "PutDashboard", DashboardName="web",
                DashboardBody=body)["DashboardValidationMessages"] == []
    got = call(em, "cloudwatch", "GetDashboard", DashboardName="web")
    assert got["DashboardBody"] == body
    assert got["DashboardArn"] == f"arn:aws:cloudwatch::{base.ACCOUNT_ID}:dashboard/web"
    for bad in ("not json", json.dumps({"widgets": {}}), json.dumps({}),
                json.dumps({"widgets": [{"type": "metric", "properties": {}}]}),
                json.dumps({"widgets": [{"type": "chart", "properties": {}}]})):
        with pytest.raises(AwsError) as e:
            call(em, "cloudwatch", "PutDashboard", DashboardName="bad", DashboardBody=bad)
        assert e.value.code == "InvalidParameterInput"
        assert e.value.extra["dashboardValidationMessages"]
    entries = call(em, "cloudwatch", "ListDashboards")["DashboardEntries"]
    assert [d["DashboardName"] for d in entries] == ["web"]
    assert entries[0]["Size"] == len(body)
    with pytest.raises(AwsError) as e:
        call(em, "cloudwatch", "DeleteDashboards", DashboardNames=["web", "nope"])
    assert e.value.code == "ResourceNotFound"
    call(em, "cloudwatch", "DeleteDashboards", DashboardNames=["web"])
    with pytest.raises(AwsError) as e:
        call(em, "cloudwatch", "GetDashboard", DashboardName="web")
    assert e.value.code == "ResourceNotFound"


# ---- traffic model ------------------------------------------------------------------

GOOD = {"error_rate": 0.01, "latency_ms": {"p50": 50.0, "p90": 100.0, "p99": 200.0},
        "cpu": 35.0, "memory": 45.0, "start_seconds": 2.0}
BAD = {"error_rate": 0.2, "latency_ms": {"p50": 300.0, "p90": 600.0, "p99": 900.0},
       "cpu": 85.0, "memory": 60.0, "start_seconds": 2.0}


def traffic_world():
    w = make_world(extra=(Cloudwatch, Sns))
    em = w["em"]
    em.profiles["repo/web:good"] = GOOD
    em.profiles["repo/web:bad"] = BAD
    em.traffic["default_rps"] = 20.0
    good = register_td(em, image="repo/web:good")
    bad = register_td(em, image="repo/web:bad")
    create_service(w, good["taskDefinitionArn"], name="web-a", desired=2)
    create_service(w, bad["taskDefinitionArn"], name="web-b", desired=1, tg=w["tg_b"])
    advance(em, 15)   # running and healthy
    return w


def lb_dims(w, tg=None):
    elb = w["em"].services["elbv2"]
    d = {"LoadBalancer": elb.lb_dimension(w["lb"])}
    if tg:
        d["TargetGroup"] = elb.tg_dimension(w[tg])
    return d


def test_traffic_split_error_rate_and_percentiles():
    w = traffic_world()
    em = w["em"]
    set_weights(w, 80, 20)
    advance(em, 61 - em.clock.now() % 60)
    t0 = int(em.clock.now() // 60 * 60)    # a whole minute, as CloudWatch rounds
    advance(em, 301)
    ns = "AWS/ApplicationELB"
    qs = []
    for slot in ("a", "b"):
        d = lb_dims(w, "tg_" + slot)
        qs += [query("req" + slot, ns, "RequestCount", d, "Sum", 300),
               query("err" + slot, ns, "HTTPCode_Target_5XX_Count", d, "Sum", 300),
               query("p50" + slot, ns, "TargetResponseTime", d, "p50", 300),
               query("p90" + slot, ns, "TargetResponseTime", d, "p90", 300),
               query("p99" + slot, ns, "TargetResponseTime", d, "p99", 300)]
    qs.append(query("lbreq", ns, "RequestCount", lb_dims(w), "Sum", 300))
    qs.append(query("cpu", "AWS/ECS", "CPUUtilization",
                    {"ClusterName": "apps", "ServiceName": "web-b"}, "Average", 300))
    res, _ = get(em, qs, t0, t0 + 300, ScanBy="TimestampAscending")

    def one(qid):
        vals = res[qid]["Values"]
        assert len(vals) == 1, (qid, res[qid])
        return vals[0]

    assert one("reqa") == pytest.approx(0.8 * 20 * 300, abs=2)
    assert one("reqb") == pytest.approx(0.2 * 20 * 300, abs=2)
    assert one("lbreq") == pytest.approx(20 * 300, abs=2)
    assert one("erra") / one("reqa") == pytest.approx(0.01, abs=0.002)
    assert one("errb") / one("reqb") == pytest.approx(0.2, abs=0.01)
    for slot, prof in (("a", GOOD), ("b", BAD)):
        for p in ("p50", "p90", "p99"):
            assert one(p + slot) == pytest.approx(prof["latency_ms"][p] / 1000.0, rel=0.1)
    assert one("cpu") == pytest.approx(85.0)
    again, _ = get(em, qs, t0, t0 + 300, ScanBy="TimestampAscending")
    assert again == res   # the same query gives the same answer


def test_weight_change_visible_from_its_second():
    w = traffic_world()
    em = w["em"]
    set_weights(w, 100, 0)
    advance(em, 10)
    change = em.clock.now()
    set_weights(w, 50, 50)
    advance(em, 10)
    d = lb_dims(w, "tg_b")
    res, _ = get(em, [query("b", "AWS/ApplicationELB", "RequestCount", d, "Sum", 1)],
                 change - 10, change + 9, ScanBy="TimestampAscending")
    stamps = [t.timestamp() for t in res["b"]["Timestamps"]]
    assert stamps and min(stamps) >= int(change)
    assert sum(res["b"]["Values"]) == pytest.approx(10 * 9, abs=12)


def test_no_healthy_targets_become_elb_5xx():
    w = traffic_world()
    em = w["em"]
    call(em, "ecs", "UpdateService", cluster="apps", service="web-b", desiredCount=0)
    advance(em, 12)
    topic = call(em, "sns", "CreateTopic", Name="alerts")["TopicArn"]
    call(em, "cloudwatch", "PutMetricAlarm", AlarmName="elb-5xx",
         MetricName="HTTPCode_ELB_5XX_Count", Namespace="AWS/ApplicationELB",
         Dimensions=[{"Name": "LoadBalancer", "Value": lb_dims(w)["LoadBalancer"]}],
         Statistic="Sum", Period=10, EvaluationPeriods=1, Threshold=50.0,
         ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    set_weights(w, 0, 100)
    t0 = int(em.clock.now()) + 1
    advance(em, 65)
    ns = "AWS/ApplicationELB"
    res, _ = get(em, [query("elb", ns, "HTTPCode_ELB_5XX_Count", lb_dims(w), "Sum", 30),
                      query("reqb", ns, "RequestCount", lb_dims(w, "tg_b"), "Sum", 30),
                      query("elbtg", ns, "HTTPCode_ELB_5XX_Count", lb_dims(w, "tg_b"), "Sum",
                            30)], t0 - t0 % 30 + 30, t0 - t0 % 30 + 60)
    assert res["elb"]["Values"] == [pytest.approx(600, abs=2)]
    assert res["reqb"]["Values"] == [] and res["elbtg"]["Values"] == []
    a = call(em, "cloudwatch", "DescribeAlarms", AlarmNames=["elb-5xx"])["MetricAlarms"][0]
    assert a["StateValue"] == "ALARM"
    assert any(p["topic_arn"] == topic and "elb-5xx" in p["subject"] for p in em.sns_publishes)
