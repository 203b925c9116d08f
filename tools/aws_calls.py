#!/usr/bin/python3
"""Lists every AWS operation aviary's C code can call, and the IAM actions they need.

How operations are found (no compiler needed, no guessing):

* A small C tokenizer reads every .c file under aws/, reconcilers/ and
  controller/ (comments and preprocessor lines aside; adjacent string
  literals are joined; `#define NAME "literal"` macros are resolved).
* The "sinks" are the client's entry points, with the positions of their
  service and operation arguments: aws_call, aws_call_ex, aws_call_all and
  aws_paginate (arguments 1 and 2). Every other wrapper is found by itself:
  a function that passes one of its own parameters as the service or the
  operation of a sink becomes a sink too (app_read/app_write, and any static
  helper such as `describe_owned(ctx, resource, operation, ...)`), until
  nothing new is found.
* At each call of a sink, the service and operation arguments are resolved to
  string literals: a literal, a macro, a ternary of resolvable expressions, a
  local `const char *` whose every assignment resolves, an element of a
  `const char *NAME[] = {...}` array, or a parameter of the enclosing
  function (then the enclosing function is a wrapper, see above).
* STS is also called outside the client by aws/credentials_sts.c, which
  builds its Query form by hand: the service is the literal given to
  aws_model_service() in that file, the operations are the values of the
  form field "Action".
* Anything that cannot be resolved (a struct field, a function pointer to a
  sink, a computed string) is reported as unresolved: --check fails on it, so
  a new call the extractor does not understand can never be missed silently.

The IAM mapping (botocore operation -> IAM actions) is in IAM_ACTIONS below:
by default "<IAM prefix of the service>:<Operation>", with the prefixes in
IAM_PREFIX (elbv2 -> elasticloadbalancing; cloudwatch stays cloudwatch
although its endpoint is "monitoring"), the exceptions (S3 above all) and
the actions AWS authorizes in addition to the operation itself (tag-on-create
needs the service's TagResource/CreateTags, passing a role needs
iam:PassRole, ...). Operations that need no permission of the identity
aviary runs as are in NO_PERMISSION, each with the reason.

Usage:
  tools/aws_calls.py                 "service Operation" per line
  tools/aws_calls.py --sites         ... with every call site
  tools/aws_calls.py --iam           the IAM actions the operations need
  tools/aws_calls.py --json          everything as JSON
  tools/aws_calls.py --check         exit 1 on unresolved calls or on
                                     operations missing from aws/api/operations.txt
"""

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCAN_DIRS = ("aws", "reconcilers", "controller")

# The client's entry points: name -> (service argument index, operation argument index).
BASE_SINKS = {
    "aws_call": (1, 2),
    "aws_call_ex": (1, 2),
    "aws_call_all": (1, 2),
    "aws_paginate": (1, 2),
}

# ---------------------------------------------------------------------------
# IAM mapping

# botocore service name -> IAM service prefix.
IAM_PREFIX = {
    "application-autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",  # endpoint "monitoring", IAM prefix "cloudwatch"
    "ec2": "ec2",
    "ecr": "ecr",
    "ecs": "ecs",
    "elbv2": "elasticloadbalancing",
    "iam": "iam",
    "logs": "logs",
    "s3": "s3",
    "sagemaker": "sagemaker",
    "sns": "sns",
    "sts": "sts",
}

