"""Fixtures of the emulator self-tests (see emutest.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from emutest import Running  # noqa: E402


@pytest.fixture
def make_emulator():
    started = []

    def make(**kwargs):
        emu = Running(**kwargs)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(make_emulator):
    """An emulator with the service modules of awsemu/services/ loaded."""
    return make_emulator()
