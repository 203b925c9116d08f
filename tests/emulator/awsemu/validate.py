"""Validation of parsed parameters against an operation's input shape:
required members, unknown members, types, enums, lengths, ranges, patterns.
Returns the problems; codes.py turns them into the error AWS would send."""

import datetime
import re

from .protocols.common import BadValue


class Problem:
    """One constraint violation. ``path`` is a list of member names and
    1-based list indices from the input root."""

    def __init__(self, kind, path, value=None, detail=""):
        self.kind = kind  # missing | unknown | type | enum | length | range | pattern
        self.path = path
        self.value = value
        self.detail = detail

    def __repr__(self):
        return f"Problem({self.kind}, {self.path}, {self.detail})"


_PY_TYPES = {
    "string": (str,), "integer": (int,), "long": (int,), "float": (int, float),
    "double": (int, float), "boolean": (bool,), "timestamp": (datetime.datetime,),
    "blob": (bytes, bytearray), "structure": (dict,), "list": (list,), "map": (dict,),
}

_pattern_cache = {}


def _pattern(text):
    if text not in _pattern_cache:
        try:
            _pattern_cache[text] = re.compile(text, re.DOTALL)
        except re.error:
            _pattern_cache[text] = None  # Java-only syntax: not checked
    return _pattern_cache[text]


def validate(params, shape, unknown=(), check_patterns=True):
    """All problems of ``params`` against ``shape``; ``unknown`` lists wire
    names the parser could not place (reported first, as AWS does)."""
    problems = [Problem("unknown", [u]) for u in unknown]
    if shape is not None:
        _check(params if params is not None else {}, shape, [], problems, check_patterns)
    return problems


def _check(value, shape, path, out, patterns):
    t = shape.type_name
    if isinstance(value, BadValue):
        out.append(Problem("type", path, value.raw, t))
        return
    if not isinstance(value, _PY_TYPES[t]) or (t in ("integer", "long", "float", "double")
                                               and isinstance(value, bool)):
        out.append(Problem("type", path, value, t))
        return
    meta = shape.metadata
    if t == "structure":
        for name in shape.required_members:
            if value.get(name) is None:
                out.append(Problem("missing", path + [name]))
        for name, item in value.items():
            if name not in shape.members:
                out.append(Problem("unknown", path + [name]))
            elif item is not None:
                _check(item, shape.members[name], path + [name], out, patterns)
        return
    if t in ("string", "blob", "list", "map"):
        size = len(value)
        if "min" in meta and size < meta["min"]:
            out.append(Problem("length", path, value,
                               f"Member must have length greater than or equal to {meta['min']}"))
        if "max" in meta and size > meta["max"]:
            out.append(Problem("length", path, value,
                               f"Member must have length less than or equal to {meta['max']}"))
    if t == "list":
        for i, item in enumerate(value, 1):
            _check(item, shape.member, path + [i], out, patterns)
    elif t == "map":
        for k, v in value.items():
            _check(k, shape.key, path + [k], out, patterns)
            if v is not None:
                _check(v, shape.value, path + [k], out, patterns)
    elif t == "string":
        if shape.enum and value not in shape.enum:
            out.append(Problem("enum", path, value,
                               "Member must satisfy enum value set: [" + ", ".join(shape.enum) + "]"))
        if patterns and meta.get("pattern"):
            rx = _pattern(meta["pattern"])
            anchored = meta["pattern"].startswith("^") or meta["pattern"].endswith("$")
            ok = rx is None or (rx.search(value) if anchored else rx.fullmatch(value))
            if not ok:
                out.append(Problem("pattern", path, value,
                                   "Member must satisfy regular expression pattern: " + meta["pattern"]))
    elif t in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            out.append(Problem("range", path, value,
                               f"Member must have value greater than or equal to {meta['min']}"))
        if "max" in meta and value > meta["max"]:
            out.append(Problem("range", path, value,
                               f"Member must have value less than or equal to {meta['max']}"))