# Operations whose IAM actions are not just "<prefix>:<Operation>", or that
# AWS also authorizes against other actions. Keys are "service Operation".
IAM_ACTIONS = {
    # S3: object and bucket sub-resource operations have their own action names.
    "s3 ListObjectsV2": ["s3:ListBucket"],
    "s3 ListObjects": ["s3:ListBucket"],
    "s3 ListObjectVersions": ["s3:ListBucketVersions"],
    "s3 HeadBucket": ["s3:ListBucket"],
    "s3 GetObject": ["s3:GetObject"],
    "s3 HeadObject": ["s3:GetObject"],
    "s3 PutObject": ["s3:PutObject"],
    "s3 CreateMultipartUpload": ["s3:PutObject"],
    "s3 UploadPart": ["s3:PutObject"],
    "s3 CompleteMultipartUpload": ["s3:PutObject"],
    "s3 AbortMultipartUpload": ["s3:AbortMultipartUpload"],
    "s3 ListMultipartUploads": ["s3:ListBucketMultipartUploads"],
    "s3 ListParts": ["s3:ListMultipartUploadParts"],
    "s3 GetBucketLifecycleConfiguration": ["s3:GetLifecycleConfiguration"],
    "s3 PutBucketLifecycleConfiguration": ["s3:PutLifecycleConfiguration"],
    "s3 CopyObject": ["s3:GetObject", "s3:PutObject"],
    "s3 DeleteObject": ["s3:DeleteObject"],
    "s3 DeleteObjects": ["s3:DeleteObject"],
    "s3 GetBucketEncryption": ["s3:GetEncryptionConfiguration"],
    "s3 PutBucketEncryption": ["s3:PutEncryptionConfiguration"],
    "s3 GetPublicAccessBlock": ["s3:GetBucketPublicAccessBlock"],
    "s3 PutPublicAccessBlock": ["s3:PutBucketPublicAccessBlock"],
    "s3 GetBucketTagging": ["s3:GetBucketTagging"],
    "s3 PutBucketTagging": ["s3:PutBucketTagging"],
    "s3 GetBucketVersioning": ["s3:GetBucketVersioning"],
    "s3 PutBucketVersioning": ["s3:PutBucketVersioning"],
    "s3 GetBucketLocation": ["s3:GetBucketLocation"],
    "s3 CreateBucket": ["s3:CreateBucket"],
    "s3 DeleteBucket": ["s3:DeleteBucket"],
    # Tag-on-create: the service authorizes the tags against its tagging action.
    "ec2 CreateVpc": ["ec2:CreateVpc", "ec2:CreateTags"],
    "ec2 CreateSubnet": ["ec2:CreateSubnet", "ec2:CreateTags"],
    "ec2 CreateInternetGateway": ["ec2:CreateInternetGateway", "ec2:CreateTags"],
    "ec2 CreateNatGateway": ["ec2:CreateNatGateway", "ec2:CreateTags"],
    "ec2 CreateRouteTable": ["ec2:CreateRouteTable", "ec2:CreateTags"],
    "ec2 CreateSecurityGroup": ["ec2:CreateSecurityGroup", "ec2:CreateTags"],
    "ec2 AllocateAddress": ["ec2:AllocateAddress", "ec2:CreateTags"],
    "ecs CreateCluster": ["ecs:CreateCluster", "ecs:TagResource"],
    "ecs CreateService": ["ecs:CreateService", "ecs:TagResource"],
    # Task definitions name the execution role: passing it is authorized.
    "ecs RegisterTaskDefinition": ["ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"],
    "ecr CreateRepository": ["ecr:CreateRepository", "ecr:TagResource"],
    "elbv2 CreateLoadBalancer": ["elasticloadbalancing:CreateLoadBalancer",
                                 "elasticloadbalancing:AddTags"],
    "elbv2 CreateTargetGroup": ["elasticloadbalancing:CreateTargetGroup",
                                "elasticloadbalancing:AddTags"],
    "elbv2 CreateListener": ["elasticloadbalancing:CreateListener", "elasticloadbalancing:AddTags"],
    "iam CreateRole": ["iam:CreateRole", "iam:TagRole"],
    "logs CreateLogGroup": ["logs:CreateLogGroup", "logs:TagResource"],
    "sns CreateTopic": ["sns:CreateTopic", "sns:TagResource"],
    "cloudwatch PutMetricAlarm": ["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"],
    # The notebook instance runs as a role aviary passes to SageMaker.
    "sagemaker CreateNotebookInstance": ["sagemaker:CreateNotebookInstance", "sagemaker:AddTags",
                                         "iam:PassRole"],
    "sagemaker UpdateNotebookInstance": ["sagemaker:UpdateNotebookInstance", "iam:PassRole"],
}

# Operations that need no permission in the policy of the identity aviary
# runs as. Each has its reason (docs/security.md repeats them).
NO_PERMISSION = {
    "sts GetCallerIdentity": "always allowed: STS needs no permission for it",
    "sts AssumeRoleWithWebIdentity": "unsigned call: the role's trust policy decides (IRSA, web identity)",
    "sts AssumeRole": "made with the source credentials of a profile's role_arn, before aviary "
                      "has its role: the source identity needs sts:AssumeRole, not this policy",
}


