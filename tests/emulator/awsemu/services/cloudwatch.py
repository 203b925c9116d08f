"""CloudWatch: metric store (PutMetricData and the traffic model's ALB/ECS
datapoints), GetMetricData with statistics, percentiles and simple metric
math, metric alarms evaluated in tick() that notify SNS topics, dashboards,
alarm tags. Query protocol.

Retention: every series keeps RETENTION seconds (3 hours) of datapoints and
at most MAX_POINTS points; older data is dropped (AWS keeps 1-second data for
3 hours too). Standard-resolution custom data (StorageResolution 60) is
stored at the minute.
"""

import ast
import base64
import bisect
import datetime
import json
import math
import re

from .. import base
from ..base import AwsError
from .traffic import TrafficModel

RETENTION = 3 * 3600
MAX_POINTS = 50000
MAX_QUERIES = 500
DEFAULT_MAX_DATAPOINTS = 100800
SIMPLE_STATS = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"}
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
COMPARISON_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)", "eu-north-1": "EU (Stockholm)",
    "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "ap-south-1": "Asia Pacific (Mumbai)",
}
WIDGET_TYPES = {"metric", "text", "log", "alarm", "explorer", "custom"}
DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]{0,254}$")
STAT_P = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")
STAT_TM = re.compile(r"^tm(\d{1,2}(\.\d+)?|100)$")
STAT_TM_RANGE = re.compile(r"^TM\((\d+(?:\.\d+)?)%:(\d+(?:\.\d+)?)%\)$")


def _validation(msg):
    return AwsError("ValidationError", msg, 400)


def _invalid_value(msg):
    return AwsError("InvalidParameterValue", msg, 400)


