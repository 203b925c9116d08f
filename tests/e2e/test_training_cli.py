"""End-to-end scenarios of TrainingEnvironment follow-ups: `aviary plan` lists
what would be created or changed (data files by SHA-256, the notebook's type)
with read calls only, `aviary apply --wait` converges it, a second plan has
nothing to do; multipart uploads left behind by a daemon killed mid-upload
are aborted, and the bucket's lifecycle rule aborts the rest."""

import hashlib
import json
import os

import pytest

from harness import REGION, wait_for
from test_training import Daemon, client, manifest, write_atomic

ACCOUNT = "123456789012"  # the emulator's account


def mutating(emulator):
    return [(c["service"], c["operation"]) for c in emulator.calls(mutating=True)]


def plan_created(out):
    return int(out.split("Plan: ")[1].split(" to create")[0])


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "manifests"
    (d / "data").mkdir(parents=True)
    return d


def test_plan_apply_wait_and_a_quiet_second_plan(aviary, emulator, src, tmp_path):
    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    data_v1 = b"customer,churned\nC1,0\nC2,1\n"
    (src / "data" / "train.csv").write_bytes(data_v1)
    path = src / "cli.yaml"
    path.write_text(manifest("cli", cidr="10.80.0.0/16"))
    sha_v1 = hashlib.sha256(data_v1).hexdigest()

    # Plan from nothing: everything is to be created; not one write.
    r = aviary.run("plan", str(path), check=True)
    out = r.stdout
    assert "TrainingEnvironment cli:\n" in out, out
    for line in ("+ s3:bucket aviary-cli-", "s3.CreateBucket", "s3.PutBucketLifecycleConfiguration",
                 "lifecycle: abort incomplete multipart uploads after 1 day",
                 "+ s3:object data/data/train.csv", f"sha256: (none) -> {sha_v1}",
                 "source: data/train.csv", "+ iam:role aviary-cli-notebook",
                 "+ ec2:vpc aviary-cli", "cidr: 10.80.0.0/16", "+ ec2:subnet aviary-cli-public",
                 "+ ec2:security-group aviary-cli-notebook", "+ sagemaker:notebook-instance cli",
                 "instanceType: ml.t3.medium", "volumeSizeGB: 10"):
        assert line in out, (line, out)
    assert "0 to change, 0 to delete." in out, out
    assert plan_created(out) >= 9, out
    assert mutating(emulator) == []
    assert len(emulator.calls()) > 0
    doc = json.loads(aviary.run("plan", "-o", "json", str(path), check=True).stdout)
    [env] = doc["trainingEnvironments"]
    assert env["name"] == "cli" and doc["applications"] == []
    assert doc["create"] == plan_created(out) and env["create"] == doc["create"]
    assert mutating(emulator) == []

    # Apply and wait: Ready with the notebook in service, everything there.
    r = aviary.run("apply", str(path), "--wait", "--timeout", "2m", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cli: pass 1: " in r.stdout
    assert "cli: Ready: notebook InService https://cli.notebook." in r.stdout, r.stdout
    bucket = r.stdout.split(", bucket ")[-1].split()[0]
    assert bucket.startswith("aviary-cli-")
    assert s3.get_object(Bucket=bucket, Key="data/data/train.csv")["Body"].read() == data_v1
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [(x["ID"], x["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            for x in rules] == [("aviary-abort-incomplete-multipart-uploads", 1)]
    nb = sm.describe_notebook_instance(NotebookInstanceName="cli")
    assert nb["NotebookInstanceStatus"] == "InService" and nb["InstanceType"] == "ml.t3.medium"

    # A second plan: nothing to do, and still no write.
    emulator.clear_calls()
    r = aviary.run("plan", str(path), check=True)
    assert "no changes: AWS matches the manifest" in r.stdout, r.stdout
    assert "Plan: 0 to create, 0 to change, 0 to delete." in r.stdout
    assert mutating(emulator) == []

    # Changed data and a larger instance: planned by hash and field, then applied.
    data_v2 = data_v1 + b"C3,0\n"
    (src / "data" / "train.csv").write_bytes(data_v2)
    path.write_text(manifest("cli", cidr="10.80.0.0/16", itype="ml.t3.large"))
    r = aviary.run("plan", str(path), check=True)
    out = r.stdout
    for line in ("~ s3:object data/data/train.csv",
                 f"sha256: {sha_v1} -> {hashlib.sha256(data_v2).hexdigest()}",
                 f"size: {len(data_v1)} -> {len(data_v2)} bytes",
                 "~ sagemaker:notebook-instance cli",
                 "instanceType: ml.t3.medium -> ml.t3.large",
                 "sagemaker.StopNotebookInstance", "sagemaker.UpdateNotebookInstance",
                 "sagemaker.StartNotebookInstance", "Plan: 0 to create, 2 to change, 0 to delete."):
        assert line in out, (line, out)
    assert mutating(emulator) == []
    r = aviary.run("apply", str(path), "--wait", "--timeout", "2m", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cli: Ready: notebook InService" in r.stdout
    nb = sm.describe_notebook_instance(NotebookInstanceName="cli")
    assert nb["InstanceType"] == "ml.t3.large" and nb["NotebookInstanceStatus"] == "InService"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="data/data/train.csv")["Versions"]
    assert len(versions) == 2

    # Without --wait, one pass on a converged environment: Ready at once; its
    # status kept for the daemon, which continues without a write.
    state = str(tmp_path / "state")
    r = aviary.run("apply", str(path), "--state-dir", state, check=True)
    assert "cli: pass 1: Ready" in r.stdout and "cli: Ready: notebook InService" in r.stdout
    emulator.clear_calls()
    d = Daemon(aviary, str(src), state)
    wait_for(lambda: len(emulator.calls(operation="HeadObject")) >= 2, timeout=20,
             message="two passes of the daemon")
    assert d.obj("cli")["phase"] == "Ready"
    assert mutating(emulator) == []
    assert d.stop() == 0

    # A missing data file: exit 1 with the file named, nothing in AWS touched.
    bad = src / "bad.yaml"
    bad.write_text(manifest("bad", data=("data/missing.csv",)))
    emulator.clear_calls()
    for cmd in ("plan", "apply"):
        r = aviary.run(cmd, str(bad))
        assert r.returncode == 1 and "data/missing.csv" in r.stderr, r.stderr
    assert emulator.calls() == []


def sparse(path, size):
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(size // 2)
        f.write(b"aviary")


def test_uploads_left_by_a_killed_daemon_are_aborted(aviary, emulator, src, tmp_path):
    s3 = client(emulator, "s3")
    size = 65 * 1024 * 1024  # above the 64 MiB multipart threshold: 5 parts of 16 MiB
    sparse(src / "big.bin", size)
    write_atomic(str(src), "big.yaml", manifest("big", data=("big.bin",), cidr="10.81.0.0/16"))
    state = str(tmp_path / "state")

    # Two hours ago (emulator time), a daemon whose part uploads fail and
    # whose aborts fail too is killed with SIGKILL mid-upload.
    emulator.clock(offset=-7200)
    emulator.faults(drop={"service": "s3", "operation": "UploadPart"},
                    error500={"service": "s3", "operation": "AbortMultipartUpload"})
    d = Daemon(aviary, str(src), state)
    wait_for(lambda: emulator.calls(operation="CreateMultipartUpload"), timeout=60,
             message="a multipart upload started")
    d.proc.kill()
    d.proc.wait(timeout=15)
    emulator.clear_faults()
    emulator.clock(offset=0)
    # The bucket's name is derived from account, region and name.
    bucket = "aviary-big-" + hashlib.sha256(f"{ACCOUNT}/{REGION}/big".encode()).hexdigest()[:12]
    left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert left and all(u["Key"] == "data/big.bin" for u in left), left
    # The bucket's backstop was in place before the first byte was sent.
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert rule["Status"] == "Enabled" and rule["Filter"].get("Prefix", "") == ""

    # A new daemon uploads the file and aborts what the killed one left.
    emulator.clear_calls()
    d = Daemon(aviary, str(src), state)
    seen = {}

    def ready():
        seen["status"] = d.obj("big")
        return seen["status"] if (seen["status"] or {}).get("phase") == "Ready" else None

    try:
        o = wait_for(ready, timeout=90, message="big Ready")
    except AssertionError:
        raise AssertionError(f"not Ready: {json.dumps(seen.get('status'))[:3000]}\n"
                             f"{aviary.log()[-3000:]}") from None
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert len(emulator.calls(operation="AbortMultipartUpload")) == len(left)
    head = s3.head_object(Bucket=bucket, Key="data/big.bin")
    assert head["ContentLength"] == size and head["PartsCount"] == 5
    assert any(e["reason"] == "Deleted" and "s3:multipart-upload data/big.bin" in e["message"]
               for e in o["events"]), o["events"]
    # Looked for once an hour, not at every resync.
    emulator.clear_calls()
    wait_for(lambda: len(emulator.calls(operation="HeadObject")) >= 2, timeout=20,
             message="two resyncs")
    assert emulator.calls(operation="ListMultipartUploads") == []
    assert mutating(emulator) == []
    assert d.stop() == 0


def test_lifecycle_rule_aborts_uploads_aviary_does_not_know(aviary, emulator, src):
    s3 = client(emulator, "s3")
    (src / "data" / "train.csv").write_bytes(b"a,b\n1,2\n")
    path = src / "env.yaml"
    path.write_text(manifest("life", cidr="10.82.0.0/16"))
    r = aviary.run("apply", str(path), "--wait", "--timeout", "2m", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    bucket = r.stdout.split(", bucket ")[-1].split()[0]
    # The notebook's own upload (not one of aviary's keys), interrupted.
    up = s3.create_multipart_upload(Bucket=bucket, Key="models/checkpoint.pt")
    assert up["AbortRuleId"] == "aviary-abort-incomplete-multipart-uploads"
    s3.upload_part(Bucket=bucket, Key="models/checkpoint.pt", UploadId=up["UploadId"],
                   PartNumber=1, Body=b"x" * 1024)
    # aviary leaves it alone ...
    r = aviary.run("apply", str(path), check=True)
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [
        up["UploadId"]]
    # ... and S3 aborts it after its abort date (a day, rounded to midnight UTC).
    emulator.clock(advance=2 * 86400 + 60)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_apply_wait_fails_with_the_reason(aviary, emulator, src):
    s3 = client(emulator, "s3")
    (src / "data" / "train.csv").write_bytes(b"a,b\n1,2\n")
    path = src / "taken.yaml"
    path.write_text(manifest("taken", cidr="10.83.0.0/16"))
    # The environment's bucket name, already used by something else.
    bucket = "aviary-taken-" + hashlib.sha256(f"{ACCOUNT}/{REGION}/taken".encode()).hexdigest()[:12]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": "aviary.io/managed-by", "Value": "aviary"},
        {"Key": "aviary.io/training", "Value": "someone-else"}]})
    emulator.clear_calls()
    r = aviary.run("apply", str(path), "--wait", "--timeout", "1m", timeout=90)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "taken: failed: " in r.stderr and "tagged for another owner" in r.stderr, r.stderr
    assert "Ready" not in r.stdout
    assert mutating(emulator) == []   # nothing of the foreign bucket changed
    r = aviary.run("plan", str(path))
    assert r.returncode == 1 and "tagged for another owner" in r.stderr, r.stderr
