"""End-to-end scenarios of the TrainingEnvironment kind (issue 7): the real
aviary daemon against the emulator creates the bucket with the data and the
notebook, stays quiet when nothing changed, keeps every version of changed
data, stops and starts the notebook, and deletes with and without
deleteData; an invalid manifest touches nothing."""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
from botocore.config import Config

from harness import ACCESS_KEY, REGION, SECRET_KEY, free_port, wait_for

ENV = """apiVersion: aviary.io/v1alpha1
kind: TrainingEnvironment
metadata:
  name: {name}
spec:
  data:
{data}
  instanceType: {itype}
  volumeSizeGB: 10
  running: {running}
  network: {{cidr: {cidr}}}
  deleteData: {delete_data}
"""


def manifest(name, data=("data/train.csv",), itype="ml.t3.medium", running="true",
             cidr="10.50.0.0/16", delete_data="false"):
    lines = "\n".join(f"    - path: {p}" for p in data) if data else "    []"
    if not data:
        lines = ""
    text = ENV.format(name=name, data=lines, itype=itype, running=running, cidr=cidr,
                      delete_data=delete_data)
    return text.replace("  data:\n\n", "  data: []\n")


def write_atomic(directory, name, text, mode="w"):
    head, tail = os.path.split(name)
    tmp = os.path.join(directory, head, f".{tail}.tmp")
    with open(tmp, mode) as f:
        f.write(text)
    os.rename(tmp, os.path.join(directory, name))


class Daemon:
    """aviary run with the default reconcilers on a manifest directory."""

    def __init__(self, aviary, source, state_dir):
        self.aviary = aviary
        self.server = f"127.0.0.1:{free_port()}"
        self.proc = aviary.start("run", "--source", source, "--state-dir", state_dir,
                                 "--listen", self.server, "--deletion-grace", "1s",
                                 "--resync", "2s")
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout=15, message="/readyz")

    def get(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"aviary exited {self.proc.returncode}:\n{self.aviary.log()}")
        try:
            with urllib.request.urlopen(f"http://{self.server}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def obj(self, name):
        code, body = self.get(f"/v1/objects/TrainingEnvironment/{name}")
        return json.loads(body) if code == 200 else None

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=15)


