#!/usr/bin/python3
"""Benchmarks of the Application reconciler (issue 5) against the local AWS
emulator, printed, never asserted:

1. one application converged from nothing, by `aviary apply --wait` and by
   the daemon (`aviary run`, default --resync 1m): wall time, reconcile
   passes, AWS calls (reads, writes) from the emulator's call log;
2. calls per converged application per resync with 1, 10 and 100
   applications (the daemon with a short --resync; every reconcile of a
   converged application is a resync), reads per operation and writes,
   with cross-application read batching (reconcilers/read_batch.c, the
   default) and then, against the same converged applications, with it off
   (AVIARY_READ_BATCH=off), so that the batching shows. The emulator's
   quota of 50 Application Load Balancers per region (AWS's default) is
   raised to 200 for this part, as a quota increase would be.

The emulator's delay scale (BENCH_DELAY_SCALE, default 0.02) shortens AWS's
eventual states (NAT gateway 30 s -> 0.6 s, load balancer 60 s -> 1.2 s);
the reconciler's own waits between passes are not scaled, so the wall time
of (1) is mostly those waits. The applications of (2) run without a NAT
gateway (the emulator keeps AWS's limit of 5 Elastic IPs per region).

Environment: AVIARY_BIN (default build/aviary), BENCH_APP_COUNTS ("1,10,100"),
BENCH_DELAY_SCALE (0.02), BENCH_RESYNCS (3: resync rounds measured),
BENCH_WARMUP (1: resync rounds before measuring; a daemon's first round has no
earlier round to batch with, so it reads as if batching were off),
BENCH_UNBATCHED (1: also measure with batching off; 0 skips it),
BENCH_SKIP_ONE (0: 1 skips part 1).
Usage: /usr/bin/python3 tests/bench/bench_application.py"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from harness import Emulator, free_port, wait_for  # noqa: E402

AVIARY = os.environ.get("AVIARY_BIN", os.path.join(REPO, "build", "aviary"))
COUNTS = [int(c) for c in os.environ.get("BENCH_APP_COUNTS", "1,10,100").split(",") if c]
UNBATCHED = os.environ.get("BENCH_UNBATCHED", "1") != "0"
SKIP_ONE = os.environ.get("BENCH_SKIP_ONE", "0") == "1"
DELAY_SCALE = float(os.environ.get("BENCH_DELAY_SCALE", "0.02"))
RESYNCS = int(os.environ.get("BENCH_RESYNCS", "3"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "1"))
CONVERGE_TIMEOUT = 1800.0

ONE = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  image: ghcr.io/example/model:1
  port: 8080
  healthCheck: {{path: /health}}
  scaling: {{min: 2, max: 4, cpuPercent: 60, memoryPercent: 70}}
  notifications: {{email: [ml@example.com]}}
"""

MANY = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  image: ghcr.io/example/model:{i}
  port: 8080
  network: {{cidr: 10.{net}.0.0/16, natGateway: false}}
  scaling: {{min: 1, max: 3}}
