#!/usr/bin/python3
"""Generates docs/manifest-reference.md from the CRDs in crds/.

The CRDs are the single source of truth for the manifest format; this page
lists every field with its type, default, constraints and description.

  tools/gen_manifest_reference.py            write docs/manifest-reference.md
  tools/gen_manifest_reference.py --check    exit 1 when the file is stale
  tools/gen_manifest_reference.py --stdout   print instead of writing
"""
import argparse
import difflib
import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRD_DIR = os.path.join(ROOT, "crds")
OUT = os.path.join(ROOT, "docs", "manifest-reference.md")

# Kinds in the order they are documented.
KIND_ORDER = ["Application", "TrainingEnvironment"]


def load_crds():
    crds = {}
    for name in sorted(os.listdir(CRD_DIR)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(CRD_DIR, name), encoding="utf-8") as f:
            crd = yaml.safe_load(f)
        if crd.get("apiVersion") != "apiextensions.k8s.io/v1" or \
                crd.get("kind") != "CustomResourceDefinition":
            raise SystemExit(f"crds/{name}: not an apiextensions.k8s.io/v1 CRD")
        kind = crd["spec"]["names"]["kind"]
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
        crds[kind] = (name, crd, version["schema"]["openAPIV3Schema"])
    return crds


def one_line(text):
    return " ".join((text or "").split())


def cell(text):
    return text.replace("|", "\\|")


def code(value):
    if isinstance(value, str):
        s = value
    else:
        s = json.dumps(value, separators=(", ", ": "))
    return "`" + s.replace("|", "\\|") + "`"


def type_name(s):
    if s.get("x-kubernetes-int-or-string"):
        return "integer or string"
    t = s.get("type", "any")
    if t == "string" and s.get("format") == "duration":
        return "duration"
    if t == "array":
        return "array of " + type_name(s.get("items", {}))
    if t == "object" and "additionalProperties" in s:
        return "map of " + type_name(s["additionalProperties"])
    return t


def fmt_num(v):
    return str(int(v)) if float(v).is_integer() else str(v)


def constraints(s, required):
    out = []
    if required:
        out.append("required")
    if "enum" in s:
        out.append("one of " + ", ".join(code(v) for v in s["enum"]))
    if "minimum" in s and "maximum" in s:
        out.append(f"{fmt_num(s['minimum'])} to {fmt_num(s['maximum'])}")
    elif "minimum" in s:
        op = "> " if s.get("exclusiveMinimum") else ">= "
        out.append(op + fmt_num(s["minimum"]))
    elif "maximum" in s:
        op = "< " if s.get("exclusiveMaximum") else "<= "
        out.append(op + fmt_num(s["maximum"]))
    if s.get("minLength", 0) == 1:
        out.append("not empty")
    elif s.get("minLength", 0) > 1:
        out.append(f"at least {s['minLength']} characters")
    if "maxLength" in s:
        out.append(f"at most {s['maxLength']} characters")
    if "minItems" in s:
        out.append(f"at least {s['minItems']} items")
    if "maxItems" in s:
        out.append(f"at most {s['maxItems']} items")
    if "maxProperties" in s:
        out.append(f"at most {s['maxProperties']} entries")
    if "pattern" in s:
        out.append("pattern " + code(s["pattern"]))
    return "; ".join(out)


def walk(s, path, required, rows):
    """Collects (path, schema, required) depth-first in CRD order."""
    rows.append((path, s, required))
    props = s.get("properties", {})
    req = set(s.get("required", []))
    for name, sub in props.items():
        walk(sub, f"{path}.{name}" if path else name, name in req, rows)
    if "items" in s and s["items"].get("type") == "object":
        for name, sub in s["items"].get("properties", {}).items():
            walk(sub, f"{path}[].{name}", name in set(s["items"].get("required", [])), rows)
    if isinstance(s.get("additionalProperties"), dict) and \
            s["additionalProperties"].get("type") == "object":
        walk(s["additionalProperties"], f"{path}.<key>", False, rows)


