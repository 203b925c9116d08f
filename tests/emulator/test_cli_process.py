"""awscli talks to the emulator; run-emulator starts on a free port, writes
its port file, serves, and stops cleanly on SIGTERM."""

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from tiny import TINY

HERE = os.path.dirname(os.path.abspath(__file__))
AWS = "/usr/bin/aws"


@pytest.fixture
def tiny(make_emulator):
    return make_emulator(load_services=False, extra_services=TINY)


def aws(emu, *args, env=None):
    cmd = [AWS, "--endpoint-url", emu.url, "--output", "json", *args]
    return subprocess.run(cmd, env=env or emu.cli_env(), capture_output=True, text=True,
                          timeout=60)


@pytest.mark.skipif(not os.path.exists(AWS), reason="Debian awscli not installed")
def test_awscli_round_trips(tiny):
    r = aws(tiny, "ecs", "list-clusters")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["clusterArns"] == ["arn:aws:ecs:us-east-1:123456789012:cluster/tiny"]
    r = aws(tiny, "ec2", "describe-vpcs")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Vpcs"][0]["Tags"] == [{"Key": "Name", "Value": "tiny"}]
    r = aws(tiny, "sts", "get-caller-identity")
    assert r.returncode == 0 and json.loads(r.stdout)["Account"] == "123456789012", r.stderr
    r = aws(tiny, "iam", "create-role", "--role-name", "cli", "--assume-role-policy-document", "{}")
    assert r.returncode == 0 and json.loads(r.stdout)["Role"]["RoleName"] == "cli", r.stderr
    r = aws(tiny, "s3api", "list-buckets")
    assert r.returncode == 0 and json.loads(r.stdout)["Buckets"] == [{"Name": "tiny"}], r.stderr


@pytest.mark.skipif(not os.path.exists(AWS), reason="Debian awscli not installed")
def test_awscli_errors(tiny):
    env = tiny.cli_env()
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    r = aws(tiny, "sts", "get-caller-identity", env=env)
    assert r.returncode != 0 and "SignatureDoesNotMatch" in r.stderr
    r = aws(tiny, "ecs", "describe-clusters", "--clusters", "x")
    assert r.returncode != 0 and "ClusterNotFoundException" in r.stderr
    r = aws(tiny, "ecs", "list-services")
    assert r.returncode != 0 and "NotImplemented" in r.stderr and "ListServices" in r.stderr


def test_run_emulator_process(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen([os.path.join(HERE, "run-emulator"), "--port", "0", "--port-file",
                             str(port_file), "--region", "us-east-1", "--delay-scale", "0.05",
                             "--seed", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert port_file.exists(), proc.stderr.read() if proc.poll() is not None else "timeout"
        port = int(port_file.read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/health", timeout=5) as r:
            health = json.loads(r.read())
        assert health["status"] == "ok" and health["region"] == "us-east-1"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert f"http://127.0.0.1:{port}" in out and "stopped" in out
        assert not port_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
