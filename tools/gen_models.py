#!/usr/bin/python3
"""Generates aws/models_gen.c, the compact AWS service model tables of aviary.

Reads aws/api/operations.txt ("service Operation" per line), loads each
service's botocore model (service-2 and paginators-1) and writes, per service,
the shapes reachable from the listed operations' input and output shapes
(error shapes are not included), their member tables, the operations sorted by
name with pagination, and the aws_service_models[] array. Documentation is
skipped. The output is deterministic and clang-format clean.

Usage: tools/gen_models.py [--check] [--out FILE]
  --check  regenerate in memory and fail (exit 1) when the committed
           aws/models_gen.c differs from it (nothing is written).
Run with /usr/bin/python3 (Debian's python3-botocore).
"""

import argparse
import collections
import difflib
import json
import os
import subprocess
import sys

import botocore
import botocore.handlers
import botocore.loaders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS_FILE = os.path.join(ROOT, "aws", "api", "operations.txt")
OUT_FILE = os.path.join(ROOT, "aws", "models_gen.c")

PROTOCOLS = {
    "json": "AWS_PROTOCOL_JSON",
    "query": "AWS_PROTOCOL_QUERY",
    "ec2": "AWS_PROTOCOL_EC2",
    "rest-xml": "AWS_PROTOCOL_REST_XML",
}
TYPES = {
    "structure": "AWS_SHAPE_STRUCTURE",
    "list": "AWS_SHAPE_LIST",
    "map": "AWS_SHAPE_MAP",
    "string": "AWS_SHAPE_STRING",
    "integer": "AWS_SHAPE_INTEGER",
    "long": "AWS_SHAPE_LONG",
    "float": "AWS_SHAPE_FLOAT",
    "double": "AWS_SHAPE_DOUBLE",
    "boolean": "AWS_SHAPE_BOOLEAN",
    "timestamp": "AWS_SHAPE_TIMESTAMP",
    "blob": "AWS_SHAPE_BLOB",
}
LOCATIONS = {
    None: "AWS_LOC_BODY",
    "uri": "AWS_LOC_URI",
    "querystring": "AWS_LOC_QUERYSTRING",
    "header": "AWS_LOC_HEADER",
    "headers": "AWS_LOC_HEADERS",
    "statusCode": "AWS_LOC_STATUS_CODE",
}
TS_FORMATS = {
    None: "AWS_TS_DEFAULT",
    "iso8601": "AWS_TS_ISO8601",
    "rfc822": "AWS_TS_RFC822",
    "unixTimestamp": "AWS_TS_UNIX",
}
# Traits a member reference may set that change how its target shape is
# (de)serialized; a reference that sets one gets its own variant shape.
SHAPE_OVERRIDES = ("flattened", "streaming", "timestampFormat", "xmlNamespace")
PAGINATION_MAX_KEYS = 4  # AWS_PAGINATION_MAX_KEYS in aws/model.h (NULL-terminated)


def fail(msg):
    sys.stderr.write("gen_models: %s\n" % msg)
    sys.exit(2)


def read_operations(path):
    """Returns {service: [operation, ...]} in file order, without duplicates."""
    services = collections.OrderedDict()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                fail("%s:%d: expected 'service Operation'" % (path, lineno))
            ops = services.setdefault(parts[0], [])
            if parts[1] not in ops:
                ops.append(parts[1])
    return services


def unsigned_operations():
    """(service, operation) pairs botocore sends unsigned (choose-signer handlers)."""
    out = set()
    for entry in botocore.handlers.BUILTIN_HANDLERS:
        event, handler = entry[0], entry[1]
        if handler is botocore.handlers.disable_signing and event.startswith("choose-signer."):
            parts = event.split(".")
            if len(parts) == 3:
                out.add((parts[1], parts[2]))
    return out


def c_str(s):
    if s is None:
        return "NULL"
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append("\\%03o" % b)
    out.append('"')
    return "".join(out)


def c_ident(s):
    return "".join(c if c.isalnum() else "_" for c in s)


