"""REST-XML protocol (S3): operation matching against the models' request
URI templates, request parsing by member location, XML/blob responses."""

import re
import urllib.parse
import xml.etree.ElementTree as ET

from ..base import AwsError
from .common import format_timestamp, scalar_from_string, serialized_name, text_of
from .xmlout import add_error_members, fill_structure, to_bytes

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"

# Root element of responses without a payload member: AWS's names (the model
# does not carry them; botocore's parser ignores the root's name).
RESPONSE_ROOTS = {
    "ListObjects": "ListBucketResult", "ListObjectsV2": "ListBucketResult",
    "ListObjectVersions": "ListVersionsResult", "ListBuckets": "ListAllMyBucketsResult",
    "GetBucketVersioning": "VersioningConfiguration", "GetBucketTagging": "Tagging",
    "GetObjectTagging": "Tagging", "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult", "ListParts": "ListPartsResult",
    "ListMultipartUploads": "ListMultipartUploadsResult", "DeleteObjects": "DeleteResult",
    "GetBucketLocation": "LocationConstraint", "GetBucketAcl": "AccessControlPolicy",
    "GetObjectAcl": "AccessControlPolicy",
}


class _Template:
    def __init__(self, op_model):
        self.op = op_model
        uri = op_model.http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        self.markers = [tuple(p.partition("=")[::2]) for p in query.split("&") if p]
        self.labels = []
        pattern = ""
        for seg in path.split("/")[1:]:
            m = re.fullmatch(r"\{([^}+]+)(\+?)\}", seg)
            if m:
                self.labels.append(m.group(1))
                pattern += "/(.+)" if m.group(2) else "/([^/]+)"
            else:
                pattern += "/" + re.escape(seg)
        if pattern in ("", "/"):
            pattern = "/"
        elif len(self.labels) == 1 and path.count("/") == 1:
            pattern += "/?"  # "/bucket/" addresses the bucket too
        self.regex = re.compile("^" + pattern + "$")
        shape = op_model.input_shape
        self.required_query, self.required_headers = [], []
        if shape is not None:
            for name in shape.required_members:
                member = shape.members[name]
                loc = member.serialization.get("location")
                if loc == "querystring":
                    self.required_query.append(member.serialization.get("name", name))
                elif loc == "header":
                    self.required_headers.append(member.serialization.get("name", name).lower())

    def match(self, method, path, query, headers):
        """(score, labels) when this operation fits the request, else None."""
        if self.op.http.get("method", "GET") != method:
            return None
        m = self.regex.match(path)
        if not m:
            return None
        for key, value in self.markers:
            if key not in query or (value and query[key] != value):
                return None
        for key in self.required_query:
            if key not in query:
                return None
        for key in self.required_headers:
            if key not in headers:
                return None
        labels = {n: urllib.parse.unquote(v) for n, v in zip(self.labels, m.groups())}
        score = 10 * len(self.markers) + len(self.required_query) + len(self.required_headers)
        return score, labels


_templates = {}


def route_path(raw):
    """The path-style path of a request (virtual-hosted bucket.localhost
    requests get the bucket prepended)."""
    host = (raw.header("host") or "").rsplit(":", 1)[0]
    if host.endswith(".localhost"):
        return "/" + host[: -len(".localhost")] + raw.raw_path
    return raw.raw_path


def operation_name(model, raw):
    """The most specific operation whose method, URI template, query markers
    and required query/header members fit the request; sets raw.labels."""
    key = model.service_name
    if key not in _templates:
        _templates[key] = [_Template(model.operation_model(n)) for n in model.operation_names]
    query = raw.query_dict()
    best = None
    for tpl in _templates[key]:
        hit = tpl.match(raw.method, route_path(raw), query, raw.headers)
        # Equal fits (GetBucketLifecycle and GetBucketLifecycleConfiguration
        # share a URI): the current operation, not the deprecated one.
        if hit and (best is None or hit[0] > best[0] or
                    (hit[0] == best[0] and best[3] and not tpl.op.deprecated)):
            best = (hit[0], tpl.op.name, hit[1], tpl.op.deprecated)
    if best is None:
        return None
    raw.labels = best[2]
    return best[1]


def parse_request(model, op_model, raw):
    shape = op_model.input_shape
    if shape is None:
        return {}, []
    labels = getattr(raw, "labels", {})
    query = {}
    for k, v in raw.query:
        query.setdefault(k, []).append(v)
    params, unknown = {}, []
    payload = shape.serialization.get("payload")
    for key, member in shape.members.items():
        loc = member.serialization.get("location")
        name = member.serialization.get("name", key)
        if loc == "uri":
            if name in labels:
                params[key] = scalar_from_string(labels[name], member)
        elif loc == "querystring":
            if member.type_name == "map":
                params[key] = {k: v[0] for k, v in query.items()}
            elif name in query:
                if member.type_name == "list":
                    params[key] = [scalar_from_string(v, member.member) for v in query[name]]
                else:
                    params[key] = scalar_from_string(query[name][0], member)
        elif loc == "header":
            value = raw.header(name)
            if value is not None:
                params[key] = _header_value(value, member)
        elif loc == "headers":
            prefix = name.lower()
            found = {h[len(prefix):]: ",".join(v) for h, v in raw.headers.items()
                     if h.startswith(prefix)}
            if found:
                params[key] = found
        elif key == payload:
            if member.type_name in ("blob", "string"):
                params[key] = raw.body if member.type_name == "blob" else raw.body.decode()
            elif raw.body.strip():
                params[key] = _parse_xml_payload(raw.body, member, key, unknown)
    return params, unknown