# S3 object versions: a request that names a version is authorized against
# the *Version action. Which calls name one is found per file (see
# _version_files): a file that puts "VersionId" into a request (json_pack or
# json_object_set) or builds a copy source with "?versionId=".
S3_VERSION_ACTIONS = {
    "GetObject": "s3:GetObjectVersion",
    "HeadObject": "s3:GetObjectVersion",
    "CopyObject": "s3:GetObjectVersion",
    "DeleteObject": "s3:DeleteObjectVersion",
}


def iam_actions(service, operation, versioned=False):
    """IAM actions needed to call `operation` of botocore `service`, or [] for
    NO_PERMISSION. versioned: the call may name an S3 object version."""
    key = f"{service} {operation}"
    if key in NO_PERMISSION:
        return []
    if key in IAM_ACTIONS:
        extra = [S3_VERSION_ACTIONS[operation]] if (
            versioned and service == "s3" and operation in S3_VERSION_ACTIONS) else []
        return list(IAM_ACTIONS[key]) + extra
    if service not in IAM_PREFIX:
        raise KeyError(f"no IAM prefix for service {service!r} (add it to IAM_PREFIX)")
    if service == "s3":
        raise KeyError(f"S3 operation {operation!r} has no IAM mapping (add it to IAM_ACTIONS)")
    return [f"{IAM_PREFIX[service]}:{operation}"]


# ---------------------------------------------------------------------------
# C tokenizer

TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<str>"(?:\\.|[^"\\\n])*")
  | (?P<chr>'(?:\\.|[^'\\\n])*')
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\.?\d(?:[\w.]|[eEpP][+-])*)
  | (?P<punct>->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!=<>]=|\.\.\.|[^\s])
    """,
    re.S | re.X,
)

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


class Tok:
    __slots__ = ("kind", "text", "line")

    def __init__(self, kind, text, line):
        self.kind, self.text, self.line = kind, text, line

    def __repr__(self):
        return f"{self.kind}:{self.text!r}@{self.line}"


def _unescape(lit):
    body = lit[1:-1]
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), body)


def tokenize(src):
    """Returns (tokens, macros) of a C source: macros maps NAME -> string value
    for `#define NAME "literal"` (object-like, string-only)."""
    macros = {}
    toks = []
    # Preprocessor lines (with continuations) are cut out first, keeping line numbers.
    lines = src.split("\n")
    out_lines = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("#"):
            directive = line
            n = 1
            while directive.endswith("\\") and i + n < len(lines):
                directive = directive[:-1] + " " + lines[i + n]
                n += 1
            m = re.match(r'\s*#\s*define\s+([A-Za-z_]\w*)\s+((?:"(?:\\.|[^"\\])*"\s*)+)\s*(?://.*|/\*.*\*/)?$',
                         directive)
            if m:
                macros[m.group(1)] = "".join(_unescape(s) for s in re.findall(r'"(?:\\.|[^"\\])*"', m.group(2)))
            out_lines.extend([""] * n)
            i += n
            continue
        out_lines.append(line)
        i += 1
    text = "\n".join(out_lines)
    line = 1
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if m is None:
            raise ValueError(f"cannot tokenize at line {line}: {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        s = m.group(kind)
        if kind == "str":
            value = _unescape(s)
            if toks and toks[-1].kind == "str":
                toks[-1].text += value  # adjacent literals are one string
            else:
                toks.append(Tok("str", value, line))
        elif kind not in ("ws", "comment"):
            toks.append(Tok(kind, s, line))
        line += s.count("\n")
        pos = m.end()
    return toks, macros


def _match(toks, i):
    """Index of the bracket closing toks[i]."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    open_, close = toks[i].text, pairs[toks[i].text]
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j].text
        if toks[j].kind != "punct":
            continue
        if t == open_:
            depth += 1
        elif t == close:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced {open_} at line {toks[i].line}")


def _split_args(toks):
    """Splits a token list on top-level commas."""
    args, cur, depth = [], [], 0
    for t in toks:
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.kind == "punct" and t.text == ",":
            args.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur or args:
        args.append(cur)
    return args