class ServiceGen:
    def __init__(self, loader, name, op_names, unsigned):
        self.name = name
        self.ident = c_ident(name)
        self.model = loader.load_service_model(name, "service-2")
        try:
            self.paginators = loader.load_service_model(name, "paginators-1")["pagination"]
        except botocore.exceptions.DataNotFoundError:
            self.paginators = {}
        self.shapes = self.model["shapes"]
        self.metadata = self.model["metadata"]
        if self.metadata["protocol"] not in PROTOCOLS:
            fail("%s: unsupported protocol %s" % (name, self.metadata["protocol"]))
        self.op_names = sorted(op_names)
        for op in self.op_names:
            if op not in self.model["operations"]:
                fail("%s: no operation %s in botocore %s" % (name, op, botocore.__version__))
        self.unsigned = unsigned
        self.keys = set()  # effective shapes: (shape name, overrides tuple)
        self.index = {}

    # -- reachability ----------------------------------------------------

    @staticmethod
    def ref_key(ref):
        overrides = tuple((k, json.dumps(ref[k], sort_keys=True)) for k in SHAPE_OVERRIDES if k in ref)
        return (ref["shape"], overrides)

    def shape_def(self, key):
        """The shape's definition with a reference's overrides applied."""
        d = dict(self.shapes[key[0]])
        for k, v in key[1]:
            d[k] = json.loads(v)
        return d

    def visit(self, ref):
        key = self.ref_key(ref)
        stack = [key]
        while stack:
            key = stack.pop()
            if key in self.keys:
                continue
            self.keys.add(key)
            d = self.shapes[key[0]]
            if d["type"] not in TYPES:
                fail("%s: shape %s has unsupported type %s" % (self.name, key[0], d["type"]))
            if d["type"] == "structure":
                refs = list(d.get("members", {}).values())
            elif d["type"] == "list":
                refs = [d["member"]]
            elif d["type"] == "map":
                refs = [d["key"], d["value"]]
            else:
                refs = []
            for r in reversed(refs):
                stack.append(self.ref_key(r))

    def collect(self):
        for op in self.op_names:
            o = self.model["operations"][op]
            for part in ("input", "output"):
                if part in o:
                    self.visit(o[part])
        ordered = sorted(self.keys, key=lambda k: (k[0], k[1]))
        if len(ordered) >= 0xFFFF:
            fail("%s: too many shapes" % self.name)
        self.index = {k: i for i, k in enumerate(ordered)}
        self.ordered = ordered

    # -- emission --------------------------------------------------------

    def members_ident(self, shape_name):
        return "%s_m_%s" % (self.ident, c_ident(shape_name))

    def emit_members(self, out):
        done = set()
        for key in self.ordered:
            d = self.shapes[key[0]]
            if d["type"] != "structure" or not d.get("members") or key[0] in done:
                continue
            done.add(key[0])
            required = set(d.get("required", []))
            payload = d.get("payload")
            out.append("static const struct aws_member %s[] = {" % self.members_ident(key[0]))
            for mname, ref in d["members"].items():
                flags = []
                if mname in required:
                    flags.append("AWS_MEMBER_REQUIRED")
                if mname == payload:
                    flags.append("AWS_MEMBER_PAYLOAD")
                if ref.get("xmlAttribute"):
                    flags.append("AWS_MEMBER_XML_ATTRIBUTE")
                if ref.get("idempotencyToken"):
                    flags.append("AWS_MEMBER_IDEMPOTENCY_TOKEN")
                if ref.get("hostLabel"):
                    flags.append("AWS_MEMBER_HOST_LABEL")
                if ref.get("jsonvalue"):
                    flags.append("AWS_MEMBER_JSON_VALUE")
                loc = ref.get("location")
                if loc not in LOCATIONS:
                    fail("%s: %s.%s: unknown location %s" % (self.name, key[0], mname, loc))
                out.append(
                    "    {%s, %s, %s, %d, %s, %s},"
                    % (
                        c_str(mname),
                        c_str(ref.get("locationName")),
                        c_str(ref.get("queryName")),
                        self.index[self.ref_key(ref)],
                        LOCATIONS[loc],
                        " | ".join(flags) if flags else "0",
                    )
                )
            out.append("};")

    def emit_shapes(self, out):
        out.append("static const struct aws_shape %s_shapes[] = {" % self.ident)
        for i, key in enumerate(self.ordered):
            d = self.shape_def(key)
            t = d["type"]
            flags = []
            if d.get("flattened"):
                flags.append("AWS_SHAPE_FLATTENED")
            if d.get("streaming"):
                flags.append("AWS_SHAPE_STREAMING")
            if d.get("sensitive"):
                flags.append("AWS_SHAPE_SENSITIVE")
            ts = d.get("timestampFormat")
            if ts not in TS_FORMATS:
                fail("%s: %s: unknown timestampFormat %s" % (self.name, key[0], ts))
            ns = d.get("xmlNamespace")
            if ns is not None:
                if ns.get("prefix"):
                    fail("%s: %s: xmlNamespace prefixes are not supported" % (self.name, key[0]))
                ns = ns["uri"]
            members, n_members = "NULL", 0
            if t == "structure" and d.get("members"):
                members, n_members = self.members_ident(key[0]), len(d["members"])
            member = key_i = value = "AWS_NO_SHAPE"
            member_ln = key_ln = value_ln = None
            if t == "list":
                member = str(self.index[self.ref_key(d["member"])])
                member_ln = d["member"].get("locationName")
            elif t == "map":
                key_i = str(self.index[self.ref_key(d["key"])])
                key_ln = d["key"].get("locationName")
                value = str(self.index[self.ref_key(d["value"])])
                value_ln = d["value"].get("locationName")
            out.append(
                "    /* %d */ {%s, %s, %s, %s, %s, %d, %s, %s, %s, %s, %s, %s, %s},"
                % (
                    i,
                    c_str(key[0]),
                    TYPES[t],
                    " | ".join(flags) if flags else "0",
                    TS_FORMATS[ts],
                    members,
                    n_members,
                    member,
                    c_str(member_ln),
                    key_i,
                    c_str(key_ln),
                    value,
                    c_str(value_ln),
                    c_str(ns),
                )
            )
        out.append("};")

    @staticmethod
    def key_list(v, what, where):
        if v is None:
            v = []
        elif not isinstance(v, list):
            v = [v]
        if len(v) >= PAGINATION_MAX_KEYS:
            fail("%s: %s has %d keys; raise AWS_PAGINATION_MAX_KEYS" % (where, what, len(v)))
        return "{%s}" % ", ".join([c_str(x) for x in v] + ["NULL"])

    def emit_pagination(self, out):
        for op in self.op_names:
            p = self.paginators.get(op)
            if p is None:
                continue
            where = "%s %s" % (self.name, op)
            out.append(
                "static const struct aws_pagination %s_pg_%s = {%s, %s, %s, %s, %s};"
                % (
                    self.ident,
                    op,
                    self.key_list(p.get("input_token"), "input_token", where),
                    self.key_list(p.get("output_token"), "output_token", where),
                    self.key_list(p.get("result_key"), "result_key", where),
                    c_str(p.get("limit_key")),
                    c_str(p.get("more_results")),
                )
            )

    def emit_operations(self, out):
        out.append("static const struct aws_operation %s_ops[] = {" % self.ident)
        for op in self.op_names:
            o = self.model["operations"][op]
            http = o.get("http", {})
            inp, outp = o.get("input"), o.get("output")
            in_ns = inp.get("xmlNamespace", {}).get("uri") if inp else None
            checksum = bool(
                o.get("httpChecksumRequired")
                or o.get("httpChecksum", {}).get("requestChecksumRequired")
            )
            unsigned = o.get("authtype") == "none" or (self.name, op) in self.unsigned
            out.append(
                "    {%s, %s, %s, %s, %s, %s, %s, %s, %s, %d, %d},"
                % (
                    c_str(op),
                    c_str(http.get("method", "POST")),
                    c_str(http.get("requestUri", "/")),
                    str(self.index[self.ref_key(inp)]) if inp else "AWS_NO_SHAPE",
                    str(self.index[self.ref_key(outp)]) if outp else "AWS_NO_SHAPE",
                    c_str(outp.get("resultWrapper")) if outp else "NULL",
                    c_str(inp.get("locationName")) if inp else "NULL",
                    c_str(in_ns),
                    "&%s_pg_%s" % (self.ident, op) if op in self.paginators else "NULL",
                    1 if unsigned else 0,
                    1 if checksum else 0,
                )
            )
        out.append("};")

    def emit_service(self, out):
        md = self.metadata
        ns = md.get("xmlNamespace")
        if isinstance(ns, dict):
            ns = ns.get("uri")
        out.append("static const struct aws_service_model %s_model = {" % self.ident)
        for field, value in (
            ("name", c_str(self.name)),
            ("service_id", c_str(md["serviceId"])),
            ("endpoint_prefix", c_str(md["endpointPrefix"])),
            ("signing_name", c_str(md.get("signingName", md["endpointPrefix"]))),
            ("protocol", PROTOCOLS[md["protocol"]]),
            ("api_version", c_str(md["apiVersion"])),
            ("json_version", c_str(md.get("jsonVersion"))),
            ("target_prefix", c_str(md.get("targetPrefix"))),
            ("xml_namespace", c_str(ns)),
            ("global_endpoint", c_str(md.get("globalEndpoint"))),
            ("shapes", "%s_shapes" % self.ident),
            ("n_shapes", "%d" % len(self.ordered)),
            ("operations", "%s_ops" % self.ident),
            ("n_operations", "%d" % len(self.op_names)),
        ):
            out.append("    .%s = %s," % (field, value))
        out.append("};")

    def emit(self, out):
        self.collect()
        out.append("")
        out.append(
            "/* %s: %s, %s %s, %d operations, %d shapes. */"
            % (
                self.name,
                self.metadata["serviceId"],
                self.metadata["protocol"],
                self.metadata["apiVersion"],
                len(self.op_names),
                len(self.ordered),
            )
        )
        self.emit_members(out)
        self.emit_shapes(out)
        self.emit_pagination(out)
        self.emit_operations(out)
        self.emit_service(out)


