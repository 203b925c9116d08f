"""End-to-end scenarios of the controller core (issue 4) with the no-op
reconciler: directory events, invalid versions, deletion and its grace,
restart recovery, the S3 source and its outages, the HTTP API and the CLI.
The real aviary binary runs against the emulator (which serves S3)."""

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from harness import ACCESS_KEY, REGION, SECRET_KEY, free_port, wait_for

APP = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:{tag}
  port: 8080
"""


def write_atomic(directory, name, text):
    tmp = os.path.join(directory, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(directory, name))


class Daemon:
    """aviary run on a manifest source, with its HTTP API."""

    def __init__(self, aviary, source, state_dir, *extra):
        self.aviary = aviary
        self.port = free_port()
        self.server = f"127.0.0.1:{self.port}"
        self.proc = aviary.start("run", "--source", source, "--state-dir", state_dir,
                                 "--listen", self.server, "--reconcilers", "noop",
                                 "--deletion-grace", "1s", "--resync", "2s", *extra)
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout=15, message="/readyz")

    def get(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"aviary exited {self.proc.returncode}:\n{self.aviary.log()}")
        try:
            with urllib.request.urlopen(f"http://{self.server}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path):
        req = urllib.request.Request(f"http://{self.server}{path}", data=b"", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def obj(self, name, kind="Application"):
        code, body = self.get(f"/v1/objects/{kind}/{name}")
        return json.loads(body) if code == 200 else None

    def condition(self, name, ctype):
        o = self.obj(name)
        for c in (o or {}).get("conditions", []):
            if c["type"] == ctype:
                return c
        return None

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=15)


@pytest.fixture
def dirs(tmp_path):
    src = tmp_path / "manifests"
    state = tmp_path / "state"
    src.mkdir()
    return str(src), str(state)


def test_directory_lifecycle(aviary, dirs):
    src, state = dirs
    d = Daemon(aviary, src, state)
    write_atomic(src, "fraud.yaml", APP.format(name="fraud", tag="1"))
    o = wait_for(lambda: (d.obj("fraud") or {}).get("phase") == "Ready" and d.obj("fraud"),
                 timeout=10, message="fraud Ready")
    assert o["generation"] == 1
    first_revision = o["observedRevision"]
    assert len(first_revision) == 10

    # A change of the image is a new revision and generation.
    write_atomic(src, "fraud.yaml", APP.format(name="fraud", tag="2"))
    o = wait_for(lambda: (d.obj("fraud") or {}).get("generation") == 2 and d.obj("fraud"),
                 timeout=10, message="generation 2")
    wait_for(lambda: d.obj("fraud")["observedRevision"] != first_revision, timeout=10,
             message="new revision observed")

    # An invalid version: Valid=False with file:line:column, the last valid one stays.
    good_revision = d.obj("fraud")["observedRevision"]
    write_atomic(src, "fraud.yaml", APP.format(name="fraud", tag="3") + "  prot: 9090\n")
    c = wait_for(lambda: (d.condition("fraud", "Valid") or {}).get("status") == "False" and
                 d.condition("fraud", "Valid"), timeout=10, message="Valid=False")
    assert "fraud.yaml:8:3: spec.prot" in c["message"], c["message"]
    assert d.obj("fraud")["observedRevision"] == good_revision
    assert d.obj("fraud")["generation"] == 2

    # Editor leftovers and non-manifests are ignored.
    for junk in (".fraud.yaml.swp", "fraud.yaml~", "#fraud.yaml#", "notes.txt"):
        with open(os.path.join(src, junk), "w") as f:
            f.write("kind: [broken")
    # Fixing the file makes it valid again.
    write_atomic(src, "fraud.yaml", APP.format(name="fraud", tag="3"))
    wait_for(lambda: (d.condition("fraud", "Valid") or {}).get("status") == "True", timeout=10,
             message="Valid=True again")

    # A rename is not a delete + create.
    os.rename(os.path.join(src, "fraud.yaml"), os.path.join(src, "renamed.yaml"))
    time.sleep(2.5)  # longer than the deletion grace: the object must still be there
    assert d.obj("fraud") is not None
    assert "deleting" not in aviary.log()

    # Deleting the file deletes the object (after the grace period).
    os.unlink(os.path.join(src, "renamed.yaml"))
    wait_for(lambda: d.obj("fraud") is None, timeout=10, message="fraud deleted")
    assert d.stop() == 0


def test_broken_file_keeps_its_objects_and_duplicates_are_errors(aviary, dirs):
    src, state = dirs
    d = Daemon(aviary, src, state)
    write_atomic(src, "a.yaml", APP.format(name="alpha", tag="1"))
    wait_for(lambda: (d.obj("alpha") or {}).get("phase") == "Ready", timeout=10,
             message="alpha Ready")
    # A YAML syntax error must not delete what the file defined.
    write_atomic(src, "a.yaml", "apiVersion: aviary.io/v1alpha1\nkind: [unclosed\n")
    time.sleep(2.5)
    assert d.obj("alpha") is not None
    assert "manifest file not applied" in aviary.log()

    # The same name in two files: an error on both, nothing applied.
    write_atomic(src, "a.yaml", APP.format(name="alpha", tag="1"))
    write_atomic(src, "b.yaml", APP.format(name="alpha", tag="9"))
    c = wait_for(lambda: (d.condition("alpha", "Valid") or {}).get("status") == "False" and
                 d.condition("alpha", "Valid"), timeout=10, message="duplicate reported")
    assert "more than one file" in c["message"]
    assert d.stop() == 0


def metric(d, name):
    """The value of an unlabelled metric in /metrics."""
    code, text = d.get("/metrics")
    assert code == 200
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_events_load_only_the_files_they_name(aviary, dirs):
    """A file-system event about one file among many reads and parses that
    file only (counted by the daemon's metrics), while duplicates across
    files, renames and symlinks behave as with a full scan."""
    src, state = dirs
    for i in range(40):
        write_atomic(src, f"app-{i:02d}.yaml", APP.format(name=f"app-{i:02d}", tag="1"))
    # A symlink inside the directory, to a hidden file (its own events name
    # no manifest).
    with open(os.path.join(src, ".shared.data"), "w") as f:
        f.write(APP.format(name="linked", tag="1"))
    os.symlink(".shared.data", os.path.join(src, "linked.yaml"))
    d = Daemon(aviary, src, state)
    wait_for(lambda: all((d.obj(f"app-{i:02d}") or {}).get("phase") == "Ready"
                         for i in (0, 39)) and d.obj("linked"), timeout=20, message="loaded")
    loaded, read = (metric(d, "aviary_manifest_files_loaded_total"),
                    metric(d, "aviary_source_files_read_total"))
    assert loaded == 41 and read == 41

    # A new file renamed in: one file read and loaded.
    write_atomic(src, "new.yaml", APP.format(name="fresh", tag="1"))
    wait_for(lambda: (d.obj("fresh") or {}).get("phase") == "Ready", timeout=10,
             message="fresh Ready")
    assert metric(d, "aviary_manifest_files_loaded_total") == loaded + 1
    assert metric(d, "aviary_source_files_read_total") == read + 1

    # One file modified: only it.
    write_atomic(src, "app-05.yaml", APP.format(name="app-05", tag="2"))
    wait_for(lambda: d.obj("app-05")["generation"] == 2, timeout=10, message="app-05 gen 2")
    assert metric(d, "aviary_manifest_files_loaded_total") == loaded + 2
    assert metric(d, "aviary_source_files_read_total") == read + 2

    # The symlink's target written in place (no event names linked.yaml).
    with open(os.path.join(src, ".shared.data"), "w") as f:
        f.write(APP.format(name="linked", tag="2"))
    wait_for(lambda: d.obj("linked")["generation"] == 2, timeout=10, message="linked gen 2")
    assert metric(d, "aviary_manifest_files_loaded_total") == loaded + 3

    # A duplicate in a new file: an error on both; the unchanged file that
    # defined the name first is loaded again, and nothing else.
    write_atomic(src, "dup.yaml", APP.format(name="app-07", tag="9"))
    c = wait_for(lambda: (d.condition("app-07", "Valid") or {}).get("status") == "False" and
                 d.condition("app-07", "Valid"), timeout=10, message="duplicate reported")
    assert "more than one file" in c["message"], c["message"]
    assert metric(d, "aviary_manifest_files_loaded_total") == loaded + 5
    assert d.obj("app-07")["generation"] == 1
    # Removing the duplicate applies the original again (it needs its spec).
    os.unlink(os.path.join(src, "dup.yaml"))
    wait_for(lambda: (d.condition("app-07", "Valid") or {}).get("status") == "True", timeout=10,
             message="app-07 valid again")
    assert d.obj("app-07")["generation"] == 1
    assert metric(d, "aviary_manifest_files_loaded_total") == loaded + 6

    # A rename is not a delete + create, and loads the file under its new name only.
    os.rename(os.path.join(src, "app-09.yaml"), os.path.join(src, "moved.yaml"))
    time.sleep(2.5)  # longer than the deletion grace: the object must still be there
    assert d.obj("app-09") is not None and d.obj("app-09")["generation"] == 1
    assert metric(d, "aviary_manifest_files_loaded_total") == loaded + 7
    assert "deleting" not in aviary.log()

    # SIGHUP scans everything again but reads nothing unchanged.
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SIGHUP" in aviary.log(), timeout=10, message="SIGHUP handled")
    assert metric(d, "aviary_source_files_read_total") == read + 5
    assert d.stop() == 0


def test_restart_resumes_and_deletes_what_vanished_while_down(aviary, dirs):
    src, state = dirs
    write_atomic(src, "a.yaml", APP.format(name="alpha", tag="1"))
    write_atomic(src, "b.yaml", APP.format(name="beta", tag="1"))
    d = Daemon(aviary, src, state)
    wait_for(lambda: d.obj("alpha") and d.obj("beta") and
             d.obj("beta").get("phase") == "Ready", timeout=10, message="both Ready")
    write_atomic(src, "a.yaml", APP.format(name="alpha", tag="2"))
    wait_for(lambda: d.obj("alpha")["generation"] == 2, timeout=10, message="alpha gen 2")
    assert d.stop() == 0

    os.unlink(os.path.join(src, "b.yaml"))  # removed while the daemon is down
    d = Daemon(aviary, src, state)
    assert d.obj("alpha")["generation"] == 2  # remembered across the restart
    wait_for(lambda: d.obj("beta") is None, timeout=10, message="beta deleted after restart")
    assert d.stop() == 0


def test_http_api_and_cli(aviary, dirs):
    src, state = dirs
    write_atomic(src, "a.yaml", APP.format(name="alpha", tag="1"))
    d = Daemon(aviary, src, state)
    wait_for(lambda: (d.obj("alpha") or {}).get("phase") == "Ready", timeout=10,
             message="alpha Ready")
    assert d.get("/healthz")[0] == 200
    code, metrics = d.get("/metrics")
    assert code == 200
    assert 'aviary_reconciles_total{kind="Application",result="done"}' in metrics
    assert 'aviary_objects{kind="Application",phase="Ready"} 1' in metrics
    assert "aviary_reconcile_duration_seconds_bucket" in metrics
    code, body = d.get("/v1/objects/Application/nope")
    assert code == 404 and json.loads(body)["error"]["code"] == 404
    assert d.post("/v1/objects/Application/alpha")[0] == 405
    assert d.get("/v1/objects/Application/alpha/promote")[0] == 405
    assert d.post("/v1/objects/Application/alpha/launch")[0] == 404
    assert d.get("/nowhere")[0] == 404

    table = aviary.run("status", "--server", d.server, check=True).stdout
    assert table.splitlines()[0].split() == ["NAME", "KIND", "PHASE", "REVISION", "TRAFFIC",
                                             "ENDPOINT", "AGE"]
    assert table.splitlines()[1].split()[:3] == ["alpha", "Application", "Ready"]
    detail = aviary.run("status", "alpha", "--server", d.server, check=True).stdout
    assert "Conditions:" in detail and "Valid" in detail
    as_json = json.loads(aviary.run("status", "alpha", "-o", "json", "--server", d.server,
                                    check=True).stdout)
    assert as_json["name"] == "alpha" and as_json["kind"] == "Application"

    # A manual command is accepted, recorded, and reported as not applicable
    # by the no-op reconciler (there is no rollout to promote).
    out = aviary.run("promote", "alpha", "--server", d.server, check=True).stdout
    assert "promote requested" in out
    wait_for(lambda: any(e["reason"] == "CommandNotApplicable"
                         for e in d.obj("alpha").get("events", [])), timeout=10,
             message="command handled")
    bad = aviary.run("promote", "ghost", "--server", d.server)
    assert bad.returncode == 1 and "no such object" in bad.stderr
    down = aviary.run("status", "--server", f"127.0.0.1:{free_port()}")
    assert down.returncode == 1 and "cannot reach the aviary daemon" in down.stderr
    assert d.stop() == 0


def s3_client(emulator):
    return boto3.client("s3", endpoint_url=emulator.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}))


def test_s3_source_and_outage(aviary, emulator, tmp_path):
    s3 = s3_client(emulator)
    s3.create_bucket(Bucket="manifests")
    s3.put_object(Bucket="manifests", Key="prod/alpha.yaml",
                  Body=APP.format(name="alpha", tag="1").encode())
    s3.put_object(Bucket="manifests", Key="prod/notes.txt", Body=b"ignored")
    s3.put_object(Bucket="manifests", Key="other/beta.yaml",
                  Body=APP.format(name="beta", tag="1").encode())
    d = Daemon(aviary, "s3://manifests/prod", str(tmp_path / "state"), "--s3-interval", "300ms")
    o = wait_for(lambda: (d.obj("alpha") or {}).get("phase") == "Ready" and d.obj("alpha"),
                 timeout=10, message="alpha Ready from S3")
    assert d.obj("beta") is None
    s3.put_object(Bucket="manifests", Key="prod/alpha.yaml",
                  Body=APP.format(name="alpha", tag="2").encode())
    wait_for(lambda: d.obj("alpha")["generation"] == 2, timeout=10, message="S3 update")
    gets = [c for c in emulator.calls(service="s3") if c["operation"] == "GetObject"]
    assert len(gets) == 2, gets  # unchanged ETags are not fetched again

    # An outage keeps the desired state: nothing is deleted.
    emulator.faults(error500={"fraction": 1.0, "service": "s3"})
    time.sleep(2.0)
    assert d.obj("alpha") is not None
    emulator.clear_faults()
    s3.delete_object(Bucket="manifests", Key="prod/alpha.yaml")
    wait_for(lambda: d.obj("alpha") is None, timeout=10, message="deleted after S3 delete")
    assert o["generation"] == 1
    assert d.stop() == 0