class Function:
    def __init__(self, path, name, params, body, line, static=False):
        self.path, self.name, self.params, self.body, self.line = path, name, params, body, line
        self.static = static

    def key(self):
        """How calls find it: static functions only from their own file."""
        return (self.path, self.name) if self.static else (None, self.name)


def _param_name(ptoks):
    """Name of a parameter declaration (last identifier outside brackets)."""
    names = []
    depth = 0
    for t in ptoks:
        if t.kind == "punct" and t.text in "([":
            depth += 1
        elif t.kind == "punct" and t.text in ")]":
            depth -= 1
        elif t.kind == "id" and depth == 0:
            names.append(t.text)
        elif t.kind == "id" and depth == 1 and not names:
            names.append(t.text)  # (*fn)(...)
    return names[-1] if names else None


def parse_file(path, toks):
    """Returns (functions, file-scope token ranges) of a tokenized file."""
    funcs = []
    i = 0
    n = len(toks)
    file_scope = []
    while i < n:
        t = toks[i]
        if t.kind == "punct" and t.text == "{":
            end = _match(toks, i)
            # A function definition: `name ( params ) [attributes] {`.
            j = i - 1
            while j >= 0 and toks[j].kind == "id" and toks[j].text not in ("else",):
                j -= 1  # no attributes expected; tolerate none
            if j >= 0 and toks[j].text == ")" and toks[j].kind == "punct":
                # find the matching "("
                depth = 0
                k = j
                while k >= 0:
                    if toks[k].kind == "punct" and toks[k].text == ")":
                        depth += 1
                    elif toks[k].kind == "punct" and toks[k].text == "(":
                        depth -= 1
                        if depth == 0:
                            break
                    k -= 1
                if k > 0 and toks[k - 1].kind == "id":
                    params = [_param_name(p) for p in _split_args(toks[k + 1:j])]
                    params = [p for p in params if p and p != "void"]
                    static = False
                    b = k - 2
                    while b >= 0 and not (toks[b].kind == "punct" and toks[b].text in (";", "}")):
                        static = static or (toks[b].kind == "id" and toks[b].text == "static")
                        b -= 1
                    funcs.append(Function(path, toks[k - 1].text, params, toks[i + 1:end],
                                          toks[k - 1].line, static))
                    i = end + 1
                    continue
            file_scope.append((i, end))  # struct/array initializer at file scope
            i = end + 1
            continue
        i += 1
    return funcs


# ---------------------------------------------------------------------------
# resolution

class Unresolved(Exception):
    pass


def _strip_parens(expr):
    while len(expr) >= 2 and expr[0].text == "(" and expr[0].kind == "punct":
        try:
            if _match(expr, 0) != len(expr) - 1:
                break
        except ValueError:
            break
        expr = expr[1:-1]
    # a cast to a char pointer: (const char *) x
    if len(expr) > 3 and expr[0].text == "(" and expr[0].kind == "punct":
        end = _match(expr, 0)
        inner = [t.text for t in expr[1:end]]
        if inner and inner[-1] == "*" and all(x in ("const", "char", "*") for x in inner):
            return _strip_parens(expr[end + 1:])
    return expr


def _ternary(expr):
    """(cond, a, b) when expr is `cond ? a : b` at top level, else None."""
    depth = 0
    q = None
    for idx, t in enumerate(expr):
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            depth -= 1
        elif depth == 0 and t.kind == "punct" and t.text == "?" and q is None:
            q = idx
    if q is None:
        return None
    depth = 0
    nested = 0
    for idx in range(q + 1, len(expr)):
        t = expr[idx]
        if t.kind == "punct" and t.text in "([{":
            depth += 1
        elif t.kind == "punct" and t.text in ")]}":
            depth -= 1
        elif depth == 0 and t.kind == "punct" and t.text == "?":
            nested += 1
        elif depth == 0 and t.kind == "punct" and t.text == ":":
            if nested == 0:
                return expr[:q], expr[q + 1:idx], expr[idx + 1:]
            nested -= 1
    return None