def _ts(dt):
    if isinstance(dt, (int, float)):
        return float(dt)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _dt(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


class WeightedSamples:
    """PutMetricData Values/Counts arrays."""
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def pairs(self):
        return self.items


class Series:
    __slots__ = ("times", "points")

    def __init__(self):
        self.times = []    # sorted timestamps
        self.points = []   # (ts, unit, count, sum, min, max, samples|None)

    def add(self, point):
        ts = point[0]
        if not self.times or ts >= self.times[-1]:
            self.times.append(ts)
            self.points.append(point)
        else:
            i = bisect.bisect_right(self.times, ts)
            self.times.insert(i, ts)
            self.points.insert(i, point)

    def prune(self, oldest):
        i = bisect.bisect_left(self.times, oldest)
        i = max(i, len(self.times) - MAX_POINTS)
        if i > 0:
            del self.times[:i]
            del self.points[:i]

    def window(self, start, end):
        lo = bisect.bisect_left(self.times, start)
        hi = bisect.bisect_left(self.times, end)
        return self.points[lo:hi]


def parse_stat(stat):
    """Returns a function of a bucket -> value (or None), or raises."""
    if stat in SIMPLE_STATS:
        return stat
    m = STAT_P.match(stat)
    if m:
        return ("p", float(m.group(1)))
    m = STAT_TM.match(stat)
    if m:
        return ("tm", 0.0, float(m.group(1)))
    m = STAT_TM_RANGE.match(stat)
    if m:
        return ("tm", float(m.group(1)), float(m.group(2)))
    if stat == "IQM":
        return ("tm", 25.0, 75.0)
    return None


class Bucket:
    __slots__ = ("count", "total", "mn", "mx", "pairs", "has_pairs")

    def __init__(self):
        self.count = 0.0
        self.total = 0.0
        self.mn = math.inf
        self.mx = -math.inf
        self.pairs = []
        self.has_pairs = False

    def add(self, point, want_pairs):
        _, _, count, total, mn, mx, samples = point
        self.count += count
        self.total += total
        self.mn = min(self.mn, mn)
        self.mx = max(self.mx, mx)
        if want_pairs:
            if samples is not None:
                self.pairs.extend(samples.pairs())
                self.has_pairs = True
            elif count == 1:
                self.pairs.append((total, 1.0))
                self.has_pairs = True

    def value(self, stat):
        if self.count <= 0:
            return None
        if stat == "SampleCount":
            return self.count
        if stat == "Sum":
            return self.total
        if stat == "Average":
            return self.total / self.count
        if stat == "Minimum":
            return self.mn
        if stat == "Maximum":
            return self.mx
        if not self.has_pairs:
            return None
        pairs = sorted(self.pairs)
        weight = sum(w for _, w in pairs)
        if stat[0] == "p":
            rank = stat[1] / 100.0 * weight
            cum = 0.0
            for v, w in pairs:
                cum += w
                if cum >= rank - 1e-9:
                    return v
            return pairs[-1][0]
        lo, hi = stat[1] / 100.0 * weight, stat[2] / 100.0 * weight
        cum = s = n = 0.0
        for v, w in pairs:
            a, b = cum, cum + w
            take = max(0.0, min(b, hi) - max(a, lo))
            s += v * take
            n += take
            cum = b
        return s / n if n > 0 else None


class Cloudwatch(base.Service):
    SERVICE = "cloudwatch"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.series = {}       # (region, ns, metric, dims tuple) -> Series
        self.alarms = {}       # (region, name) -> alarm dict
        self.dashboards = {}   # name -> {"body", "modified"}
        self.traffic = TrafficModel(self)
        self.last_prune = 0.0
        self.last_eval = 0.0

    # ---- store ------------------------------------------------------------
    def put_point_internal(self, region, namespace, metric, dims, ts, value, unit,
                           samples=None, stats=None):
        """Store one datapoint: a single ``value``, a statistic set ``stats``
        (count, sum, min, max) or ``samples`` (object with pairs() -> [(v, w)])."""
        key = (region, namespace, metric, tuple(sorted(dims.items())))
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = Series()
        if samples is not None:
            pairs = samples.pairs()
            if not pairs:
                return
            count = sum(w for _, w in pairs)
            point = (ts, unit, count, sum(v * w for v, w in pairs),
                     min(v for v, _ in pairs), max(v for v, _ in pairs), samples)
        elif stats is not None:
            point = (ts, unit) + tuple(float(x) for x in stats) + (None,)
        else:
            point = (ts, unit, 1.0, value, value, value, None)
        s.add(point)

    def tick(self):
        with self.lock:
            now = self.clock.now()
            self.traffic.advance(now)
            if now - self.last_prune >= 60:
                self.last_prune = now
                for key in list(self.series):
                    s = self.series[key]
                    s.prune(now - RETENTION)
                    if not s.times:
                        del self.series[key]
            if now - self.last_eval >= 1.0:
                self.last_eval = now
                for alarm in list(self.alarms.values()):
                    self._evaluate(alarm, now)

    def stat_values(self, region, namespace, metric, dims, period, stat, start, end,
                    unit=None):
        """[(bucket start, value)] ascending for the buckets of ``period`` seconds
        that have data in [start, end). ``stat`` is parsed (see parse_stat).
        Sub-minute periods round StartTime down to the period, longer ones to the
        minute, as CloudWatch does for data younger than 15 days."""
        key = (region, namespace, metric, tuple(sorted(dims.items())))
        s = self.series.get(key)
        if s is None:
            return []
        # Buckets start at StartTime rounded down (to the period below a minute,
        # else to the minute) and follow each other every ``period`` seconds.
        first = math.floor(start / min(period, 60)) * min(period, 60)
        want_pairs = stat not in SIMPLE_STATS
        buckets = {}
        for point in s.window(first, end):
            if unit is not None and point[1] != unit:
                continue
            b = first + math.floor((point[0] - first) / period) * period
            bucket = buckets.get(b)
            if bucket is None:
                bucket = buckets[b] = Bucket()
            bucket.add(point, want_pairs)
        out = []
        for b in sorted(buckets):
            v = buckets[b].value(stat)
            if v is not None:
                out.append((float(b), float(v)))
        return out

    def metric_value_internal(self, region, namespace, metric, dims, stat, seconds):
        """One statistic over the datapoints of the last ``seconds`` (for target
        tracking), or None when there are none."""
        with self.lock:
            now = self.clock.now()
            s = self.series.get((region, namespace, metric, tuple(sorted(dims.items()))))
            if s is None:
                return None
            parsed = parse_stat(stat)
            bucket = Bucket()
            for point in s.window(now - seconds, now):
                bucket.add(point, parsed not in SIMPLE_STATS)
            return bucket.value(parsed)

    # ---- PutMetricData ------------------------------------------------------
    def PutMetricData(self, req, params):
        ns = params["Namespace"]
        if ns.startswith("AWS/"):
            raise _invalid_value(f"The value {ns} for parameter Namespace is invalid.")
        now = self.clock.now()
        pending = []
        for i, d in enumerate(params["MetricData"], 1):
            where = f"MetricData.member.{i}"
            has_value = d.get("Value") is not None
            has_stats = d.get("StatisticValues") is not None
            has_values = bool(d.get("Values"))
            if has_value + has_stats + has_values > 1:
                raise AwsError("InvalidParameterCombination",
                               f"The parameters {where}.Value, {where}.StatisticValues and "
                               f"{where}.Values are mutually exclusive.")
            if not (has_value or has_stats or has_values):
                raise AwsError("MissingParameter", f"The parameter {where}.Value is required.")
            dims = {}
            for dd in d.get("Dimensions") or []:
                if dd["Name"] in dims:
                    raise _invalid_value(f"The dimension name {dd['Name']} is duplicated.")
                dims[dd["Name"]] = dd["Value"]
            ts = _ts(d["Timestamp"]) if d.get("Timestamp") else now
            if ts < now - 14 * 86400 or ts > now + 2 * 3600:
                raise _invalid_value(f"The parameter {where}.Timestamp must specify a time "
                                     "no more than two weeks in the past and two hours in "
                                     "the future.")
            res = d.get("StorageResolution", 60)
            if res not in (1, 60):
                raise _invalid_value(f"The value {res} for parameter "
                                     f"{where}.StorageResolution is invalid.")
            ts = math.floor(ts) if res == 1 else math.floor(ts / 60) * 60
            unit = d.get("Unit", "None")
            if has_value:
                v = float(d["Value"])
                if not math.isfinite(v):
                    raise _invalid_value(f"The value {v} for parameter {where}.Value is "
                                         "invalid.")
                pending.append((d["MetricName"], dims, ts, v, unit, None, None))
            elif has_stats:
                sv = d["StatisticValues"]
                st = (sv["SampleCount"], sv["Sum"], sv["Minimum"], sv["Maximum"])
                if st[0] <= 0 or st[2] > st[3]:
                    raise _invalid_value(f"The parameter {where}.StatisticValues is invalid.")
                pending.append((d["MetricName"], dims, ts, None, unit, None, st))
            else:
                vals = [float(x) for x in d["Values"]]
                counts = [float(x) for x in d.get("Counts") or [1.0] * len(vals)]
                if len(counts) != len(vals):
                    raise _invalid_value(f"The parameters {where}.Values and {where}.Counts "
                                         "must be of the same size.")
                if any(not math.isfinite(v) for v in vals) or any(c <= 0 for c in counts):
                    raise _invalid_value(f"The parameter {where}.Values is invalid.")
                pending.append((d["MetricName"], dims, ts, None, unit,
                                WeightedSamples(list(zip(vals, counts))), None))
        with self.lock:
            for name, dims, ts, v, unit, samples, st in pending:
                self.put_point_internal(req.region, ns, name, dims, ts, v, unit,
                                        samples=samples, stats=st)
        return {}

    # ---- GetMetricData ------------------------------------------------------
    def GetMetricData(self, req, params):
        queries = params["MetricDataQueries"]
        if not queries:
            raise _validation("The parameter MetricDataQueries is required.")
        if len(queries) > MAX_QUERIES:
            raise _validation("The collection MetricDataQueries must not have a size "
                              f"greater than {MAX_QUERIES}.")
        start, end = _ts(params["StartTime"]), _ts(params["EndTime"])
        if start >= end:
            raise _validation("The parameter StartTime must be less than the parameter "
                              "EndTime.")
        by_id = {}
        for i, q in enumerate(queries, 1):
            qid = q["Id"]
            if not QUERY_ID.match(qid):
                raise _validation(f"Invalid metric data query id: {qid}. The id must start "
                                  "with a lowercase letter and contain only letters, "
                                  "numbers and underscores.")
            if qid in by_id:
                raise _validation("The values for parameter id in MetricDataQueries are not "
                                  "unique.")
            by_id[qid] = q
            if (q.get("MetricStat") is None) == (q.get("Expression") is None):
                raise _validation(f"Exactly one element of MetricDataQueries.member.{i}."
                                  "MetricStat or .Expression must be specified.")
            ms = q.get("MetricStat")
            if ms is not None:
                self._check_period(ms["Period"], f"MetricDataQueries.member.{i}.MetricStat."
                                                 "Period")
                if parse_stat(ms["Stat"]) is None:
                    raise _validation(f"The value {ms['Stat']} for parameter "
                                      f"MetricDataQueries.member.{i}.MetricStat.Stat is "
                                      "not a valid statistic.")
        if not any(q.get("ReturnData", True) for q in queries):
            raise _validation("At least one query must have ReturnData set to true.")
        scan_desc = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        max_points = params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS
        offset = 0
        if params.get("NextToken"):
            try:
                tok = json.loads(base64.b64decode(params["NextToken"]).decode())
                offset = int(tok["o"])
                if tok.get("s") != start or tok.get("e") != end:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise AwsError("InvalidNextToken", "The service couldn't process the "
                               "provided NextToken.") from None
        with self.lock:
            cache = {}
            results = []
            for q in queries:
                if not q.get("ReturnData", True):
                    continue
                series = self._query(req.region, q, by_id, start, end, cache, set())
                items = sorted(series.items(), reverse=scan_desc)
                label = q.get("Label") or (q["MetricStat"]["Metric"]["MetricName"]
                                           if q.get("MetricStat") else q["Id"])
                results.append((q["Id"], label, items))
        out, pos, truncated = [], 0, False
        budget = max_points
        for qid, label, items in results:
            lo = max(0, offset - pos)
            chunk = items[lo:lo + max(budget, 0)] if lo < len(items) else []
            pos += len(items)
            budget -= len(chunk)
            partial = lo + len(chunk) < len(items)
            truncated = truncated or partial
            out.append({"Id": qid, "Label": label,
                        "Timestamps": [_dt(t) for t, _ in chunk],
                        "Values": [v for _, v in chunk],
                        "StatusCode": "PartialData" if partial else "Complete"})
        resp = {"MetricDataResults": out, "Messages": []}
        if truncated:
            resp["NextToken"] = base64.b64encode(json.dumps(
                {"o": offset + max_points, "s": start, "e": end}).encode()).decode()
        return resp

    @staticmethod
    def _check_period(period, where):
        if period <= 0 or (period not in (1, 5, 10, 30) and period % 60 != 0):
            raise _validation(f"The parameter {where} must be 1, 5, 10, 30 or a multiple "
                              "of 60.")

    def _query(self, region, q, by_id, start, end, cache, stack):
        """{timestamp: value} for one query (MetricStat or Expression)."""
        qid = q["Id"]
        if qid in cache:
            return cache[qid]
        if qid in stack:
            raise _validation(f"Circular dependency in metric math expression at {qid}.")
        stack = stack | {qid}
        ms = q.get("MetricStat")
        if ms is not None:
            m = ms["Metric"]
            dims = {d["Name"]: d["Value"] for d in m.get("Dimensions") or []}
            res = dict(self.stat_values(region, m["Namespace"], m["MetricName"], dims,
                                        ms["Period"], parse_stat(ms["Stat"]), start, end,
                                        ms.get("Unit")))
        else:
            res = self._expression(region, q["Expression"], by_id, start, end, cache, stack)
        cache[qid] = res
        return res

    def _expression(self, region, text, by_id, start, end, cache, stack):
        """Metric math: + - * / on query ids and numbers, parentheses and
        FILL(series, number). Other functions (SEARCH, METRICS, RATE, ...) are
        not modelled and answer a ValidationError saying so."""
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError:
            raise _validation(f"Invalid metric math expression: {text}") from None

        def ev(node):
            if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
                return float(node.value)
            if isinstance(node, ast.Name):
                if node.id not in by_id:
                    raise _validation(f"Unknown metric data query id in expression: "
                                      f"{node.id}")
                return self._query(region, by_id[node.id], by_id, start, end, cache, stack)
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                v = ev(node.operand)
                return -v if isinstance(v, float) else {t: -x for t, x in v.items()}
            if isinstance(node, ast.BinOp) and type(node.op) in OPS:
                return _binop(OPS[type(node.op)], ev(node.left), ev(node.right))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id == "FILL" and len(node.args) == 2:
                series, fill = ev(node.args[0]), ev(node.args[1])
                if isinstance(series, float) or not isinstance(fill, float):
                    raise _validation("FILL takes a time series and a number.")
                times = set(series)
                for q in by_id.values():
                    if q.get("MetricStat") is not None:
                        times |= set(self._query(region, q, by_id, start, end, cache, stack))
                return {t: series.get(t, fill) for t in times}
            raise _validation("Unsupported metric math in this emulator (only + - * /, "
                              f"parentheses, numbers, query ids and FILL): {text}")

        res = ev(tree)
        if isinstance(res, float):
            raise _validation(f"The expression {text} must return a time series.")
        return res

    # ---- alarms --------------------------------------------------------------
    def _alarm_arn(self, region, name):
        return base.arn("cloudwatch", region, f"alarm:{name}")

    def PutMetricAlarm(self, req, params):
        self._check_alarm(params)
        self.put_alarm_internal(req.region, params)
        return {}

    def _check_alarm(self, p):
        single = p.get("MetricName") is not None or p.get("Namespace") is not None
        if single and p.get("Metrics"):
            raise AwsError("InvalidParameterCombination", "MetricName and Metrics are "
                           "mutually exclusive.")
        if single:
            for k in ("MetricName", "Namespace", "Period"):
                if p.get(k) is None:
                    raise _validation(f"{k} must not be null")
            if (p.get("Statistic") is None) == (p.get("ExtendedStatistic") is None):
                raise AwsError("InvalidParameterCombination", "Exactly one of Statistic "
                               "or ExtendedStatistic must be specified.")
            if p.get("ExtendedStatistic") is not None and \
                    parse_stat(p["ExtendedStatistic"]) in (None,) + tuple(SIMPLE_STATS):
                raise _invalid_value(f"The value {p['ExtendedStatistic']} for parameter "
                                     "ExtendedStatistic is not supported.")
            if p["Period"] not in (10, 30) and (p["Period"] <= 0 or p["Period"] % 60):
                raise _validation("Period must be 10, 30 or a multiple of 60")
            period = p["Period"]
        elif p.get("Metrics"):
            ret = [m for m in p["Metrics"] if m.get("ReturnData", True)]
            if len(ret) != 1:
                raise _validation("Exactly one element of the metrics list should return "
                                  "data.")
            for m in p["Metrics"]:
                if (m.get("MetricStat") is None) == (m.get("Expression") is None):
                    raise _validation("Exactly one of MetricStat and Expression must be "
                                      "specified for each metric.")
            ms = ret[0].get("MetricStat")
            period = ms["Period"] if ms else (ret[0].get("Period") or max(
                (m["MetricStat"]["Period"] for m in p["Metrics"] if m.get("MetricStat")),
                default=60))
        else:
            raise _validation("Either MetricName or Metrics must be specified.")
        if p["EvaluationPeriods"] < 1:
            raise _validation("EvaluationPeriods must be at least 1")
        if period * p["EvaluationPeriods"] > 86400:
            raise _validation("Metrics cannot be checked across more than a day "
                              "(EvaluationPeriods * Period must be <= 86400).")
        dta = p.get("DatapointsToAlarm")
        if dta is not None and not 1 <= dta <= p["EvaluationPeriods"]:
            raise _validation("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
        if p["ComparisonOperator"] not in COMPARISONS:
            raise _validation(f"ComparisonOperator {p['ComparisonOperator']} requires an "
                              "anomaly detection band, which this emulator does not model.")
        if p.get("Threshold") is None:
            raise _validation("Threshold must not be null")
        if p.get("TreatMissingData", "missing") not in ("breaching", "notBreaching",
                                                         "ignore", "missing"):
            raise _validation("TreatMissingData must be breaching, notBreaching, ignore "
                              "or missing")
        for k in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for a in p.get(k) or []:
                if not re.match(r"^arn:aws[a-z-]*:(sns|autoscaling|automate|ssm|"
                                r"swf|lambda|ssm-incidents):", a):
                    raise _validation(f"Invalid arn syntax: {a}")

    def put_alarm_internal(self, region, p):
        """Create or replace a metric alarm from PutMetricAlarm-shaped ``p``
        (also used by Application Auto Scaling). Returns the alarm ARN."""
        now = self.clock.utcnow()
        name = p["AlarmName"]
        with self.lock:
            old = self.alarms.get((region, name))
            a = {k: v for k, v in p.items() if k != "Tags"}
            a.setdefault("ActionsEnabled", True)
            for k in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                a[k] = list(a.get(k) or [])
            a["AlarmArn"] = self._alarm_arn(region, name)
            a["AlarmConfigurationUpdatedTimestamp"] = now
            a["_region"] = region
            if old is None:
                a.update(StateValue="INSUFFICIENT_DATA",
                         StateReason="Unchecked: Initial alarm creation",
                         StateUpdatedTimestamp=now, StateTransitionedTimestamp=now,
                         _tags={t["Key"]: t["Value"] for t in p.get("Tags") or []})
            else:
                for k in ("StateValue", "StateReason", "StateReasonData",
                          "StateUpdatedTimestamp", "StateTransitionedTimestamp", "_tags"):
                    if k in old:
                        a[k] = old[k]
            self.alarms[(region, name)] = a
            return a["AlarmArn"]

    def delete_alarms_internal(self, region, names):
        with self.lock:
            for n in names:
                self.alarms.pop((region, n), None)

    def DescribeAlarms(self, req, params):
        if params.get("AlarmNames") and params.get("AlarmNamePrefix"):
            raise AwsError("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix "
                           "are mutually exclusive.")
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        limit = params.get("MaxRecords") or 50
        if not 1 <= limit <= 100:
            raise _invalid_value("MaxRecords must be between 1 and 100.")
        start = 0
        if params.get("NextToken"):
            try:
                start = int(params["NextToken"])
            except ValueError:
                raise AwsError("InvalidNextToken", "Invalid NextToken") from None
        with self.lock:
            alarms = sorted((a for (r, _), a in self.alarms.items() if r == req.region),
                            key=lambda a: a["AlarmName"])
            if "MetricAlarm" not in types:
                alarms = []
            if params.get("AlarmNames"):
                names = set(params["AlarmNames"])
                alarms = [a for a in alarms if a["AlarmName"] in names]
            if params.get("AlarmNamePrefix"):
                alarms = [a for a in alarms if a["AlarmName"].startswith(
                    params["AlarmNamePrefix"])]
            if params.get("StateValue"):
                alarms = [a for a in alarms if a["StateValue"] == params["StateValue"]]
            if params.get("ActionPrefix"):
                pre = params["ActionPrefix"]
                alarms = [a for a in alarms if any(
                    x.startswith(pre) for k in ("AlarmActions", "OKActions",
                                                "InsufficientDataActions") for x in a[k])]
            page = [{k: v for k, v in a.items() if not k.startswith("_")}
                    for a in alarms[start:start + limit]]
        out = {"MetricAlarms": page}
        if "CompositeAlarm" in types:
            out["CompositeAlarms"] = []
        if start + limit < len(alarms):
            out["NextToken"] = str(start + limit)
        return out

    def DeleteAlarms(self, req, params):
        with self.lock:
            missing = [n for n in params["AlarmNames"] if (req.region, n) not in self.alarms]
            if missing:
                raise AwsError("ResourceNotFound", f"{missing} does not exist", 404)
            for n in params["AlarmNames"]:
                del self.alarms[(req.region, n)]
        return {}

    def _alarm_datapoints(self, a, now):
        """[(bucket start, value|None)] for the last EvaluationPeriods complete periods."""
        region = a["_region"]
        if a.get("Metrics"):
            ret = [m for m in a["Metrics"] if m.get("ReturnData", True)][0]
            ms = ret.get("MetricStat")
            period = ms["Period"] if ms else (ret.get("Period") or 60)
        else:
            period = a["Period"]
        n = a["EvaluationPeriods"]
        end = math.floor(now / period) * period
        start = end - n * period
        if a.get("Metrics"):
            by_id = {m["Id"]: m for m in a["Metrics"]}
            try:
                values = self._query(region, ret, by_id, start, end, {}, set())
            except AwsError:
                values = {}
        else:
            stat = a.get("Statistic") or a.get("ExtendedStatistic")
            dims = {d["Name"]: d["Value"] for d in a.get("Dimensions") or []}
            values = dict(self.stat_values(region, a["Namespace"], a["MetricName"], dims,
                                           period, parse_stat(stat), start, end,
                                           a.get("Unit")))
        return period, [(start + i * period, values.get(float(start + i * period)))
                         for i in range(n)]

    def _evaluate(self, a, now):
        period, points = self._alarm_datapoints(a, now)
        m = a.get("DatapointsToAlarm") or a["EvaluationPeriods"]
        treat = a.get("TreatMissingData", "missing")
        cmp = COMPARISONS[a["ComparisonOperator"]]
        thr = a["Threshold"]
        present = [(t, v) for t, v in points if v is not None]
        breaching = sum(1 for _, v in present if cmp(v, thr))
        missing = len(points) - len(present)
        if treat == "breaching":
            breaching += missing
        if breaching >= m:
            new = "ALARM"
        elif not present and treat in ("missing", "ignore"):
            new = a["StateValue"] if treat == "ignore" else "INSUFFICIENT_DATA"
        else:
            new = "OK"
        if new == a["StateValue"]:
            return
        shown = ", ".join(
            f"{v} ({_dt(t).strftime('%d/%m/%y %H:%M:%S')})" for t, v in reversed(present))
        if new == "INSUFFICIENT_DATA":
            reason = (f"Insufficient Data: {len(points)} datapoints were unknown.")
        else:
            verb = "was" if breaching >= m else "was not"
            reason = (f"Threshold Crossed: {breaching} out of the last {len(points)} "
                      f"datapoints [{shown}] {verb} "
                      f"{COMPARISON_WORDS[a['ComparisonOperator']]} the threshold ({thr}) "
                      f"(minimum {m} datapoint{'s' if m != 1 else ''} for "
                      f"{a['StateValue']} -> {new} transition).")
        old = a["StateValue"]
        when = _dt(now)
        a.update(StateValue=new, StateReason=reason, StateUpdatedTimestamp=when,
                 StateTransitionedTimestamp=when,
                 StateReasonData=json.dumps({
                     "version": "1.0", "queryDate": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                     + "+0000", "statistic": a.get("Statistic") or a.get("ExtendedStatistic"),
                     "period": period, "recentDatapoints": [v for _, v in present],
                     "threshold": thr, "evaluatedDatapoints": [
                         {"timestamp": _dt(t).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                          "value": v} for t, v in reversed(present)]}))
        if a.get("ActionsEnabled", True):
            actions = {"ALARM": a["AlarmActions"], "OK": a["OKActions"],
                       "INSUFFICIENT_DATA": a["InsufficientDataActions"]}[new]
            self._notify(a, old, when, actions)

    def _notify(self, a, old, when, actions):
        sns = self.emulator.services.get("sns")
        if sns is None:
            return
        region = a["_region"]
        rname = REGION_NAMES.get(region, region)
        trigger = {"MetricName": a.get("MetricName"), "Namespace": a.get("Namespace"),
                   "StatisticType": "Statistic" if a.get("Statistic") else
                   "ExtendedStatistic",
                   "Statistic": (a.get("Statistic") or "").upper() or None,
                   "ExtendedStatistic": a.get("ExtendedStatistic"),
                   "Unit": a.get("Unit"),
                   "Dimensions": [{"value": d["Value"], "name": d["Name"]}
                                  for d in a.get("Dimensions") or []],
                   "Period": a.get("Period"), "EvaluationPeriods": a["EvaluationPeriods"],
                   "DatapointsToAlarm": a.get("DatapointsToAlarm") or a["EvaluationPeriods"],
                   "ComparisonOperator": a["ComparisonOperator"], "Threshold": a["Threshold"],
                   "TreatMissingData": a.get("TreatMissingData", "missing"),
                   "EvaluateLowSampleCountPercentile": a.get(
                       "EvaluateLowSampleCountPercentile", "")}
        if a.get("Metrics"):
            trigger = {"Metrics": a["Metrics"], "Period": None,
                       "EvaluationPeriods": a["EvaluationPeriods"],
                       "ComparisonOperator": a["ComparisonOperator"],
                       "Threshold": a["Threshold"],
                       "TreatMissingData": a.get("TreatMissingData", "missing")}
        msg = json.dumps({
            "AlarmName": a["AlarmName"], "AlarmDescription": a.get("AlarmDescription"),
            "AWSAccountId": base.ACCOUNT_ID,
            "AlarmConfigurationUpdatedTimestamp":
                a["AlarmConfigurationUpdatedTimestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                + "+0000",
            "NewStateValue": a["StateValue"], "NewStateReason": a["StateReason"],
            "StateChangeTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
            "Region": rname, "AlarmArn": a["AlarmArn"], "OldStateValue": old,
            "OKActions": a["OKActions"], "AlarmActions": a["AlarmActions"],
            "InsufficientDataActions": a["InsufficientDataActions"], "Trigger": trigger},
            default=str)
        subject = f'{a["StateValue"]}: "{a["AlarmName"]}" in {rname}'
        for action in actions:
            if action.split(":")[2:3] == ["sns"]:
                sns.publish_internal(action, subject[:100], msg)

    # ---- dashboards -----------------------------------------------------------
    def PutDashboard(self, req, params):
        name, body = params["DashboardName"], params["DashboardBody"]
        problems = []
        if not DASHBOARD_NAME.match(name):
            problems.append({"DataPath": "DashboardName", "Message": "The value for field "
                             "DashboardName contains invalid characters. It can only "
                             "contain alphanumerics, dash (-) and underscore (_)."})
        problems += validate_dashboard_body(body)
        if problems:
            # AWS's message: "The dashboard body is invalid, there are N
            # validation errors: [ {"dataPath": ..., "message": ...} ]"
            listed = json.dumps([{"dataPath": p["DataPath"], "message": p["Message"]}
                                 for p in problems], indent=2)
            raise AwsError("InvalidParameterInput", "The dashboard body is invalid, there are "
                           f"{len(problems)} validation errors:\n{listed}", 400,
                           extra={"dashboardValidationMessages": problems})
        with self.lock:
            self.dashboards[name] = {"body": body, "modified": self.clock.utcnow()}
        return {"DashboardValidationMessages": []}

    def _dashboard_arn(self, name):
        return f"arn:aws:cloudwatch::{base.ACCOUNT_ID}:dashboard/{name}"

    def GetDashboard(self, req, params):
        name = params["DashboardName"]
        with self.lock:
            d = self.dashboards.get(name)
            if d is None:
                raise AwsError("ResourceNotFound", "Dashboard " + name + " does not exist",
                               404)
            return {"DashboardArn": self._dashboard_arn(name), "DashboardBody": d["body"],
                    "DashboardName": name}

    def ListDashboards(self, req, params):
        prefix = params.get("DashboardNamePrefix") or ""
        start = int(params["NextToken"]) if (params.get("NextToken") or "").isdigit() else 0
        with self.lock:
            names = sorted(n for n in self.dashboards if n.startswith(prefix))
            page = names[start:start + 1000]
            out = {"DashboardEntries": [{
                "DashboardName": n, "DashboardArn": self._dashboard_arn(n),
                "LastModified": self.dashboards[n]["modified"],
                "Size": len(self.dashboards[n]["body"].encode())} for n in page]}
        if start + 1000 < len(names):
            out["NextToken"] = str(start + 1000)
        return out

    def DeleteDashboards(self, req, params):
        with self.lock:
            missing = [n for n in params["DashboardNames"] if n not in self.dashboards]
            if missing:
                raise AwsError("ResourceNotFound", "Dashboard " + missing[0] +
                               " does not exist", 404)
            for n in params["DashboardNames"]:
                del self.dashboards[n]
        return {}

    # ---- tags ---------------------------------------------------------------------
    def _alarm_by_arn(self, arn):
        parts = arn.split(":")
        if len(parts) >= 7 and parts[2] == "cloudwatch" and parts[5] == "alarm":
            a = self.alarms.get((parts[3], ":".join(parts[6:])))
            if a is not None:
                return a
        raise AwsError("ResourceNotFoundException", f"{arn} not found", 404)

    def TagResource(self, req, params):
        with self.lock:
            a = self._alarm_by_arn(params["ResourceARN"])
            tags = dict(a.get("_tags") or {})
            for t in params["Tags"]:
                if t["Key"].startswith("aws:"):
                    raise _invalid_value("Tag keys beginning with 'aws:' are reserved.")
                tags[t["Key"]] = t["Value"]
            if len(tags) > 50:
                raise _invalid_value("Too many tags: a resource can have at most 50.")
            a["_tags"] = tags
        return {}

    def UntagResource(self, req, params):
        with self.lock:
            a = self._alarm_by_arn(params["ResourceARN"])
            for k in params["TagKeys"]:
                a.get("_tags", {}).pop(k, None)
        return {}

    def ListTagsForResource(self, req, params):
        with self.lock:
            a = self._alarm_by_arn(params["ResourceARN"])
            return {"Tags": [{"Key": k, "Value": v} for k, v in (a.get("_tags") or {}).items()]}


OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
       ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b if b != 0 else None}


def _binop(op, left, right):
    if isinstance(left, float) and isinstance(right, float):
        return op(left, right)
    if isinstance(left, float):
        out = {t: op(left, v) for t, v in right.items()}
    elif isinstance(right, float):
        out = {t: op(v, right) for t, v in left.items()}
    else:
        out = {t: op(left[t], right[t]) for t in left if t in right}
    return {t: v for t, v in out.items() if v is not None}


def validate_dashboard_body(body):
    """DashboardValidationMessages for a dashboard body (empty when valid)."""
    if len(body.encode()) > 1024 * 1024:
        return [{"DataPath": "", "Message": "Dashboard body exceeds the maximum size of "
                 "1 MB"}]
    try:
        doc = json.loads(body)
    except ValueError as e:
        return [{"DataPath": "", "Message": f"Invalid JSON: {e}"}]
    if not isinstance(doc, dict):
        return [{"DataPath": "", "Message": "Should be object"}]
    if "widgets" not in doc:
        return [{"DataPath": "", "Message": "Should have required property 'widgets'"}]
    widgets = doc["widgets"]
    if not isinstance(widgets, list):
        return [{"DataPath": "/widgets", "Message": "Should be array"}]
    out = []
    for i, w in enumerate(widgets):
        path = f"/widgets/{i}"
        if not isinstance(w, dict):
            out.append({"DataPath": path, "Message": "Should be object"})
            continue
        if w.get("type") not in WIDGET_TYPES:
            out.append({"DataPath": path + "/type", "Message": "Should be equal to one of "
                        "the allowed values " + str(sorted(WIDGET_TYPES))})
        for k in ("x", "y", "width", "height"):
            if k in w and (not isinstance(w[k], int) or w[k] < 0 or
                           (k == "width" and not 1 <= w[k] <= 24)):
                out.append({"DataPath": f"{path}/{k}", "Message": "Should be integer in the "
                            "allowed range"})
        props = w.get("properties")
        if not isinstance(props, dict):
            out.append({"DataPath": path, "Message": "Should have required property "
                        "'properties'"})
            continue
        if w.get("type") == "metric":
            metrics = props.get("metrics")
            if metrics is None and "annotations" not in props:
                out.append({"DataPath": path + "/properties", "Message": "Should have "
                            "required property 'metrics'"})
            elif metrics is not None:
                if not isinstance(metrics, list):
                    out.append({"DataPath": path + "/properties/metrics",
                                "Message": "Should be array"})
                else:
                    for j, m in enumerate(metrics):
                        if not isinstance(m, list) or not m or not all(
                                isinstance(x, (str, dict)) for x in m):
                            out.append({"DataPath": f"{path}/properties/metrics/{j}",
                                        "Message": "Should be array of strings with an "
                                        "optional trailing rendering-properties object"})
        elif w.get("type") == "text" and not isinstance(props.get("markdown"), str):
            out.append({"DataPath": path + "/properties", "Message": "Should have required "
                        "property 'markdown'"})
        elif w.get("type") == "alarm" and not isinstance(props.get("alarms"), list):
            out.append({"DataPath": path + "/properties", "Message": "Should have required "
                        "property 'alarms'"})
    return out