def _header_value(text, shape):
    t = shape.type_name
    if t == "list":
        return [scalar_from_string(p.strip(), shape.member) for p in text.split(",")]
    if t == "string" and shape.serialization.get("jsonvalue"):
        return text
    return scalar_from_string(text, shape)


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _parse_xml_payload(body, member, key, unknown):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise AwsError("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema")
    expected = member.serialization.get("name", member.name)
    if _local(root.tag) != expected:
        raise AwsError("MalformedXML", "The XML you provided was not well-formed or did not "
                       "validate against our published schema")
    return _from_xml(root, member, expected, unknown)


def _from_xml(elem, shape, path, unknown):
    t = shape.type_name
    if t == "structure":
        by_tag = {}
        for key, member in shape.members.items():
            tag = serialized_name(member, key)
            if member.type_name == "list" and member.serialization.get("flattened"):
                tag = member.member.serialization.get("name", tag)
            by_tag[tag] = (key, member)
        out = {}
        for child in elem:
            tag = _local(child.tag)
            if tag not in by_tag:
                unknown.append(f"{path}.{tag}")
                continue
            key, member = by_tag[tag]
            if member.type_name == "list" and member.serialization.get("flattened"):
                out.setdefault(key, []).append(_from_xml(child, member.member, f"{path}.{tag}", unknown))
            else:
                out[key] = _from_xml(child, member, f"{path}.{tag}", unknown)
        for key, member in shape.members.items():
            if member.serialization.get("xmlAttribute"):
                for attr, value in elem.attrib.items():
                    if _local(attr) == serialized_name(member, key):
                        out[key] = value
        return out
    if t == "list":
        return [_from_xml(c, shape.member, path, unknown) for c in elem]
    if t == "map":
        kname = serialized_name(shape.key, "key")
        vname = serialized_name(shape.value, "value")
        out = {}
        for entry in elem:
            parts = {_local(c.tag): c for c in entry}
            if kname in parts:
                out[parts[kname].text or ""] = _from_xml(parts[vname], shape.value, path, unknown) \
                    if vname in parts else None
        return out
    return scalar_from_string(elem.text or "", shape)


def _quote_etags(value):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "ETag" and isinstance(v, str) and not v.startswith('"'):
                v = f'"{v}"'
            out[k] = _quote_etags(v)
        return out
    if isinstance(value, list):
        return [_quote_etags(v) for v in value]
    return value


def _header_text(value, shape):
    if shape.type_name == "timestamp":
        return format_timestamp(value, shape.serialization.get("timestampFormat", "rfc822"))
    if shape.type_name == "list":
        return ",".join(text_of(v, shape.member) for v in value)
    return text_of(value, shape)


def serialize_response(model, op_model, result, ctx):
    result = _quote_etags(result or {})
    status = op_model.http.get("responseCode", 200)
    if op_model.name == "GetObject" and result.get("ContentRange"):
        status = 206  # a range was served: Partial Content, like S3
    headers = {"x-amz-request-id": ctx.request_id, "x-amz-id-2": ctx.request_id}
    body = b""
    shape = op_model.output_shape
    if shape is None:
        return status, headers, body
    for key, member in shape.members.items():
        if result.get(key) is None:
            continue
        loc = member.serialization.get("location")
        name = member.serialization.get("name", key)
        if loc == "header":
            headers[name] = _header_text(result[key], member)
        elif loc == "headers":
            for k, v in result[key].items():
                headers[name + k] = str(v)
        elif loc == "statusCode":
            status = int(result[key])
    payload = shape.serialization.get("payload")
    if payload:
        member = shape.members[payload]
        value = result.get(payload)
        if member.type_name in ("blob", "string"):
            if value is not None:
                body = value if isinstance(value, bytes) else str(value).encode()
        elif value is not None:
            root = ET.Element(member.serialization.get("name", member.name), {"xmlns": S3_NAMESPACE})
            fill_structure(root, value, member)
            body = to_bytes(root)
            headers["Content-Type"] = "application/xml"
    elif any(not m.serialization.get("location") for m in shape.members.values()):
        root = ET.Element(RESPONSE_ROOTS.get(op_model.name, op_model.name + "Result"),
                          {"xmlns": S3_NAMESPACE})
        fill_structure(root, result, shape, skip_locations=True)
        body = to_bytes(root)
        headers["Content-Type"] = "application/xml"
    return status, headers, body


def serialize_error(model, err, request_id, method="GET"):
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id}
    headers.update(err.headers)
    if method == "HEAD":
        return err.status, headers, b""
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = err.code
    ET.SubElement(root, "Message").text = err.message
    add_error_members(root, model, err)
    ET.SubElement(root, "RequestId").text = request_id
    headers["Content-Type"] = "application/xml"
    return err.status, headers, to_bytes(root)
