"""Traffic model: a steady request stream per active load balancer, split by
its listener's forward weights, answered by the ECS tasks behind each target
group according to their image profile. Writes one datapoint per second per
metric into the CloudWatch store, as ALB and ECS would publish them.

Not a Service: the CloudWatch service owns one TrafficModel and advances it
from its tick(). Generation is per completed second and uses the state
(weights, healthy targets, profiles) at generation time; a second, once
written, never changes, so the same query gives the same answer. The tick
runs before every request, so a listener change is reflected from the second
in which it happened.

Determinism: request, error and latency counts come from carried fractional
accumulators and a low-discrepancy sequence, not from a random generator, so
over any window the error rate is the profile's error_rate (to within one
request) and the latency percentiles are the profile's percentiles.
"""

import math

PHI = (math.sqrt(5.0) - 1.0) / 2.0   # golden ratio conjugate: equidistributed sequence
MAX_BACKFILL = 900                   # seconds generated at most in one tick (clock jumps)


class QuantileFunction:
    """Latency (seconds) as a function of u in [0, 1), piecewise linear through
    the profile's p50/p90/p99 (ms) with a short tail above p99."""

    def __init__(self, latency_ms):
        p50 = float(latency_ms.get("p50", 40.0))
        p99 = float(latency_ms.get("p99", max(p50 * 3.0, p50)))
        p90 = latency_ms.get("p90")
        if p90 is None:  # log-interpolate between p50 and p99
            p90 = math.exp(math.log(max(p50, 1e-6)) +
                           (math.log(max(p99, 1e-6)) - math.log(max(p50, 1e-6))) * 0.65)
        p90 = float(p90)
        p999 = float(latency_ms.get("p99.9", p99 + (p99 - p90)))
        self.points = [(0.0, p50 * 0.4), (0.5, p50), (0.9, p90), (0.99, p99),
                       (0.999, p999), (1.0, p999 * 1.2)]

    def __call__(self, u):
        pts = self.points
        for i in range(1, len(pts)):
            u1, v1 = pts[i]
            if u <= u1:
                u0, v0 = pts[i - 1]
                return (v0 + (v1 - v0) * (u - u0) / (u1 - u0)) / 1000.0
        return pts[-1][1] / 1000.0


class LatencySamples:
    """The response times of ``n`` requests, regenerated on demand from the
    sequence position ``start`` (keeps per-second storage small)."""

    __slots__ = ("qf", "start", "n")

    def __init__(self, qf, start, n):
        self.qf, self.start, self.n = qf, start, n

    def pairs(self):
        qf, start = self.qf, self.start
        return [(qf((0.5 + (start + k) * PHI) % 1.0), 1.0) for k in range(self.n)]


class MultiSamples:
    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts

    def pairs(self):
        out = []
        for p in self.parts:
            out.extend(p.pairs())
        return out


def _region_of(arn):
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _state_code(lb):
    st = lb.get("State")
    if isinstance(st, dict):
        return st.get("Code")
    return st


