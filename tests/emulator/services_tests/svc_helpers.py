"""Shared fixtures for service tests: an Emulator with this helper's services
registered, a request context per service, and a bounded wait on the
emulated clock."""

import time

from awsemu import base
from awsemu.services.ec2 import Ec2Service
from awsemu.services.ecr import EcrService
from awsemu.services.elbv2 import Elbv2Service
from awsemu.services.iam import IamService
from awsemu.services.logs import LogsService
from awsemu.services.sts import StsService


def make_emulator(delay_scale=0.001):
    emu = base.Emulator(region="us-east-1", delay_scale=delay_scale)
    for cls in (Ec2Service, Elbv2Service, IamService, StsService, EcrService, LogsService):
        emu.register(cls)
    return emu


def ctx(emu, service, region="us-east-1", access_key="AKIDEXAMPLE"):
    return base.RequestContext(emu, service, "Test", region, access_key)


def advance(emu, seconds):
    """Move the emulated clock forward (instead of sleeping) and tick."""
    emu.clock.offset += seconds
    for svc in emu.services.values():
        svc.tick()


def wait_for(predicate, timeout=5.0):
    """Poll ``predicate`` (bounded); return its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.01)
        value = predicate()
    return value


def tags(*pairs):
    return [{"Key": k, "Value": v} for k, v in pairs]
