#!/usr/bin/python3
"""Benchmarks of progressive delivery (issue 6) against the local AWS
emulator, printed, never asserted:

1. Rollback reaction time. A canary that answers 30% of its requests with
   a 5xx is rolled out with analysis intervals of 1 s, 5 s and 10 s
   (failureLimit 0). For each, from the emulator's weight history, the
   status' analysis history, aviary's log and a timing proxy between aviary
   and the emulator:
     - visible: the end of the failing window (the emulator writes a
       second's datapoints as soon as it has passed, so the whole window is
       readable then; the first bad datapoint was readable one interval
       earlier);
     - restored: the ModifyListener that gave all traffic back to stable;
     - aviary's own time in the deciding reconcile: from "reconcile
       started" (aviary's log) to the end of that ModifyListener, minus the
       time spent waiting for AWS calls (measured by the proxy). It
       includes the GetMetricData batcher's 20 ms gathering wait.
   Target: restored - (window start + 1 s) <= one interval + 100 ms of
   aviary's own time. aviary waits ROLLOUT_SLACK_MS (1 s) after a window
   ends before measuring it (CloudWatch data is not instantly readable on
   AWS), which is shown separately.
2. GetMetricData calls per analysis interval with 1, 10 and 100 concurrent
   canaries in one daemon (counted from the emulator's call log over whole
   intervals), with the rounds measured and when each call was made
   relative to the window end (the emulator's ALB quota is raised to 200
   for more than 50 canaries). Target: ceil(N x 4 queries / 500) calls per
   interval, give or take one. Then one of the N canaries (its own image)
   starts answering 30% 5xx: the time from the end of its failing window
   to its listener being restored, with the N - 1 others still measured.

Environment: AVIARY_BIN (default build/aviary), BENCH_CANARY_COUNTS
("1,10,100"), BENCH_DELAY_SCALE (0.02), BENCH_INTERVALS ("1,5,10": seconds,
part 1), BENCH_BATCH_INTERVAL (60: seconds, part 2; the production interval
for ALB/ECS metrics), BENCH_BATCH_ROUNDS (2), BENCH_RESYNC (part 2's --resync, 30s:
with 100 applications a resync sweep of full reconciles keeps the 4 workers
busy, and the rollout's own requeues wait behind it).
Usage: /usr/bin/python3 tests/bench/bench_rollout.py"""

import datetime
import http.client
import http.server
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import Aviary, Emulator, wait_for  # noqa: E402
from test_rollout import App, Aws, Daemon, image, write_atomic  # noqa: E402

AVIARY = os.environ.get("AVIARY_BIN", os.path.join(REPO, "build", "aviary"))
COUNTS = [int(c) for c in os.environ.get("BENCH_CANARY_COUNTS", "1,10,100").split(",") if c]
DELAY_SCALE = float(os.environ.get("BENCH_DELAY_SCALE", "0.02"))
INTERVALS = [int(c) for c in os.environ.get("BENCH_INTERVALS", "1,5,10").split(",") if c]
BATCH_INTERVAL = int(os.environ.get("BENCH_BATCH_INTERVAL", "60"))
BATCH_ROUNDS = int(os.environ.get("BENCH_BATCH_ROUNDS", "2"))
RESYNC = os.environ.get("BENCH_RESYNC", "30s")
CONVERGE_TIMEOUT = 1800.0