def client(emulator, service):
    return boto3.client(service, endpoint_url=emulator.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def ready(d, name, **want):
    """The status once phase is Ready and every notebook field in want matches."""
    o = d.obj(name)
    if not o or o.get("phase") != "Ready":
        return None
    nb = o.get("notebook") or {}
    return o if all(nb.get(k) == v for k, v in want.items()) else None


@pytest.fixture
def dirs(tmp_path):
    src = tmp_path / "manifests"
    (src / "data").mkdir(parents=True)
    return str(src), str(tmp_path / "state")


def test_training_environment_lifecycle(aviary, emulator, dirs):
    src, state = dirs
    s3, sm = client(emulator, "s3"), client(emulator, "sagemaker")
    iam, ec2 = client(emulator, "iam"), client(emulator, "ec2")
    data_v1 = b"customer,churned\nC1,0\nC2,1\n"
    write_atomic(src, "data/train.csv", data_v1, mode="wb")
    write_atomic(src, "churn.yaml", manifest("churn"))
    write_atomic(src, "wipe.yaml", manifest("wipe", data=(), cidr="10.60.0.0/16",
                                           delete_data="true"))
    d = Daemon(aviary, src, state)

    o = wait_for(lambda: ready(d, "churn", state="InService"), timeout=40, message="churn Ready")
    wait_for(lambda: ready(d, "wipe", state="InService"), timeout=40, message="wipe Ready")
    bucket = o["bucket"]
    assert bucket.startswith("aviary-churn-") and len(bucket) == len("aviary-churn-") + 12
    assert o["notebookUrl"].startswith("https://churn.notebook.")
    [entry] = o["objects"]
    assert entry["key"] == "data/data/train.csv" and entry["size"] == len(data_v1)

    # The uploaded bytes, and the bucket's settings.
    got = s3.get_object(Bucket=bucket, Key="data/data/train.csv")
    assert got["Body"].read() == data_v1
    assert got["VersionId"] == entry["versionId"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(pab[k] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                                "RestrictPublicBuckets"))
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {"aviary.io/managed-by": "aviary", "aviary.io/training": "churn"}

    # The notebook: type, volume, role with access to this bucket only.
    nb = sm.describe_notebook_instance(NotebookInstanceName="churn")
    assert nb["InstanceType"] == "ml.t3.medium" and nb["VolumeSizeInGB"] == 10
    role = iam.get_role(RoleName="aviary-churn-notebook")["Role"]
    assert nb["RoleArn"] == role["Arn"]
    policy = iam.get_role_policy(RoleName="aviary-churn-notebook",
                                 PolicyName="aviary-bucket-access")["PolicyDocument"]
    if isinstance(policy, str):
        policy = json.loads(urllib.parse.unquote(policy))
    resources = sorted(s["Resource"] for s in policy["Statement"])
    assert resources == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    subnet = ec2.describe_subnets(SubnetIds=[nb["SubnetId"]])["Subnets"][0]
    vpc = ec2.describe_vpcs(VpcIds=[subnet["VpcId"]])["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.50.0.0/16"

    # Re-applying (resyncs every 2 s) uploads nothing and changes nothing.
    emulator.clear_calls()
    wait_for(lambda: len(emulator.calls(operation="HeadObject")) >= 2, timeout=15,
             message="two resyncs of the data")
    assert emulator.calls(mutating=True) == []
    assert emulator.calls(operation="PutObject") == []

    # Changed data: a second version, the first one kept.
    data_v2 = data_v1 + b"C3,0\n"
    write_atomic(src, "data/train.csv", data_v2, mode="wb")
    o = wait_for(lambda: (lambda x: x if x and x["objects"][0]["versionId"] !=
                          entry["versionId"] else None)(d.obj("churn")), timeout=20,
                 message="a new version")
    assert o["objects"][0]["previousVersionId"] == entry["versionId"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="data/data/train.csv")["Versions"]
    assert len(versions) == 2
    old = s3.get_object(Bucket=bucket, Key="data/data/train.csv", VersionId=entry["versionId"])
    assert old["Body"].read() == data_v1
    assert s3.get_object(Bucket=bucket, Key="data/data/train.csv")["Body"].read() == data_v2

    # Stop, then start again.
    write_atomic(src, "churn.yaml", manifest("churn", running="false"))
    wait_for(lambda: ready(d, "churn", state="Stopped"), timeout=30, message="churn stopped")
    assert sm.describe_notebook_instance(
        NotebookInstanceName="churn")["NotebookInstanceStatus"] == "Stopped"
    write_atomic(src, "churn.yaml", manifest("churn", running="true"))
    wait_for(lambda: ready(d, "churn", state="InService"), timeout=30, message="churn started")

    # Deletion: without deleteData the bucket stays (reported), with it it goes.
    wipe_bucket = d.obj("wipe")["bucket"]
    seen = {}

    def gone_after_retained_event():
        o = d.obj("churn")
        if o is not None:
            for e in o.get("events", []):
                if e["reason"] == "DataRetained":
                    seen["event"] = e["message"]
            return None
        return d.obj("wipe") is None

    os.unlink(os.path.join(src, "churn.yaml"))
    os.unlink(os.path.join(src, "wipe.yaml"))
    wait_for(gone_after_retained_event, timeout=40, interval=0.05, message="both deleted")
    assert bucket in seen.get("event", ""), seen
    assert s3.list_object_versions(Bucket=bucket)["Versions"]   # data retained
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_bucket(Bucket=wipe_bucket)
    for name in ("churn", "wipe"):
        with pytest.raises(sm.exceptions.ClientError):
            sm.describe_notebook_instance(NotebookInstanceName=name)
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_role(RoleName=f"aviary-{name}-notebook")
        assert ec2.describe_vpcs(Filters=[{"Name": "tag:aviary.io/training",
                                           "Values": [name]}])["Vpcs"] == []
    assert d.stop() == 0


def test_missing_data_file_is_reported_and_touches_nothing(aviary, emulator, dirs):
    src, state = dirs
    write_atomic(src, "broken.yaml", manifest("broken", data=("data/missing.csv",)))
    result = aviary.run("validate", os.path.join(src, "broken.yaml"))
    assert result.returncode == 1
    assert "broken.yaml:7:" in result.stderr and "spec.data[0].path" in result.stderr
    assert "does not exist" in result.stderr

    emulator.clear_calls()
    d = Daemon(aviary, src, state)

    def invalid():
        o = d.obj("broken")
        for c in (o or {}).get("conditions", []):
            if c["type"] == "Valid" and c["status"] == "False":
                return c
        return None

    c = wait_for(invalid, timeout=15, message="Valid=False")
    assert "broken.yaml:7:" in c["message"] and "data/missing.csv" in c["message"]
    assert "does not exist" in c["message"]
    assert d.obj("broken")["phase"] == "Failed"
    assert emulator.calls() == []   # not a single AWS call for it
    assert d.stop() == 0