def generate():
    services = read_operations(OPS_FILE)
    loader = botocore.loaders.create_loader()
    unsigned = unsigned_operations()
    out = [
        "/* AWS service model tables for the operations in aws/api/operations.txt.",
        " * Generated by tools/gen_models.py from botocore %s: do not edit. */" % botocore.__version__,
        '#include "aws/model.h"',
        "",
        "/* Shape fields: name, type, flags, timestamp format, members, n_members,",
        " * list member, member locationName, map key, key locationName, map value,",
        " * value locationName, xmlNamespace. */",
    ]
    gens = [ServiceGen(loader, name, ops, unsigned) for name, ops in sorted(services.items())]
    for g in gens:
        g.emit(out)
    out.append("")
    out.append("const struct aws_service_model *const aws_service_models[] = {")
    for g in gens:
        out.append("    &%s_model," % g.ident)
    out.append("};")
    out.append("const size_t aws_n_service_models = %d;" % len(gens))
    return "\n".join(out) + "\n"


def clang_format(text):
    style = "file:" + os.path.join(ROOT, ".clang-format")
    try:
        r = subprocess.run(
            ["clang-format", "--style=" + style, "--assume-filename=" + OUT_FILE],
            input=text.encode("utf-8"),
            stdout=subprocess.PIPE,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        fail("clang-format failed: %s" % e)
    return r.stdout.decode("utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if aws/models_gen.c is stale")
    ap.add_argument("--out", default=OUT_FILE, help="output file (default aws/models_gen.c)")
    args = ap.parse_args()
    text = clang_format(generate())
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            sys.stderr.write("gen_models: cannot read %s: %s\n" % (args.out, e))
            return 1
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), args.out, "regenerated", n=1
            )
            sys.stderr.writelines(list(diff)[:60])
            sys.stderr.write(
                "gen_models: %s is stale; run /usr/bin/python3 tools/gen_models.py\n" % args.out
            )
            return 1
        print("gen_models: %s is up to date" % os.path.relpath(args.out, ROOT))
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("gen_models: wrote %s" % os.path.relpath(args.out, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