class TimingProxy:
    """A loopback HTTP/1.1 proxy in front of the emulator that records when
    each AWS call was received and answered (aviary's view of AWS time).
    Headers, including Host, pass unchanged, so SigV4 signatures verify."""

    def __init__(self, target_port):
        self.calls = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Without this, the body written after the headers waits for
                # the client's delayed ACK (Nagle): about 40 ms per call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _forward(self):
                t0 = time.time()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                t1 = time.time()
                target = self.headers.get("X-Amz-Target", "")
                op = target.rsplit(".", 1)[-1] if target else ""
                if not op:
                    m = re.search(rb"Action=([A-Za-z]+)", body) or \
                        re.search(rb"Action=([A-Za-z]+)", self.path.encode())
                    op = m.group(1).decode() if m else self.command + " " + self.path[:40]
                with outer.lock:
                    outer.calls.append((t0, t1, op, resp.status))
                head = [f"HTTP/1.1 {resp.status} {resp.reason}"]
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        head.append(f"{k}: {v}")
                head.append(f"Content-Length: {len(data)}")
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def between(self, start, end):
        with self.lock:
            return [c for c in self.calls if c[0] >= start and c[1] <= end]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def parse_ts(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def parse_rfc3339(ts):
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(ts, fmt).replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            pass
    raise ValueError(ts)


def reconcile_starts(log_text, name):
    """Times of aviary's "reconcile started" lines for Application/name."""
    out = []
    for line in log_text.splitlines():
        if 'msg="reconcile started"' in line and f"key=Application/{name} " in line + " ":
            m = re.search(r"ts=(\S+)", line)
            if m:
                out.append(parse_ts(m.group(1).strip('"')))
    return out


class Lab:
    """What App (test_rollout) needs: a root directory, the emulator, its
    boto3 clients and the aviary runner."""

    def __init__(self, root, emulator, aws, aviary):
        self.root, self.emulator, self.aws, self.aviary = root, emulator, aws, aviary


def bench_reaction(work):
    print(f"== rollback reaction time (emulator delay scale {DELAY_SCALE}, "
          f"{os.path.basename(AVIARY)}: {AVIARY})")
    emu = Emulator(os.path.join(work, "emu-reaction"), delay_scale=DELAY_SCALE, seed=3)
    proxy = TimingProxy(emu.port)
    try:
        emu.set_traffic(default_rps=100)
        av = Aviary(AVIARY, emu, os.path.join(work, "av-reaction"))
        av.env["AWS_ENDPOINT_URL"] = proxy.url
        lab = Lab(os.path.join(work, "lab-reaction"), emu, Aws(emu), av)
        steps = [{"setWeight": 20}, {"pause": {"duration": "10m"}}]
        app = App(lab, "reaction", 150, steps=steps)
        app.write()
        # Debug logging for the "reconcile started" lines.
        d = app.daemon = Daemon(av, app.src, app.state, "aviary.log", resync="30s", workers=4,
                                args=("--log-level", "debug"))
        app.wait_ready(CONVERGE_TIMEOUT)
        app.resolve()
        print("$ aviary run --source DIR --resync 30s --workers 4 --log-level debug   "
              "(AWS through a timing proxy)")
        print(f"  {'interval':>8} {'canary->restored':>17} {'data visible->restored':>23} "
              f"{'slack':>6} {'aviary own':>11} {'AWS in reconcile':>17}  calls to restore")
        for k, interval in enumerate(INTERVALS):
            tag = str(k + 2)
            emu.set_profile(image("reaction", tag), error_rate=0.3)
            before = app.rollout().get("canaryRevision") or app.rollout().get("stableRevision")
            t0 = time.time()
            app.write(tag=tag, analysis={"interval": f"{interval}s"})
            app.wait(lambda o: o["rollout"].get("canaryRevision") not in (None, "", before),
                     30, "rollout started")
            o = app.wait(lambda o: o["phase"] == "RolledBack", 120 + 5 * interval, "rollback")
            hist = [(t, w) for t, w in app.weights() if t >= t0]
            canary = [w for w in hist if any(v == 20 for v in w[1].values())]
            back = [w for w in hist if canary and w[0] > canary[0][0] and
                    all(v in (0, 100) for v in w[1].values())]
            failed = [m for m in o["rollout"].get("analysis", []) if m["verdict"] == "Failed"
                      and parse_rfc3339(m["window"]["start"]) >= t0 - 1]
            if not canary or not back or not failed:
                print(f"  {interval:>7}s  incomplete: weights {hist}, failed {failed}")
                continue
            t_canary, t_back = canary[0][0], back[0][0]
            w_start = parse_rfc3339(failed[0]["window"]["start"])
            w_end = parse_rfc3339(failed[0]["window"]["end"])
            starts = [s for s in reconcile_starts(av.log(d.current_log), "reaction")
                      if s <= t_back + 0.001]
            s = starts[-1] if starts else float("nan")
            # The deciding reconcile's calls up to the restoring ModifyListener
            # (the emulator records the weights while handling it).
            calls = sorted(proxy.between(s, t_back + 1.0))
            modify = [c for c in calls if c[2] == "ModifyListener" and c[0] <= t_back + 0.01]
            end = modify[-1][1] if modify else t_back
            calls = [c for c in calls if c[1] <= end]
            aws_time = 0.0
            last_end = s
            for c0, c1, _, _ in calls:
                # overlapping calls (parallel) count once
                aws_time += max(0.0, c1 - max(c0, last_end))
                last_end = max(last_end, c1)
            own = (end - s) - aws_time
            # The gap before GetMetricData: building the queries and the
            # batcher's gathering wait (20 ms), part of aviary's own time.
            gmd = [i for i, c in enumerate(calls) if c[2] == "GetMetricData"]
            # (GetMetricData is the reconcile's first call on the requeue path)
            gather = (calls[gmd[-1]][0] - (calls[gmd[-1] - 1][1] if gmd[-1] > 0 else s)) \
                if gmd else float("nan")
            print(f"  {interval:>7}s {t_back - t_canary:>16.3f}s {t_back - w_end:>22.3f}s "
                  f"{s - w_end:>5.2f}s {own * 1000:>9.1f}ms {aws_time * 1000:>15.1f}ms  "
                  f"{len(calls)} calls: ... {', '.join(c[2] for c in calls[-4:])}")
            print(f"  {'':>8} of aviary's own time, {gather * 1000:.1f} ms before GetMetricData "
                  f"(queries + the batcher's gathering wait)")
            print(f"  {'':>8} first failing datapoint readable {w_start + 1 - t_canary:+.2f}s "
                  f"after the canary got 20%; window {failed[0]['window']['start']} .. "
                  f"{failed[0]['window']['end']}; value {failed[0]['value']:.3f} > "
                  f"{failed[0]['threshold']}; restored {t_back - (w_start + 1):.3f}s after "
                  f"the first failing datapoint was readable (target <= {interval}s + 0.1s "
                  f"+ {1.0:.1f}s slack)")
        d.stop()
    finally:
        proxy.stop()
        emu.stop()


BATCH = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  image: docker.io/acme/batch:{image_tag}
  port: 8080
  healthCheck: {{path: /health, interval: 5s, timeout: 2s, healthyThreshold: 2}}
  env: {{N: "{i}"}}
  network: {{cidr: 10.{net}.0.0/16, natGateway: false}}
  scaling: {{min: 1, max: 2}}
  notifications: {{onScaling: false}}
  dashboard: false
  rollout:
    strategy: canary
    canary:
      steps: [{{setWeight: 50}}, {{pause: {{duration: 30m}}}}]
    analysis:
      interval: {interval}s
      minRequests: 5
      metrics:
        - {{name: error-rate, type: errorRate, max: 0.05}}
        - {{name: p99, type: latency, stat: p99, max: 1.0}}
        - {{name: cpu, type: cpu, max: 90}}
"""


def bench_batching(work, n):
    print(f"== {n} concurrent canar{'ies' if n > 1 else 'y'}: GetMetricData calls per "
          f"{BATCH_INTERVAL} s analysis interval (--resync {RESYNC} --workers 4)")
    emu = Emulator(os.path.join(work, f"emu-batch{n}"), delay_scale=DELAY_SCALE, seed=5)
    try:
        if n > 50:
            emu.set_quotas(**{"elbv2.load_balancers": 200})
        av = Aviary(AVIARY, emu, os.path.join(work, f"av-batch{n}"))
        src = os.path.join(work, f"src-batch{n}")
        os.makedirs(src)

        def write_all(tag):
            for i in range(n):
                # Canary 0 runs its own image, so it alone can be made to fail.
                write_atomic(src, f"b{i:03d}.yaml", BATCH.format(
                    name=f"b{n}-{i:03d}", image_tag=tag + ("-0" if i == 0 else ""), i=i,
                    net=i % 250, interval=BATCH_INTERVAL))
        write_all("1")
        t0 = time.monotonic()
        d = Daemon(av, src, os.path.join(work, f"state-batch{n}"), "aviary.log", resync=RESYNC,
                   workers=4)

        def objects():
            return json.loads(d.get("/v1/objects")[1])

        def all_phase(ok):
            objs = objects()
            bad = [o for o in objs if o.get("phase") == "Failed"]
            if bad:
                raise RuntimeError(json.dumps(bad[0].get("conditions")))
            return len(objs) == n and all(ok(o) for o in objs)
        wait_for(lambda: all_phase(lambda o: o.get("phase") == "Ready"), CONVERGE_TIMEOUT,
                 interval=1, message=f"{n} Ready")
        print(f"  {n} applications converged in {time.monotonic() - t0:.0f} s")
        t1 = time.monotonic()
        write_all("2")
        wait_for(lambda: all_phase(lambda o: (o.get("rollout") or {}).get("weight") == 50 and
                                   len((o.get("rollout") or {}).get("analysis") or []) >= 3),
                 CONVERGE_TIMEOUT, interval=1, message=f"{n} canaries measured")
        print(f"  {n} canaries at 50% and measured {time.monotonic() - t1:.0f} s after the "
              f"manifests changed")
        # Whole intervals, starting mid-interval (windows end on the grid).
        now = time.time()
        start = (math.floor(now / BATCH_INTERVAL) + 1.5) * BATCH_INTERVAL
        time.sleep(max(0.0, start - time.time()))
        before = {o["name"]: len((o.get("rollout") or {}).get("analysis") or [])
                  for o in objects()}
        emu.clear_calls()
        time.sleep(BATCH_ROUNDS * BATCH_INTERVAL)
        calls = emu.calls(service="cloudwatch", operation="GetMetricData")
        after = objects()
        measured = sum(len((o.get("rollout") or {}).get("analysis") or []) -
                       before.get(o["name"], 0) for o in after)
        rolled = [o["name"] for o in after if o.get("phase") != "Progressing" and
                  (o.get("rollout") or {}).get("phase") not in ("Progressing", "Paused")]
        failed = [c for c in calls if c["status"] != 200]
        print(f"  {len(calls)} GetMetricData calls in {BATCH_ROUNDS} intervals -> "
              f"{len(calls) / BATCH_ROUNDS:.2f} per interval ({len(failed)} failed); "
              f"{measured // 3} rounds of 3 metrics ({measured / 3 / max(1, BATCH_ROUNDS * n):.2f} "
              f"per canary per interval); not progressing: {len(rolled)}")
        # When the calls of each interval were made, relative to the window
        # grid: the batcher merges callers that arrive within its 20 ms.
        for k in range(BATCH_ROUNDS):
            grid = start + BATCH_INTERVAL / 2 + k * BATCH_INTERVAL  # a window end
            offs = sorted(c["time"] - grid for c in calls
                          if grid - BATCH_INTERVAL / 2 <= c["time"] < grid + BATCH_INTERVAL / 2)
            shown = ", ".join(f"{o:+.3f}" for o in offs[:12]) + (" ..." if len(offs) > 12 else "")
            print(f"  interval {k + 1}: {len(offs)} calls at [{shown}] s after the window end"
                  + (f" (spread {offs[-1] - offs[0]:.3f} s)" if offs else ""))
        # One failing canary among the n: from the end of its failing window
        # to its listener restored.
        bad = f"b{n}-000"
        t_bad = time.time()
        emu.set_profile("docker.io/acme/batch:2-0", error_rate=0.3)

        def bad_status():
            return next(o for o in objects() if o["name"] == bad)
        wait_for(lambda: bad_status().get("phase") == "RolledBack", 4 * BATCH_INTERVAL + 120,
                 interval=0.5, message=f"{bad} rolled back")
        o = bad_status()
        failed = [m for m in (o.get("rollout") or {}).get("analysis") or []
                  if m["verdict"] == "Failed"]
        w_end = parse_rfc3339(failed[-1]["window"]["end"]) if failed else float("nan")
        restored = [h["time"] for h in emu.weights()
                    if h["time"] >= t_bad and any(f"/{bad}-tg" in tg for tg in h["weights"])
                    and all(w in (0, 100) for w in h["weights"].values())]
        t_back = restored[0] if restored else float("nan")
        others = objects()
        still = sum(1 for x in others if x["name"] != bad and
                    (x.get("rollout") or {}).get("phase") == "Progressing")
        lag = t_back - w_end
        print(f"  one failing canary among {n}: listener restored {lag:.3f} s after its failing "
              f"window ended ({lag - 1.0:.3f} s after the 1 s slack); "
              f"{still} of {n - 1} others still progressing")
        d.stop()
        return len(calls) / BATCH_ROUNDS, lag
    finally:
        emu.stop()


def main():
    if not os.access(AVIARY, os.X_OK):
        sys.exit(f"{AVIARY} not found: build first (make build) or set AVIARY_BIN")
    work = tempfile.mkdtemp(prefix="aviary-bench-rollout.")
    try:
        if INTERVALS:
            bench_reaction(work)
        results = {}
        for n in COUNTS:
            results[n] = bench_batching(work, n)
        if results:
            print("== summary: GetMetricData calls per analysis interval; a failing canary's "
                  "window end -> listener restored")
            for n, (per, lag) in results.items():
                print(f"  {n:4d} concurrent canaries: {per:.2f} calls (target "
                      f"{math.ceil(n * 4 / 500)}), rollback {lag:.3f} s after the window end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
