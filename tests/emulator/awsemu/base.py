"""Shared contract between the emulator's core (server, protocols, signatures,
control API) and its service modules (state and behaviour per AWS service).

A service module in awsemu/services/<botocore-name>.py defines one subclass of
Service with SERVICE set to the botocore service name. Each operation is a
method named exactly like the API operation (e.g. ``CreateVpc``) taking
``(self, req, params)``: ``params`` is the request already parsed and validated
against the operation's input shape (plain dicts/lists/str/int/float/bool/
datetime/bytes, keyed by member names as in the botocore model), ``req`` is the
RequestContext. It returns a dict shaped like the operation's output shape
(member names as in the model; the core serializes it per protocol) or raises
AwsError. Operations a service does not implement answer
``NotImplemented``-style errors from the core, never silently succeed.
"""

import datetime
import itertools
import random
import string
import threading
import time

ACCOUNT_ID = "123456789012"


class AwsError(Exception):
    """An AWS error response. ``code`` is AWS's error code (e.g.
    ``InvalidVpcID.NotFound``), ``status`` the HTTP status, ``sender_fault``
    whether it is the caller's fault (Query protocols' <Type>Sender</Type>).
    ``extra`` holds the error structure's other members, keyed by their model
    names (e.g. CloudWatch's ``dashboardValidationMessages``); each protocol
    serializes them where AWS puts them (JSON body, Query/EC2/S3 <Error>)."""

    def __init__(self, code, message, status=400, sender_fault=True, headers=None, extra=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.sender_fault = sender_fault
        self.headers = headers or {}
        self.extra = dict(extra or {})


class Clock:
    """Emulated time. ``now()`` is wall time unless frozen or offset by the
    control API; ``scale`` shortens every simulated delay (0.01 makes a 30 s
    NAT gateway provisioning take 0.3 s). All services read time only here."""

    def __init__(self, delay_scale=1.0):
        self.offset = 0.0
        self.delay_scale = delay_scale

    def now(self):
        return time.time() + self.offset

    def utcnow(self):
        return datetime.datetime.fromtimestamp(self.now(), datetime.timezone.utc)

    def delay(self, seconds):
        """A simulated AWS delay of ``seconds``, scaled for tests."""
        return seconds * self.delay_scale


class RequestContext:
    """What a service handler may know about the request being served."""

    def __init__(self, emulator, service, operation, region, access_key, headers=None,
                 body=b"", path="/", query=None):
        self.emulator = emulator
        self.service = service
        self.operation = operation
        self.region = region
        self.access_key = access_key
        self.headers = headers or {}
        self.body = body
        self.path = path
        self.query = query or {}
        self.request_id = new_request_id()

    @property
    def account(self):
        return ACCOUNT_ID


class Service:
    """Base of every service module. One instance per emulator (all regions;
    services keep region in their keys where AWS is regional)."""

    SERVICE = None  # botocore service name, e.g. "ec2"

    def __init__(self, emulator):
        self.emulator = emulator
        self.lock = emulator.lock  # one lock for all state: simple and safe

    @property
    def clock(self):
        return self.emulator.clock

    def other(self, name):
        """Another service's instance, for cross-service effects (ECS tasks
        registering in ELBv2 target groups, traffic writing CloudWatch data)."""
        return self.emulator.services[name]

    def tick(self):
        """Advance eventual states (pending -> available, tasks starting).
        Called by the core before every request and by a background ticker."""


class Emulator:
    """Process-wide state: services, clock, call log, lock."""

    def __init__(self, region="us-east-1", delay_scale=1.0, seed=0):
        self.region = region
        # seeds the randomness of service modules (ids excepted) and faults
        self.seed = seed
        self.clock = Clock(delay_scale)
        self.lock = threading.RLock()
        self.services = {}
        self.calls = []  # dicts: time, service, operation, status, code, mutating
        # access key id -> {"secret": str, "token": str|None, "expires": float|None}
        # Seeded with the test keys; STS adds temporary ones it issues.
        self.credentials = {
            "AKIDEXAMPLE": {"secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            "token": None, "expires": None},
        }
        # image -> behaviour profile, set through /_emulator/profiles:
        # {"healthy": bool, "error_rate": 0..1, "latency_ms": {"p50": .., "p99": ..},
        #  "cpu": percent, "memory": percent, "start_seconds": float}
        self.profiles = {}
        self.default_profile = {"healthy": True, "error_rate": 0.001,
                                "latency_ms": {"p50": 40.0, "p90": 70.0, "p99": 120.0},
                                "cpu": 30.0, "memory": 40.0, "start_seconds": 5.0}
        # requests per second per load balancer (ARN) or default, /_emulator/traffic
        self.traffic = {"default_rps": 20.0, "per_lb": {}}
        self.sns_publishes = []   # dicts: time, topic_arn, subject, message, attributes
        self.webhooks = []        # dicts: time, name, headers, body (POSTs to /_emulator/webhooks/NAME)
        # Service quotas AWS enforces per region that the emulator models;
        # PUT /_emulator/quotas raises them (as a quota increase would).
        self.quotas = {"elbv2.load_balancers": 50}

    def profile(self, image):
        """The behaviour profile of a container image (defaults filled in)."""
        merged = dict(self.default_profile)
        merged.update(self.profiles.get(image, {}))
        return merged

    def register(self, service_cls):
        self.services[service_cls.SERVICE] = service_cls(self)


_ids = itertools.count(1)
_rand = random.Random()


def hex_id(prefix, length=17):
    """An AWS-style id such as ``vpc-0a1b2c3d4e5f67890`` (17 hex digits)."""
    return prefix + "-" + "".join(_rand.choice("0123456789abcdef") for _ in range(length))


def new_request_id():
    h = "".join(_rand.choice("0123456789abcdef") for _ in range(32))
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def rand_suffix(length=16, alphabet=string.ascii_lowercase + string.digits):
    return "".join(_rand.choice(alphabet) for _ in range(length))


def arn(service, region, resource, account=ACCOUNT_ID, partition="aws"):
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"
