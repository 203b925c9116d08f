"""pytest fixtures of the end-to-end tests: the AWS emulator on a free
loopback port, the aviary binary, and a runner tying them together."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Aviary, Emulator, find_aviary  # noqa: E402

NO_BINARY = ("aviary binary not found (set AVIARY_BIN, or build build-asan/aviary or "
             "build/aviary): skipping the tests that run it")


@pytest.fixture
def emulator(tmp_path):
    """A fresh emulator process (delay scale 0.02) for one test."""
    emu = Emulator(tmp_path / "emulator", delay_scale=float(os.environ.get(
        "AVIARY_E2E_DELAY_SCALE", "0.02")))
    yield emu
    emu.stop()


@pytest.fixture
def aviary_bin():
    path = find_aviary()
    if path is None:
        pytest.skip(NO_BINARY)
    return path


@pytest.fixture
def aviary(aviary_bin, emulator, tmp_path):
    """Runs aviary with AWS_ENDPOINT_URL etc. pointing at ``emulator``."""
    runner = Aviary(aviary_bin, emulator, tmp_path / "aviary")
    yield runner
    runner.stop()
