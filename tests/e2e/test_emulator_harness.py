"""The end-to-end harness itself: the emulator fixture starts, answers the
control API, records calls and faults, and stops; the aviary fixture finds
the binary (tests needing it are skipped when it has not been built)."""

import json
import os
import subprocess

import pytest

from harness import find_aviary, wait_for

AWS = "/usr/bin/aws"


def test_emulator_fixture_serves_control_api(emulator):
    health = emulator.health()
    assert health["status"] == "ok" and health["region"] == "us-east-1"
    assert emulator.url.startswith("http://127.0.0.1:")
    assert emulator.set_profile("app:bad", error_rate=0.4)["profiles"]["app:bad"] == \
        {"error_rate": 0.4}
    assert emulator.faults(throttle={"fraction": 0.5})["throttle"]["fraction"] == 0.5
    emulator.clear_faults()
    assert emulator.control("GET", "faults") == {}
    assert emulator.sns() == [] and emulator.webhooks() == []
    assert isinstance(emulator.subscriptions(), list) and isinstance(emulator.weights(), list)
    assert emulator.confirm_subscriptions() == 0
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/harness:1"
    assert emulator.push_image(image, create_repository=True).startswith("sha256:")


@pytest.mark.skipif(not os.path.exists(AWS), reason="Debian awscli not installed")
def test_aws_env_reaches_emulator(emulator, tmp_path):
    env = emulator.aws_env(tmp_path)
    r = subprocess.run([AWS, "--endpoint-url", emulator.url, "sts", "get-caller-identity"],
                       env=env, capture_output=True, text=True, timeout=60)
    calls = emulator.calls(service="sts")
    assert calls and calls[-1]["operation"] == "GetCallerIdentity", r.stderr
    assert calls[-1]["mutating"] is False
    if r.returncode == 0:
        assert json.loads(r.stdout)["Account"] == "123456789012"
    else:  # no sts module loaded: the emulator must say so, not succeed silently
        assert "NotImplemented" in r.stderr


def test_emulator_stops_cleanly(tmp_path):
    from harness import Emulator
    emu = Emulator(tmp_path / "e")
    assert emu.stop() == 0
    assert "awsemu stopped" in emu.log()


def test_wait_for_is_bounded():
    with pytest.raises(AssertionError, match="timed out"):
        wait_for(lambda: False, timeout=0.2, interval=0.05, message="never")
    assert wait_for(lambda: 42, timeout=1) == 42


def test_find_aviary_respects_env(monkeypatch, tmp_path):
    fake = tmp_path / "aviary"
    fake.write_text("#!/bin/sh\necho fake\n")
    fake.chmod(0o755)
    monkeypatch.setenv("AVIARY_BIN", str(fake))
    assert find_aviary() == str(fake)
    monkeypatch.setenv("AVIARY_BIN", str(tmp_path / "missing"))
    assert find_aviary() is None


def test_aviary_binary_runs_against_emulator(aviary):
    """Needs the real binary: skipped with a message when it is not built."""
    result = aviary.run("--help", timeout=30)
    assert result.returncode in (0, 1, 2)
    assert "aviary" in (result.stdout + result.stderr).lower()
    assert aviary.env["AWS_ENDPOINT_URL"] == aviary.emulator.url
