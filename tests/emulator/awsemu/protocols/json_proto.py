"""AWS JSON 1.0/1.1 protocol (ECS, ECR, Logs, Application Auto Scaling,
SageMaker): X-Amz-Target routing, JSON body parsing, responses and errors."""

import base64
import json

from ..base import AwsError
from .common import BadValue, decode_base64, format_timestamp, parse_timestamp, serialized_name


def operation_name(model, raw):
    """The operation named by X-Amz-Target (``Prefix.Operation``), or None."""
    target = raw.header("x-amz-target") or ""
    prefix, _, op = target.rpartition(".")
    if prefix != model.metadata.get("targetPrefix"):
        return None
    return op if op in model.operation_names else None


def target_prefix(raw):
    target = raw.header("x-amz-target") or ""
    return target.rpartition(".")[0] or None


def parse_request(model, op_model, raw):
    """(params, unknown member paths) of a JSON request body."""
    shape = op_model.input_shape
    if not raw.body.strip():
        doc = {}
    else:
        try:
            doc = json.loads(raw.body)
        except ValueError as exc:
            raise AwsError("SerializationException", f"Malformed JSON body: {exc}")
    if shape is None:
        return {}, []
    if not isinstance(doc, dict):
        raise AwsError("SerializationException", "Request body must be a JSON object")
    unknown = []
    return _from_json(doc, shape, "", unknown), unknown


def _from_json(value, shape, path, unknown):
    t = shape.type_name
    if value is None:
        return None
    if t == "structure":
        if not isinstance(value, dict):
            return BadValue(value, t)
        names = {serialized_name(m, k): k for k, m in shape.members.items()}
        out = {}
        for key, item in value.items():
            member = names.get(key)
            if member is None:
                unknown.append(f"{path}{key}")
                continue
            out[member] = _from_json(item, shape.members[member], f"{path}{key}.", unknown)
        return out
    if t == "list":
        if not isinstance(value, list):
            return BadValue(value, t)
        return [_from_json(v, shape.member, f"{path}{i}.", unknown) for i, v in enumerate(value)]
    if t == "map":
        if not isinstance(value, dict):
            return BadValue(value, t)
        return {k: _from_json(v, shape.value, f"{path}{k}.", unknown) for k, v in value.items()}
    if t == "timestamp":
        return parse_timestamp(value)
    if t == "blob":
        return decode_base64(value) if isinstance(value, str) else BadValue(value, t)
    return value


def _to_json(value, shape):
    t = shape.type_name
    if t == "structure":
        out = {}
        for key, member in shape.members.items():
            if key in value and value[key] is not None:
                out[serialized_name(member, key)] = _to_json(value[key], member)
        return out
    if t == "list":
        return [_to_json(v, shape.member) for v in value]
    if t == "map":
        return {k: _to_json(v, shape.value) for k, v in value.items()}
    if t == "timestamp":
        return format_timestamp(value, shape.serialization.get("timestampFormat", "unixTimestamp"))
    if t == "blob":
        if isinstance(value, str):
            value = value.encode()
        return base64.b64encode(value).decode()
    if t in ("integer", "long"):
        return int(value)
    if t in ("float", "double"):
        return float(value)
    if t == "boolean":
        return bool(value)
    return value


def _content_type(model):
    return "application/x-amz-json-" + model.metadata.get("jsonVersion", "1.0")


def serialize_response(model, op_model, result, ctx):
    """(status, headers, body) of a successful call."""
    shape = op_model.output_shape
    doc = _to_json(result or {}, shape) if shape is not None else {}
    body = json.dumps(doc).encode()
    headers = {"Content-Type": _content_type(model), "x-amzn-RequestId": ctx.request_id}
    return 200, headers, body


def serialize_error(model, err, request_id, method="POST"):
    doc = {"__type": err.code, "message": err.message}
    if err.extra:
        try:
            shape = model.shape_for_error_code(err.code)
        except Exception:  # unmodeled code
            shape = None
        for key, value in err.extra.items():
            if value is None or key.lower() == "message":
                continue
            member = shape.members.get(key) if shape is not None else None
            doc[serialized_name(member, key) if member is not None else key] = \
                _to_json(value, member) if member is not None else value
    body = json.dumps(doc, default=str).encode()
    headers = {"Content-Type": _content_type(model), "x-amzn-RequestId": request_id,
               "x-amzn-ErrorType": err.code}
    headers.update(err.headers)
    return err.status, headers, body