class TrafficModel:
    def __init__(self, cloudwatch):
        self.cw = cloudwatch
        self.emulator = cloudwatch.emulator
        self.next_second = None
        self.acc = {}       # accumulator key -> carried fraction
        self.seq = {}       # (tg, image) -> next position in the latency sequence
        self.qfs = {}       # latency anchors -> QuantileFunction

    def _carry(self, key, amount):
        """Whole units of a carried fractional stream."""
        a = self.acc.get(key, 0.0) + amount
        n = int(math.floor(a + 1e-9))
        self.acc[key] = a - n
        return n

    def _qf(self, latency_ms):
        key = tuple(sorted((k, float(v)) for k, v in latency_ms.items()))
        qf = self.qfs.get(key)
        if qf is None:
            qf = self.qfs[key] = QuantileFunction(latency_ms)
        return qf

    def advance(self, now):
        """Generate every completed second up to ``now``. Called with the lock held."""
        last_complete = int(math.floor(now)) - 1
        if self.next_second is None:
            self.next_second = last_complete + 1
            return
        if last_complete - self.next_second + 1 > MAX_BACKFILL:
            self.next_second = last_complete + 1 - MAX_BACKFILL
        services = self.emulator.services
        elbv2 = services.get("elbv2")
        ecs = services.get("ecs")
        if self.next_second > last_complete:
            return
        # The state is read once: every second generated in this call uses it.
        lbs = self._lb_snapshot(elbv2, ecs) if elbv2 is not None else []
        svcs = ecs.metrics_view_internal() if ecs is not None else []
        profiles = {}
        while self.next_second <= last_complete:
            s = self.next_second
            self._lb_second(s, lbs, profiles)
            self._ecs_second(s, svcs, profiles)
            self.next_second += 1

    def _profile(self, profiles, image):
        p = profiles.get(image)
        if p is None:
            p = profiles[image] = self.emulator.profile(image or "")
        return p

    def _lb_snapshot(self, elbv2, ecs):
        traffic = self.emulator.traffic
        images = ecs.target_images_internal() if ecs is not None else {}
        out = []
        for lb in elbv2.load_balancers():
            if _state_code(lb) != "active":
                continue
            lb_arn = lb["LoadBalancerArn"]
            rps = float(traffic.get("per_lb", {}).get(lb_arn, traffic.get("default_rps", 0.0)))
            weights = {tg: w for tg, w in (elbv2.listener_weights(lb_arn) or {}).items()
                       if w and w > 0}
            tgs = []
            for tg_arn in sorted(weights):
                healthy = list(elbv2.healthy_targets(tg_arn) or [])
                by_image = {}
                for ip in healthy:
                    img = images.get(ip)
                    by_image[img] = by_image.get(img, 0) + 1
                tgs.append((tg_arn, elbv2.tg_dimension(tg_arn), weights[tg_arn], len(healthy),
                            sorted(by_image.items(), key=lambda x: x[0] or "")))
            out.append((lb_arn, _region_of(lb_arn), elbv2.lb_dimension(lb_arn), max(rps, 0.0),
                        float(sum(weights.values())), tgs))
        return out

    # ---- load balancers -----------------------------------------------------
    def _lb_second(self, s, lbs, profiles):
        put = self.cw.put_point_internal
        for lb_arn, region, lb_dim, rps, total_w, tgs in lbs:
            n_lb = self._carry(("lb", lb_arn), rps)
            lb_requests = lb_errors = lb_ok = elb_5xx = 0
            lb_samples = []
            for tg_arn, tg_dim, weight, n_healthy, by_image in tgs:
                n_tg = self._carry(("tg", lb_arn, tg_arn), n_lb * weight / total_w)
                dims_tg = {"LoadBalancer": lb_dim, "TargetGroup": tg_dim}
                put(region, "AWS/ApplicationELB", "HealthyHostCount", dims_tg, s,
                    float(n_healthy), "Count")
                if n_tg == 0:
                    continue
                if not n_healthy:
                    elb_5xx += n_tg
                    continue
                req = err = 0
                parts = []
                for img, count in by_image:
                    n = self._carry(("img", tg_arn, img), n_tg * count / n_healthy)
                    if n == 0:
                        continue
                    prof = self._profile(profiles, img)
                    e = self._carry(("err", tg_arn, img),
                                    n * min(max(float(prof.get("error_rate", 0.0)), 0.0), 1.0))
                    start = self.seq.get((tg_arn, img), 0)
                    self.seq[(tg_arn, img)] = start + n
                    parts.append(LatencySamples(self._qf(prof.get("latency_ms") or {}), start, n))
                    req += n
                    err += e
                if req == 0:
                    continue
                samples = MultiSamples(parts)
                put(region, "AWS/ApplicationELB", "RequestCount", dims_tg, s, float(req), "Count")
                put(region, "AWS/ApplicationELB", "RequestCountPerTarget", dims_tg, s,
                    req / float(n_healthy), "Count")
                put(region, "AWS/ApplicationELB", "RequestCountPerTarget",
                    {"TargetGroup": tg_dim}, s, req / float(n_healthy), "Count")
                put(region, "AWS/ApplicationELB", "TargetResponseTime", dims_tg, s, None,
                    "Seconds", samples=samples)
                if err:
                    put(region, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims_tg, s,
                        float(err), "Count")
                if req - err:
                    put(region, "AWS/ApplicationELB", "HTTPCode_Target_2XX_Count", dims_tg, s,
                        float(req - err), "Count")
                lb_requests += req
                lb_errors += err
                lb_ok += req - err
                lb_samples.extend(parts)
            dims_lb = {"LoadBalancer": lb_dim}
            if lb_requests:
                put(region, "AWS/ApplicationELB", "RequestCount", dims_lb, s,
                    float(lb_requests), "Count")
                put(region, "AWS/ApplicationELB", "TargetResponseTime", dims_lb, s, None,
                    "Seconds", samples=MultiSamples(lb_samples))
            if lb_errors:
                put(region, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims_lb, s,
                    float(lb_errors), "Count")
            if lb_ok:
                put(region, "AWS/ApplicationELB", "HTTPCode_Target_2XX_Count", dims_lb, s,
                    float(lb_ok), "Count")
            if elb_5xx:
                put(region, "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", dims_lb, s,
                    float(elb_5xx), "Count")
                put(region, "AWS/ApplicationELB", "HTTPCode_ELB_503_Count", dims_lb, s,
                    float(elb_5xx), "Count")

    # ---- ECS ----------------------------------------------------------------
    def _ecs_second(self, s, svcs, profiles):
        put = self.cw.put_point_internal
        for svc in svcs:
            running = svc["running_images"]
            dims = {"ClusterName": svc["cluster"], "ServiceName": svc["service"]}
            if running:
                for metric, key in (("CPUUtilization", "cpu"), ("MemoryUtilization", "memory")):
                    vals = [float(self._profile(profiles, img).get(key, 0.0)) for img in running]
                    put(svc["region"], "AWS/ECS", metric, dims, s, None, "Percent",
                        stats=(float(len(vals)), sum(vals), min(vals), max(vals)))
            if svc.get("insights"):
                for metric, value in (("RunningTaskCount", len(running)),
                                      ("PendingTaskCount", svc["pending"]),
                                      ("DesiredTaskCount", svc["desired"])):
                    put(svc["region"], "ECS/ContainerInsights", metric, dims, s, float(value),
                        "Count")