def _assignments(body, name):
    """Right-hand sides assigned to `name` in a token list (declarations included)."""
    rhs = []
    for idx, t in enumerate(body):
        if t.kind != "id" or t.text != name:
            continue
        if idx > 0 and body[idx - 1].kind == "punct" and body[idx - 1].text in (".", "->"):
            continue
        nxt = body[idx + 1] if idx + 1 < len(body) else None
        if nxt is not None and nxt.kind == "punct" and nxt.text == "=":
            end = idx + 2
            depth = 0
            while end < len(body):
                u = body[end]
                if u.kind == "punct" and u.text in "([{":
                    depth += 1
                elif u.kind == "punct" and u.text in ")]}":
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and u.kind == "punct" and u.text in (";", ","):
                    break
                end += 1
            rhs.append(body[idx + 2:end])
        elif nxt is not None and nxt.kind == "punct" and nxt.text in ("+=", "++", "--") or (
                idx > 0 and body[idx - 1].kind == "punct" and body[idx - 1].text in ("++", "--", "&")):
            rhs.append(None)  # modified in a way that cannot be resolved
    return rhs


def _array_initializer(scopes, name):
    """String elements of `NAME[...] = { "a", "b" }` in the given token lists, or None."""
    for toks in scopes:
        for idx, t in enumerate(toks):
            if t.kind != "id" or t.text != name or idx + 1 >= len(toks):
                continue
            if toks[idx + 1].text != "[":
                continue
            close = _match(toks, idx + 1)
            if close + 2 < len(toks) and toks[close + 1].text == "=" and toks[close + 2].text == "{":
                end = _match(toks, close + 2)
                return [a for a in _split_args(toks[close + 3:end])]
    return None


class Resolver:
    def __init__(self):
        self.functions = []   # Function
        self.file_toks = {}   # path -> tokens
        self.macros = {}      # path -> {name: value}
        self.header_macros = {}

    def load(self, root):
        for d in SCAN_DIRS:
            base = os.path.join(root, d)
            for dirpath, _, files in os.walk(base):
                for f in sorted(files):
                    p = os.path.join(dirpath, f)
                    rel = os.path.relpath(p, root)
                    if f.endswith(".h"):
                        with open(p, encoding="utf-8") as fh:
                            _, macros = tokenize(fh.read())
                        for k, v in macros.items():
                            self.header_macros.setdefault(k, set()).add(v)
                    elif f.endswith(".c") and f != "models_gen.c":
                        with open(p, encoding="utf-8") as fh:
                            toks, macros = tokenize(fh.read())
                        self.file_toks[rel] = toks
                        self.macros[rel] = macros
                        self.functions.extend(parse_file(rel, toks))

    def resolve(self, fn, expr, seen=None):
        """Values of an expression in fn: a set of ("lit", s) / ("param", i).
        Raises Unresolved."""
        seen = set() if seen is None else seen
        expr = _strip_parens(expr)
        if not expr:
            raise Unresolved("empty expression")
        tern = _ternary(expr)
        if tern is not None:
            return self.resolve(fn, tern[1], seen) | self.resolve(fn, tern[2], seen)
        if len(expr) == 1 and expr[0].kind == "str":
            return {("lit", expr[0].text)}
        if len(expr) == 1 and expr[0].kind == "id":
            name = expr[0].text
            if name in fn.params:
                return {("param", fn.params.index(name))}
            if name in self.macros.get(fn.path, {}):
                return {("lit", self.macros[fn.path][name])}
            if name in self.header_macros and len(self.header_macros[name]) == 1:
                return {("lit", next(iter(self.header_macros[name])))}
            if (fn.name, name) in seen:
                return set()
            seen.add((fn.name, name))
            rhs = _assignments(fn.body, name)
            scope = "local"
            if not rhs:  # a file-scope constant
                rhs = _assignments(self._file_scope(fn.path), name)
                scope = "file"
            if not rhs or any(r is None for r in rhs):
                raise Unresolved(f"{name} ({scope} variable without resolvable assignments)")
            out = set()
            for r in rhs:
                out |= self.resolve(fn, r, seen)
            return out
        # NAME[index]: an element of a string array.
        if len(expr) >= 4 and expr[0].kind == "id" and expr[1].text == "[" and _match(expr, 1) == len(expr) - 1:
            elems = _array_initializer([fn.body, self._file_scope(fn.path)], expr[0].text)
            if elems is None:
                raise Unresolved(f"{expr[0].text}[...] (no string array initializer)")
            out = set()
            for e in elems:
                out |= self.resolve(fn, e, seen)
            return out
        raise Unresolved(" ".join(t.text for t in expr))

    def _file_scope(self, path):
        toks = self.file_toks[path]
        inside = set()
        for f in self.functions:
            if f.path == path:
                inside.update(id(t) for t in f.body)
        return [t for t in toks if id(t) not in inside]


