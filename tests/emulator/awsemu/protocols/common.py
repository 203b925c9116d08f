"""Shared helpers of the protocol modules: the raw request, scalar
conversions between wire strings and Python values, timestamps."""

import base64
import binascii
import datetime
import email.utils
import urllib.parse


class RawRequest:
    """An HTTP request as received. ``headers`` maps lower-case names to the
    list of received values; ``raw_path``/``raw_query`` are exactly as sent."""

    def __init__(self, method, target, headers, body):
        self.method = method.upper()
        raw_path, _, raw_query = target.partition("?")
        self.raw_path = raw_path or "/"
        self.raw_query = raw_query
        self.path = urllib.parse.unquote(self.raw_path)
        self.query = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        vals = self.headers.get(name.lower())
        if not vals:
            return default
        return ",".join(vals)

    def query_dict(self):
        return dict(self.query)

    def form(self):
        """The url-encoded form of a Query/EC2 POST body (or GET query)."""
        if self.method == "GET" or not self.body:
            return dict(self.query)
        text = self.body.decode("utf-8", errors="replace")
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


class BadValue:
    """A wire value that could not be converted to its shape's type. Kept in
    the parsed params so that validation reports it as a type error."""

    def __init__(self, raw, type_name):
        self.raw = raw
        self.type_name = type_name

    def __repr__(self):
        return f"BadValue({self.raw!r}, {self.type_name})"


def parse_timestamp(value, fmt=None):
    """A timestamp from a wire string or number (ISO 8601, RFC 822 or epoch)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if not isinstance(value, str):
        return BadValue(value, "timestamp")
    text = value.strip()
    try:
        return datetime.datetime.fromtimestamp(float(text), datetime.timezone.utc)
    except ValueError:
        pass
    try:
        dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return dt
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return BadValue(value, "timestamp")


def scalar_from_string(text, shape):
    """Convert a string from a query string, form, header or XML element to
    the Python type of ``shape`` (a BadValue when it does not convert)."""
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("float", "double"):
            return float(text)
    except ValueError:
        return BadValue(text, t)
    if t == "boolean":
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        return BadValue(text, t)
    if t == "timestamp":
        return parse_timestamp(text, shape.serialization.get("timestampFormat"))
    if t == "blob":
        return decode_base64(text)
    return text


def decode_base64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return BadValue(text, "blob")


def as_datetime(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if isinstance(value, str):
        parsed = parse_timestamp(value)
        if isinstance(parsed, datetime.datetime):
            return parsed
    raise TypeError(f"not a timestamp: {value!r}")


def format_timestamp(value, fmt):
    """Serialize a timestamp: fmt is 'iso8601', 'rfc822' or 'unixTimestamp'."""
    dt = as_datetime(value).astimezone(datetime.timezone.utc)
    if fmt == "unixTimestamp":
        ts = dt.timestamp()
        return int(ts) if ts == int(ts) else round(ts, 3)
    if fmt == "rfc822":
        return email.utils.format_datetime(dt, usegmt=True)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def text_of(value, shape):
    """A scalar as the text of an XML element, header or query value."""
    t = shape.type_name
    if t == "boolean":
        return "true" if value else "false"
    if t == "timestamp":
        return str(format_timestamp(value, shape.serialization.get("timestampFormat", "iso8601")))
    if t == "blob":
        if isinstance(value, str):
            value = value.encode()
        return base64.b64encode(value).decode()
    if t in ("float", "double"):
        return repr(float(value))
    return str(value)


def serialized_name(shape, default):
    return shape.serialization.get("name", default)


def lower_first(name):
    return name[:1].lower() + name[1:]