def render_kind(kind, name, crd, schema):
    lines = []
    names = crd["spec"]["names"]
    lines.append(f"## {kind}")
    lines.append("")
    lines.append(one_line(schema.get("description")))
    lines.append("")
    lines.append(f"`apiVersion: aviary.io/v1alpha1`, `kind: {kind}` "
                 f"(CRD `{crd['metadata']['name']}` in [`crds/{name}`](../crds/{name}), "
                 f"plural `{names['plural']}`, short name "
                 f"{', '.join('`' + n + '`' for n in names.get('shortNames', []))}).")
    lines.append("")
    meta_name = schema["properties"]["metadata"]["properties"]["name"]
    example = {"Application": "examples/fraud-model.yaml",
               "TrainingEnvironment": "examples/training.yaml"}[kind]
    lines.append(f"A complete example: [`{example}`](../{example}).")
    lines.append("")
    lines.append("### metadata")
    lines.append("")
    lines.append(one_line(schema["properties"]["metadata"].get("description")))
    lines.append("")
    lines.append("| Field | Type | Constraints | Description |")
    lines.append("|---|---|---|---|")
    lines.append(f"| `metadata.name` | string | {cell(constraints(meta_name, True))} | "
                 f"{cell(one_line(meta_name.get('description')))} |")
    lines.append("| `metadata.namespace` | string | DNS label | Accepted for compatibility "
                 "with Kubernetes tooling; aviary names are unique across namespaces. |")
    lines.append("| `metadata.labels` | map of string | | Free-form labels. |")
    lines.append("| `metadata.annotations` | map of string | | Free-form annotations. |")
    lines.append("")
    lines.append("### spec")
    lines.append("")
    rows = []
    walk(schema["properties"]["spec"], "spec", True, rows)
    lines.append("| Field | Type | Default | Constraints | Description |")
    lines.append("|---|---|---|---|---|")
    for path, s, required in rows:
        default = code(s["default"]) if "default" in s else ""
        desc = one_line(s.get("description"))
        lines.append(f"| `{path}` | {cell(type_name(s))} | {default} | "
                     f"{cell(constraints(s, required and path != 'spec'))} | {cell(desc)} |")
    lines.append("")
    return lines


def render():
    crds = load_crds()
    lines = [
        "<!-- Generated by tools/gen_manifest_reference.py from crds/. Do not edit: change the",
        "     CRDs and run `/usr/bin/python3 tools/gen_manifest_reference.py`. -->",
        "# Manifest reference",
        "",
        "aviary reads Kubernetes-style YAML manifests: several objects per file separated by",
        "`---`, files ending in `.yaml` or `.yml`, at most 1 MiB, UTF-8. The CustomResource",
        "Definitions in [`crds/`](../crds/) define every field; aviary embeds them at build",
        "time, validates each object against them, and fills in their defaults. The same",
        "CRDs can be applied to a Kubernetes cluster (`kubectl apply -f crds/`).",
        "",
        "Check manifests without touching AWS with `aviary validate FILE|DIR...`; add",
        "`-o json` to see each object as aviary will apply it, with every default filled in.",
        "",
        "## Rules that apply to every field",
        "",
        "- **Unknown fields are errors.** A misspelt field is reported with the closest known",
        "  name: `unknown field \"failureLimt\" (did you mean \"failureLimit\"?)`.",
        "- **Errors** are reported all at once, sorted, one per line:",
        "  `file:line:column: field.path: message`, e.g.",
        "  `app.yaml:14:22: spec.rollout.canary.steps[2].setWeight: must be at most 100, got 150`.",
        "  An invalid object is never acted on; the last valid version keeps running.",
        "- **Types** follow YAML 1.2: `yes`/`no`/`on`/`off` are strings, not booleans (write",
        "  `true`/`false`); quoted values are strings (`port: \"8080\"` is an error); strings",
        "  that look like numbers must be quoted where a string is expected (`env` values).",
        "  A field written as `null` (or left empty) counts as absent: its default applies.",
        "- **Durations** are a sequence of `<integer><unit>` with units `h`, `m`, `s`, `ms`, largest",
        "  first, each at most once: `500ms`, `30s`, `5m`, `1h`, `1h30m`. No fractions, no",
        "  spaces, at most 365 days.",
        "- **Defaults** are applied recursively: a missing object with a default (for example",
        "  `rollout`) is created and its own fields get their defaults. `image` and `port`",
        "  alone make a valid Application.",
        "- **YAML features**: anchors and aliases work within a document (bounded: at most",
        "  1000 aliases and 250000 nodes after expansion); merge keys (`<<`), custom tags and",
        "  duplicate keys are errors.",
        "- **Names**: the same kind and name defined twice (in one file or two) is an error on",
        "  both definitions.",
        "",
        "## Revisions and generations",
        "",
        "Each valid Application has a **revision**: the first 10 hex characters of SHA-256 over",
        "the canonical JSON (keys sorted, compact, UTF-8) of the fields that change the running",
        "container, after defaults: `image`, `port`, `command`, `args`, `cpu`, `memory`,",
        "`architecture`, `env`, `secrets`, `healthCheck`. A new revision starts a rollout;",
        "changes to other fields (scaling, notifications, rollout settings, ...) are applied in",
        "place. Every object also has a **generation** that starts at 1 and increments",
        "whenever its spec (after defaults) changes, as in Kubernetes.",
        "",
    ]
    for kind in KIND_ORDER:
        name, crd, schema = crds[kind]
        lines.extend(render_kind(kind, name, crd, schema))
    return "\n".join(lines).rstrip("\n") + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    ap.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = ap.parse_args()
    text = render()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        try:
            with open(OUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            sys.stderr.write(f"{os.path.relpath(OUT, ROOT)} is out of date with crds/; run "
                             "/usr/bin/python3 tools/gen_manifest_reference.py\n")
            sys.stderr.writelines(list(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True),
                "docs/manifest-reference.md", "generated", n=1))[:40])
            return 1
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