def _calls(fn, name):
    """Yields (line, args) for each call of `name` in fn's body, and (line, None)
    where the name is used without being called (its address is taken)."""
    body = fn.body
    for idx, t in enumerate(body):
        if t.kind != "id" or t.text != name:
            continue
        if idx > 0 and body[idx - 1].kind == "punct" and body[idx - 1].text in (".", "->"):
            continue
        if idx + 1 < len(body) and body[idx + 1].text == "(" and body[idx + 1].kind == "punct":
            end = _match(body, idx + 1)
            yield t.line, _split_args(body[idx + 2:end])
        else:
            yield t.line, None


def extract(root=ROOT):
    """Returns (ops, unresolved, sinks): ops maps (service, operation) to a sorted
    list of "path:line" call sites; unresolved is a list of "path:line: why"."""
    r = Resolver()
    r.load(root)
    # sink name -> list of (service_items, op_items), items are ("lit", s) or ("param", i)
    sinks = {(None, name): [({("param", s)}, {("param", o)})] for name, (s, o) in BASE_SINKS.items()}
    ops = {}
    unresolved = set()
    changed = True
    rounds = 0
    while changed:
        changed = False
        rounds += 1
        if rounds > 50:
            raise RuntimeError("wrapper resolution does not converge")
        for fn in r.functions:
            for (sink_path, sink_name), specs in list(sinks.items()):
                if sink_path is not None and sink_path != fn.path:
                    continue  # a static function of another file
                if fn.name == sink_name and sink_name in BASE_SINKS:
                    continue  # the client's own internals (aws_call -> aws_call_ex)
                for line, args in _calls(fn, sink_name):
                    site = f"{fn.path}:{line}"
                    if args is None:
                        unresolved.add(f"{site}: {sink_name} used without a call (function pointer?)")
                        continue
                    for svc_items, op_items in specs:
                        try:
                            svc = _map_items(r, fn, args, svc_items)
                            op = _map_items(r, fn, args, op_items)
                        except Unresolved as e:
                            unresolved.add(f"{site}: {sink_name}: cannot resolve {e}")
                            continue
                        lits = [(s[1], o[1]) for s in svc for o in op if s[0] == "lit" and o[0] == "lit"]
                        for pair in lits:
                            ops.setdefault(pair, set()).add(site)
                        params = {(frozenset([s]), frozenset([o])) for s in svc for o in op
                                  if s[0] == "param" or o[0] == "param"}
                        if params:
                            new = sinks.setdefault(fn.key(), [])
                            for s, o in params:
                                if (set(s), set(o)) not in new:
                                    new.append((set(s), set(o)))
                                    changed = True
    # aws/credentials_sts.c builds STS's Query form itself.
    sts_path = os.path.join("aws", "credentials_sts.c")
    for fn in r.functions:
        if fn.path != sts_path:
            continue
        services = set()
        for line, args in _calls(fn, "aws_model_service"):
            if args and len(args) == 1 and len(args[0]) == 1 and args[0][0].kind == "str":
                services.add(args[0][0].text)
        for line, args in _calls(fn, "form_add"):
            if not args or len(args) != 3 or len(args[1]) != 1 or args[1][0].text != "Action":
                continue
            site = f"{fn.path}:{line}"
            try:
                vals = r.resolve(fn, args[2])
            except Unresolved as e:
                unresolved.add(f"{site}: STS Action: cannot resolve {e}")
                continue
            for kind, v in vals:
                if kind != "lit":
                    unresolved.add(f"{site}: STS Action is a parameter")
                    continue
                ops.setdefault(("sts", v), set()).add(site)
    if not any(s == "sts" for s, _ in ops if s == "sts"):
        pass
    sts_sites = [site for (s, o), sites in ops.items() if s == "sts" for site in sites
                 if site.startswith(sts_path)]
    if os.path.exists(os.path.join(root, sts_path)) and not sts_sites:
        unresolved.add(f"{sts_path}: no STS Action found (the extractor's rule for this file is stale)")
    return ({k: sorted(v) for k, v in ops.items()}, sorted(unresolved),
            {name: v for (path, name), v in sinks.items() if not (path is None and name in BASE_SINKS)})


