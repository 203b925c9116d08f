"""AWS Query (ELBv2, IAM, SNS, STS, CloudWatch) and EC2 protocols: form
parsing into the input shape, XML responses and errors."""

import xml.etree.ElementTree as ET

from ..base import AwsError
from .common import BadValue, scalar_from_string
from .xmlout import add_error_members, fill_structure, to_bytes


def _member_name(model, member, key):
    """The name a member has on the wire (botocore serialize.py rules)."""
    if model.metadata["protocol"] == "ec2":
        if "queryName" in member.serialization:
            return member.serialization["queryName"]
        if "name" in member.serialization:
            name = member.serialization["name"]
            return name[0].upper() + name[1:]
        return key
    return member.serialization.get("name", key)


def operation_name(model, raw):
    return raw.form().get("Action")


def parse_request(model, op_model, raw):
    """(params, unknown parameter names) of a Query/EC2 request."""
    form = raw.form()
    if form.get("Version") != model.metadata["apiVersion"]:
        raise AwsError("InvalidParameterValue" if model.metadata["protocol"] == "ec2"
                       else "InvalidAction",
                       f"Could not find operation {form.get('Action')} for version "
                       f"{form.get('Version')}")
    flat = {k: v for k, v in form.items() if k not in ("Action", "Version")}
    used = set()
    shape = op_model.input_shape
    params = {}
    if shape is not None:
        params = _parse(model, flat, shape, "", used) or {}
    unknown = sorted(k for k in flat if k not in used)
    return params, unknown


def _present(flat, prefix):
    dotted = prefix + "."
    return any(k == prefix or k.startswith(dotted) for k in flat)


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _parse(model, flat, shape, prefix, used):
    t = shape.type_name
    if t == "structure":
        out = {}
        for key, member in shape.members.items():
            mp = _join(prefix, _member_name(model, member, key))
            if _present(flat, mp):
                out[key] = _parse(model, flat, member, mp, used)
        if prefix in flat and not out:  # a scalar where a structure belongs
            used.add(prefix)
            return BadValue(flat[prefix], t)
        return out
    if t == "list":
        if flat.get(prefix) == "":
            used.add(prefix)
            return []
        if model.metadata["protocol"] == "ec2":
            list_prefix = prefix
        elif shape.serialization.get("flattened"):
            list_prefix = prefix
            if shape.member.serialization.get("name"):
                list_prefix = ".".join(prefix.split(".")[:-1] + [shape.member.serialization["name"]])
        else:
            list_prefix = _join(prefix, shape.member.serialization.get("name", "member"))
        indices = set()
        for k in flat:
            if k.startswith(list_prefix + "."):
                head = k[len(list_prefix) + 1:].split(".", 1)[0]
                if head.isdigit():
                    indices.add(int(head))
        if prefix in flat and not indices:
            used.add(prefix)
            return BadValue(flat[prefix], t)
        return [_parse(model, flat, shape.member, f"{list_prefix}.{i}", used)
                for i in sorted(indices)]
    if t == "map":
        base = prefix if shape.serialization.get("flattened") else _join(prefix, "entry")
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        indices = set()
        for k in flat:
            if k.startswith(base + "."):
                head = k[len(base) + 1:].split(".", 1)[0]
                if head.isdigit():
                    indices.add(int(head))
        out = {}
        for i in sorted(indices):
            kp, vp = f"{base}.{i}.{key_name}", f"{base}.{i}.{value_name}"
            if kp in flat:
                used.add(kp)
                out[flat[kp]] = _parse(model, flat, shape.value, vp, used) if _present(flat, vp) else None
        return out
    if prefix in flat:
        used.add(prefix)
        return scalar_from_string(flat[prefix], shape)
    return None


def _namespace(model):
    ns = model.metadata.get("xmlNamespace") or ""
    if ns and not ns.endswith("/"):
        ns += "/"
    return ns


def serialize_response(model, op_model, result, ctx):
    name = op_model.name
    root = ET.Element(f"{name}Response", {"xmlns": _namespace(model)})
    shape = op_model.output_shape
    if model.metadata["protocol"] == "ec2":
        ET.SubElement(root, "requestId").text = ctx.request_id
        if shape is not None:
            fill_structure(root, result or {}, shape)
    else:
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper") or f"{name}Result"
            res = ET.SubElement(root, wrapper)
            fill_structure(res, result or {}, shape)
        meta = ET.SubElement(root, "ResponseMetadata")
        ET.SubElement(meta, "RequestId").text = ctx.request_id
    headers = {"Content-Type": "text/xml;charset=UTF-8", "x-amzn-RequestId": ctx.request_id}
    return 200, headers, to_bytes(root)


def serialize_error(model, err, request_id, method="POST"):
    if model.metadata["protocol"] == "ec2":
        root = ET.Element("Response")
        errors = ET.SubElement(root, "Errors")
        e = ET.SubElement(errors, "Error")
        ET.SubElement(e, "Code").text = err.code
        ET.SubElement(e, "Message").text = err.message
        add_error_members(e, model, err)
        ET.SubElement(root, "RequestID").text = request_id
    else:
        root = ET.Element("ErrorResponse", {"xmlns": _namespace(model)})
        e = ET.SubElement(root, "Error")
        ET.SubElement(e, "Type").text = "Sender" if err.sender_fault else "Receiver"
        ET.SubElement(e, "Code").text = err.code
        ET.SubElement(e, "Message").text = err.message
        add_error_members(e, model, err)
        ET.SubElement(root, "RequestId").text = request_id
    headers = {"Content-Type": "text/xml;charset=UTF-8", "x-amzn-RequestId": request_id}
    headers.update(err.headers)
    return err.status, headers, to_bytes(root)
