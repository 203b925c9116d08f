"""Every operation aviary uses (aws/api/operations.txt) round-trips through
the emulator with boto3: the request is routed, signed, parsed and validated
into exactly the parameters boto3 sent, and a response using every output
member is serialized so that boto3 parses back the same values. With no
service module the same calls get a 501 NotImplemented that boto3 parses."""

import os

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore import xform_name

from awsemu.base import Service
from samples import SKIP_MEMBERS, normalize, sample

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def operations():
    ops = []
    with open(os.path.join(ROOT, "aws", "api", "operations.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                service, op = line.split()
                ops.append((service, op))
    return ops


OPERATIONS = operations()
_session = botocore.session.get_session()


def echo_services(captured):
    """Service classes answering every operation with a full sample output."""
    classes = []
    for name in sorted({s for s, _ in OPERATIONS}):
        model = _session.get_service_model(name)

        class Echo(Service):
            SERVICE = name
            MODEL = model

            def __getattr__(self, op):
                if not op[:1].isupper() or op not in self.MODEL.operation_names:
                    raise AttributeError(op)

                def handler(req, params):
                    captured[(self.SERVICE, op)] = params
                    out = self.MODEL.operation_model(op).output_shape
                    return sample(out, s3=self.SERVICE == "s3") if out is not None else {}
                return handler

        classes.append(Echo)
    return classes


def strip_etag_quotes(value):
    if isinstance(value, dict):
        return {k: (v.strip('"') if k == "ETag" and isinstance(v, str) else strip_etag_quotes(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [strip_etag_quotes(v) for v in value]
    return value


@pytest.fixture(scope="module")
def echo():
    from emutest import Running
    captured = {}
    emu = Running(load_services=False, extra_services=echo_services(captured),
                  check_patterns=False)
    emu.captured = captured
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def bare():
    from emutest import Running
    emu = Running(load_services=False, check_patterns=False)
    yield emu
    emu.stop()


def call(emu, service, op):
    model = _session.get_service_model(service)
    op_model = model.operation_model(op)
    params = sample(op_model.input_shape, s3=service == "s3") if op_model.input_shape else {}
    client = emu.client(service)
    response = getattr(client, xform_name(op))(**params)
    return params, response, op_model


@pytest.mark.parametrize("service,op", OPERATIONS, ids=[f"{s}-{o}" for s, o in OPERATIONS])
def test_roundtrip(echo, service, op):
    params, response, op_model = call(echo, service, op)
    got = dict(echo.captured[(service, op)])
    if service == "s3":  # botocore adds Content-MD5/checksums of its own
        for key in SKIP_MEMBERS:
            got.pop(key, None)
    assert normalize(got) == normalize(params)
    response.pop("ResponseMetadata")
    if op_model.output_shape is None:
        assert response == {}
        return
    expected = sample(op_model.output_shape, s3=service == "s3")
    if "Body" in response and hasattr(response["Body"], "read"):
        response["Body"] = response["Body"].read()
    if service == "s3":
        # Content-Length is the transport's; botocore reads ETags verbatim.
        expected.pop("ContentLength", None)
        response.pop("ContentLength", None)
        response = strip_etag_quotes(response)
    assert normalize(response) == normalize(expected)


@pytest.mark.parametrize("service,op", OPERATIONS, ids=[f"{s}-{o}" for s, o in OPERATIONS])
def test_not_implemented_parses(bare, service, op):
    with pytest.raises(ClientError) as info:
        call(bare, service, op)
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501
    if not op.startswith("Head"):
        assert err["Error"]["Code"] == "NotImplemented"
        assert op in err["Error"]["Message"]
    calls = [c for c in bare.emulator.calls if c["operation"] == op and c["service"] == service]
    assert calls and calls[-1]["status"] == 501