def _map_items(r, fn, args, items):
    out = set()
    for kind, v in items:
        if kind == "lit":
            out.add(("lit", v))
        else:
            if v >= len(args):
                raise Unresolved(f"argument {v} missing")
            out |= r.resolve(fn, args[v])
    return out


def read_operations_txt(root=ROOT):
    ops = set()
    with open(os.path.join(root, "aws", "api", "operations.txt"), encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                svc, op = line.split()
                ops.add((svc, op))
    return ops


def version_files(root=ROOT):
    """Source files whose S3 requests may name an object version: "VersionId"
    passed to json_pack/json_object_set(_new), or a "?versionId=" literal."""
    out = set()
    for d in SCAN_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if not f.endswith(".c"):
                    continue
                p = os.path.join(dirpath, f)
                with open(p, encoding="utf-8") as fh:
                    toks, _ = tokenize(fh.read())
                for idx, t in enumerate(toks):
                    if t.kind == "str" and "?versionId=" in t.text:
                        out.add(os.path.relpath(p, root))
                    if t.kind != "str" or t.text != "VersionId":
                        continue
                    # the call this literal is an argument of
                    depth = 0
                    for j in range(idx - 1, -1, -1):
                        u = toks[j]
                        if u.kind == "punct" and u.text in ")]}":
                            depth += 1
                        elif u.kind == "punct" and u.text in "([{":
                            if depth == 0:
                                if u.text == "(" and j > 0 and toks[j - 1].text in (
                                        "json_pack", "json_object_set", "json_object_set_new"):
                                    out.add(os.path.relpath(p, root))
                                break
                            depth -= 1
    return out


def required_iam_actions(ops, vfiles=frozenset()):
    """{IAM action: sorted ["service Operation", ...]} for operations (a dict
    of (service, operation) -> call sites, or a set of them); vfiles as
    version_files()."""
    out = {}
    for svc, op in sorted(ops):
        sites = ops[(svc, op)] if isinstance(ops, dict) else []
        versioned = any(site.rsplit(":", 1)[0] in vfiles for site in sites)
        for a in iam_actions(svc, op, versioned):
            out.setdefault(a, set()).add(f"{svc} {op}")
    return {k: sorted(v) for k, v in sorted(out.items())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--sites", action="store_true", help="show call sites")
    ap.add_argument("--iam", action="store_true", help="print the IAM actions needed")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="fail on unresolved calls and on operations missing from aws/api/operations.txt")
    args = ap.parse_args(argv)
    ops, unresolved, wrappers = extract(args.root)
    vfiles = version_files(args.root)
    if args.json:
        json.dump({
            "operations": [{"service": s, "operation": o, "sites": sites,
                            "iam": iam_actions(s, o, any(x.rsplit(":", 1)[0] in vfiles for x in sites))}
                           for (s, o), sites in sorted(ops.items())],
            "iam_actions": required_iam_actions(ops, vfiles),
            "wrappers": sorted(wrappers),
            "unresolved": unresolved,
        }, sys.stdout, indent=2)
        print()
    elif args.iam:
        for action, why in required_iam_actions(ops, vfiles).items():
            print(f"{action}\t{', '.join(why)}")
    else:
        for (s, o), sites in sorted(ops.items()):
            print(f"{s} {o}" + (f"\t{' '.join(sites)}" if args.sites else ""))
    rc = 0
    for u in unresolved:
        print(f"aws_calls: unresolved: {u}", file=sys.stderr)
        rc = 1 if args.check else rc
    if args.check:
        missing = sorted(set(ops) - read_operations_txt(args.root))
        for s, o in missing:
            print(f"aws_calls: {s} {o} is called but not in aws/api/operations.txt", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