"""


def calls_summary(calls):
    reads = [c for c in calls if not c["mutating"]]
    writes = [c for c in calls if c["mutating"]]
    failed = [c for c in calls if c["status"] != 200]
    return len(reads), len(writes), len(failed)


def errors(calls):
    """"Code x N" of the calls AWS answered with an error (NotFound answers of
    look-ups before a create are expected)."""
    codes = collections.Counter(c.get("code") or str(c["status"]) for c in calls
                                if c["status"] != 200)
    return ", ".join(f"{code} x{n}" for code, n in codes.most_common()) or "none"


def by_operation(calls):
    return collections.Counter(f"{c['service']}.{c['operation']}" for c in calls)


class Daemon:
    def __init__(self, env, workdir, source, resync):
        self.listen = f"127.0.0.1:{free_port()}"
        self.argv = [AVIARY, "run", "--source", source, "--state-dir",
                     os.path.join(workdir, "state"), "--listen", self.listen, "--resync", resync,
                     "--log-level", "warn"]
        self.log = open(os.path.join(workdir, "aviary.log"), "w")
        self.proc = subprocess.Popen(self.argv, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout=30, message="/readyz")

    def command_line(self):
        return " ".join(os.path.basename(a) if a == AVIARY else a for a in self.argv)

    def get(self, path):
        if self.proc.poll() is not None:
            raise RuntimeError(f"aviary exited {self.proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://{self.listen}{path}", timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def objects(self):
        return json.loads(self.get("/v1/objects")[1])

    def ready(self, n):
        objs = self.objects()
        failed = [o for o in objs if o.get("phase") == "Failed"]
        if failed:
            raise RuntimeError(f"failed: {json.dumps(failed[0]['conditions'])}")
        for o in objs:
            for c in o.get("conditions", []):
                if c["type"] == "Synced" and "TooMany" in c.get("message", ""):
                    raise RuntimeError(f"{o['name']}: an AWS quota: {c['message']}")
        return len(objs) == n and all(o.get("phase") == "Ready" for o in objs)

    def queue_depth(self):
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith("aviary_queue_depth "):
                return int(float(line.split()[1]))
        return -1

    def reconciles(self):
        total = 0
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith("aviary_reconciles_total{"):
                total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def bench_one(emu, env, work):
    print(f"== one application from nothing (emulator delay scale {DELAY_SCALE})")
    path = os.path.join(work, "one.yaml")
    with open(path, "w") as f:
        f.write(ONE.format(name="one"))
    emu.clear_calls()
    t0 = time.monotonic()
    r = subprocess.run([AVIARY, "apply", path, "--wait", "--timeout", "10m"], env=env,
                       capture_output=True, text=True, timeout=700)
    wall = time.monotonic() - t0
    passes = [line for line in r.stdout.splitlines() if ": pass " in line]
    calls = emu.calls()
    reads, writes, failed = calls_summary(calls)
    print(f"$ aviary apply one.yaml --wait --timeout 10m   (exit {r.returncode})")
    print(f"  wall time {wall:.1f} s, {len(passes)} passes, {reads} reads, {writes} writes; "
          f"errors: {errors(calls)}")
    for line in passes:
        print("   ", line.split(": ", 1)[1])

    src = os.path.join(work, "one-src")
    os.makedirs(src)
    with open(os.path.join(src, "two.yaml"), "w") as f:
        f.write(ONE.format(name="two"))
    os.makedirs(os.path.join(work, "one-daemon"))
    emu.clear_calls()
    t0 = time.monotonic()
    d = Daemon(env, os.path.join(work, "one-daemon"), src, "1m")
    try:
        wait_for(lambda: d.ready(1), timeout=CONVERGE_TIMEOUT, interval=0.2, message="Ready")
    except BaseException:
        d.stop()
        raise
    wall = time.monotonic() - t0
    calls = emu.calls()
    reads, writes, failed = calls_summary(calls)
    n = d.reconciles()
    print(f"$ {d.command_line()}")
    print(f"  wall time {wall:.1f} s to Ready, {n} reconciles, {reads} reads, {writes} writes; "
          f"errors: {errors(calls)}")
    d.stop()


def bench_many(emu, env, work, n):
    print(f"== {n} converged application{'s' if n > 1 else ''}: calls per application "
          f"per resync")
    src = os.path.join(work, f"many{n}")
    dwork = os.path.join(work, f"many{n}-daemon")
    os.makedirs(src)
    os.makedirs(dwork)
    for i in range(n):
        with open(os.path.join(src, f"app{i:03d}.yaml"), "w") as f:
            f.write(MANY.format(name=f"m{n}-{i:03d}", i=i, net=i % 250))
    # 100 applications need 100 load balancers: a quota increase, as on AWS.
    emu.set_quotas(**{"elbv2.load_balancers": max(50, 2 * n)})
    emu.clear_calls()
    t0 = time.monotonic()
    # A resync long enough for a round of n reconciles to finish, so that the
    # daemon is idle between rounds and whole rounds can be measured.
    # (100 applications take about a minute a round without batching.)
    resync = f"{max(5, n)}s"
    d = Daemon(env, dwork, src, resync)
    try:
        wait_for(lambda: d.ready(n), timeout=CONVERGE_TIMEOUT, interval=1, message=f"{n} Ready")
        converge = time.monotonic() - t0
        calls = emu.calls()
        reads, writes, failed = calls_summary(calls)
        print(f"$ {d.command_line()}   ({n} manifests)")
        print(f"  converged in {converge:.1f} s: {reads} reads, {writes} writes "
              f"({(reads + writes) / n:.0f} calls per application); errors: {errors(calls)}")
        batched = measure_many(emu, d, n, "read batching on (default)")
    finally:
        d.stop()
    unbatched = None
    if UNBATCHED:
        # The same converged applications, a daemon with batching off.
        off = dict(env, AVIARY_READ_BATCH="off")
        dwork_off = os.path.join(work, f"many{n}-daemon-off")
        os.makedirs(dwork_off)
        d = Daemon(off, dwork_off, src, resync)
        try:
            wait_for(lambda: d.ready(n), timeout=CONVERGE_TIMEOUT, interval=1,
                     message=f"{n} Ready")
            print(f"$ AVIARY_READ_BATCH=off {d.command_line()}")
            unbatched = measure_many(emu, d, n, "read batching off")
        finally:
            d.stop()
    return batched, unbatched


def measure_many(emu, d, n, label):
    """Whole resync rounds of converged applications, from an idle moment
    (nothing queued or running) to another one. Returns (calls, reads,
    writes) per application per resync."""
    idle = max(60, 2 * n)
    wait_for(lambda: d.queue_depth() == 0, timeout=idle, interval=0.01, message="idle")
    if WARMUP:
        r0 = d.reconciles()
        wait_for(lambda: d.reconciles() >= r0 + WARMUP * n, timeout=CONVERGE_TIMEOUT,
                 interval=0.2, message="warm-up resyncs")
        wait_for(lambda: d.queue_depth() == 0, timeout=idle, interval=0.01, message="idle")
    emu.clear_calls()
    r0 = d.reconciles()
    t0 = time.monotonic()
    wait_for(lambda: d.reconciles() >= r0 + RESYNCS * n, timeout=CONVERGE_TIMEOUT, interval=0.2,
             message="resyncs")
    wait_for(lambda: d.queue_depth() == 0, timeout=idle, interval=0.01, message="idle")
    calls = emu.calls()
    rounds = (d.reconciles() - r0) / n
    elapsed = time.monotonic() - t0
    reads, writes, failed = calls_summary(calls)
    per = rounds * n
    print(f"  {label}: {rounds:.1f} resync rounds in {elapsed:.1f} s: {reads} reads, "
          f"{writes} writes, {failed} failed -> {(reads + writes) / per:.1f} calls per "
          f"application per resync ({reads / per:.2f} reads, {writes / per:.2f} writes)")
    ops = by_operation([c for c in calls if not c["mutating"]])
    print("    reads per application per resync: " + ", ".join(
        f"{op} {c / per:.2f}" for op, c in ops.most_common()))
    if writes:
        wops = by_operation([c for c in calls if c["mutating"]])
        print("    writes per application per resync: " + ", ".join(
            f"{op} {c / per:.2f}" for op, c in wops.most_common()))
    return (reads + writes) / per, reads / per, writes / per


def main():
    if not os.access(AVIARY, os.X_OK):
        sys.exit(f"{AVIARY} not found: build first (make build) or set AVIARY_BIN")
    work = tempfile.mkdtemp(prefix="aviary-bench-app.")
    try:
        if not SKIP_ONE:
            emu = Emulator(os.path.join(work, "emulator"), delay_scale=DELAY_SCALE)
            env = emu.aws_env(work)
            try:
                bench_one(emu, env, work)
            finally:
                emu.stop()
        results = {}
        for n in COUNTS:
            emu = Emulator(os.path.join(work, f"emulator{n}"), delay_scale=DELAY_SCALE)
            try:
                results[n] = bench_many(emu, emu.aws_env(work), work, n)
            finally:
                emu.stop()
        print("== summary: AWS calls per converged application per resync")
        print("  applications   batched (reads, writes)     unbatched (reads, writes)")
        for n, (on, off) in results.items():
            line = f"  {n:12d}   {on[0]:5.1f} ({on[1]:.1f}, {on[2]:.2f})"
            if off is not None:
                line += f"          {off[0]:5.1f} ({off[1]:.1f}, {off[2]:.2f})"
            print(line)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
