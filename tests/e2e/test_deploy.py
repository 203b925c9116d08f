"""Running aviary in production: the AWS call inventory and the IAM policy,
the systemd unit, `make install`, the container image's runtime packages,
the man page, the troubleshooting guide's reasons, and the threat check (no
secret key or session token in any output)."""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from harness import REPO, Aviary, find_aviary, free_port, wait_for

sys.path.insert(0, os.path.join(REPO, "tools"))
import aws_calls  # noqa: E402
import gen_iam_policy  # noqa: E402

PYTHON = "/usr/bin/python3"


# ---- tools/aws_calls.py on a synthetic tree ---------------------------------

SYNTHETIC = {
    "aws/client.c": """
int aws_call(struct aws_client *c, const char *service, const char *operation,
             const json_t *in, json_t **out, struct aws_error *err)
{
    return aws_call_ex(c, service, operation, in, NULL, out, err);
}
""",
    "aws/credentials_sts.c": """
static int fetch(bool web)
{
    const struct aws_service_model *svc = aws_model_service("sts");
    const char *action = web ? "AssumeRoleWithWebIdentity" : "AssumeRole";
    return form_add(&body, "Action", action);
}
""",
    "reconcilers/x.h": '#define SVC "ecs"\n',
    "reconcilers/x.c": """
#define OP_DESCRIBE "DescribeClusters"
static const char *const ops[] = {"ListTasks", "ListServices"};
/* app_read(ctx, "comment", "ec2", "NotACall", ...) is ignored */
int app_read(struct app_ctx *ctx, const char *resource, const char *service,
             const char *operation, json_t *in)
{
    return do_call(ctx, resource, service, operation, in);
}
static int do_call(struct app_ctx *ctx, const char *resource, const char *service,
                   const char *operation, json_t *in)
{
    return aws_call(ctx->aws, service, operation, in, NULL, NULL);
}
static int ec2_read(struct app_ctx *ctx, const char *op)
{
    return app_read(ctx, "r", "ec2", op, NULL);
}
static void f(struct app_ctx *ctx, bool e, int i)
{
    const char *local = "DeleteVpc";
    app_read(ctx, "r", SVC, OP_DESCRIBE, NULL);
    app_read(ctx, "r", "elbv2",
             e ? "ModifyListener" : "DeleteListener", json_pack("{s:s}", "a", "b"));
    ec2_read(ctx, "DescribeVpcs");
    ec2_read(ctx, local);
    app_read(ctx, "r", "ecs", ops[i], NULL);
}
static void g(struct app_ctx *ctx, const struct spec *s)
{
    app_read(ctx, "r", "sns", s->operation, NULL);
    int (*fp)(struct app_ctx *, const char *) = ec2_read;
}
""",
}


def test_aws_calls_resolves_wrappers_macros_ternaries_and_reports_the_rest(tmp_path):
    for rel, text in SYNTHETIC.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "controller").mkdir()
    ops, unresolved, wrappers = aws_calls.extract(str(tmp_path))
    assert set(ops) == {
        ("ecs", "DescribeClusters"), ("elbv2", "ModifyListener"), ("elbv2", "DeleteListener"),
        ("ec2", "DescribeVpcs"), ("ec2", "DeleteVpc"), ("ecs", "ListTasks"), ("ecs", "ListServices"),
        ("sts", "AssumeRole"), ("sts", "AssumeRoleWithWebIdentity")}
    assert {"app_read", "do_call", "ec2_read"} <= set(wrappers)
    assert any("s -> operation" in u and "reconcilers/x.c" in u for u in unresolved), unresolved
    assert any("ec2_read used without a call" in u for u in unresolved), unresolved
    assert len(unresolved) == 2


def test_every_aws_call_in_the_code_is_resolved_and_listed_in_operations_txt():
    ops, unresolved, _ = aws_calls.extract()
    assert unresolved == [], "calls tools/aws_calls.py cannot resolve:\n" + "\n".join(unresolved)
    assert ("sts", "GetCallerIdentity") in ops  # aviary doctor
    missing = sorted(set(ops) - aws_calls.read_operations_txt())
    assert missing == [], f"called but not in aws/api/operations.txt: {missing}"


def test_iam_mapping_uses_botocore_operation_names():
    import botocore.session
    session = botocore.session.get_session()
    for svc, op in sorted(aws_calls.read_operations_txt()):
        model = session.get_service_model(svc)
        assert op in model.operation_names, f"{svc} {op} is not a botocore operation"
        for action in aws_calls.iam_actions(svc, op):
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), action
    for key in list(aws_calls.IAM_ACTIONS) + list(aws_calls.NO_PERMISSION):
        svc, op = key.split()
        assert op in session.get_service_model(svc).operation_names, key


def _policy():
    with open(os.path.join(REPO, "deploy", "iam-policy.json")) as f:
        return json.load(f)


def _listify(v):
    return v if isinstance(v, list) else [v]


def test_iam_policy_grants_exactly_what_the_code_calls():
    ops, unresolved, _ = aws_calls.extract()
    assert unresolved == []
    needed = set(gen_iam_policy.needed_actions(ops))
    granted = {a for s in _policy()["Statement"] for a in _listify(s["Action"])}
    assert sorted(needed - granted) == [], "the policy misses actions the code needs"
    assert sorted(granted - needed) == [], "the policy grants actions no code calls"


def test_iam_policy_file_is_the_generators_output():
    r = subprocess.run([PYTHON, os.path.join(REPO, "tools", "gen_iam_policy.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


READ_PREFIXES = ("Describe", "List", "Get")
# Statements that change something on Resource "*" or without a tag/name
# scope, each for a reason written next to it in tools/gen_iam_policy.py.
UNSCOPED_WRITES = {"EcsDeregisterTaskDefinitions", "SnsUnsubscribe", "Ec2SecurityGroupInAnyVpc",
                   "Ec2SecurityGroupRules"}


def test_iam_policy_is_scoped():
    doc = _policy()
    assert doc["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids))
    tag_key = f"/{gen_iam_policy.TAG}"
    for s in doc["Statement"]:
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s
        actions = _listify(s["Action"])
        assert all("*" not in a for a in actions), s["Sid"]
        writes = [a for a in actions if not a.split(":")[1].startswith(READ_PREFIXES)]
        cond = json.dumps(s.get("Condition", {}))
        if writes and s["Resource"] == "*" and s["Sid"] not in UNSCOPED_WRITES:
            assert "Condition" in s, f"{s['Sid']} writes on Resource * without a condition"
        if s["Sid"].endswith("Tagged"):
            assert f"aws:RequestTag{tag_key}" in cond, s["Sid"]
        if s["Sid"].endswith("Owned") or s["Sid"].startswith("IamChange"):
            assert f"aws:ResourceTag{tag_key}" in cond, s["Sid"]
        if "iam:PassRole" in actions:
            assert "iam:PassedToService" in cond and s["Resource"] != "*", s["Sid"]
        if "iam:AttachRolePolicy" in actions:
            arns = s["Condition"]["ArnEquals"]["iam:PolicyARN"]
            assert arns == gen_iam_policy.managed_policy_arns()
    passed = {s["Condition"]["StringEquals"]["iam:PassedToService"]
              for s in doc["Statement"] if "iam:PassRole" in _listify(s["Action"])}
    assert passed <= {"ecs-tasks.amazonaws.com", "sagemaker.amazonaws.com"} and passed


def test_iam_policy_generator_refuses_an_action_without_a_statement(monkeypatch):
    ops = {("ecs", "RunTask"): ["reconcilers/x.c:1"]}
    with pytest.raises(KeyError, match="ecs:RunTask"):
        gen_iam_policy.policy(ops)


# ---- make install and the systemd unit --------------------------------------

def _install(tmp_path, binary):
    destdir = tmp_path / "root"
    r = subprocess.run(["make", "--no-print-directory", "-f", os.path.join(REPO, "deploy", "install.mk"),
                        "install", f"DESTDIR={destdir}", "PREFIX=/usr/local",
                        f"BUILD={os.path.dirname(binary)}", "INSTALL_DEPS="],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return destdir


def test_make_install_honours_prefix_and_destdir(tmp_path):
    binary = find_aviary()
    if binary is None:
        pytest.skip("aviary binary not built")
    root = _install(tmp_path, binary)
    for rel, mode in [("usr/local/bin/aviary", 0o755), ("usr/local/share/man/man1/aviary.1", 0o644),
                      ("usr/local/lib/systemd/system/aviary.service", 0o644),
                      ("usr/local/share/doc/aviary/aviary.env.example", 0o644),
                      ("usr/local/share/doc/aviary/iam-policy.json", 0o644)]:
        st = os.stat(root / rel)
        assert st.st_mode & 0o777 == mode, rel
    unit = (root / "usr/local/lib/systemd/system/aviary.service").read_text()
    assert "ExecStart=/usr/local/bin/aviary run " in unit
    r = subprocess.run([str(root / "usr/local/bin/aviary"), "version"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("aviary ")


def test_systemd_unit_verifies_and_is_hardened(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    binary = find_aviary()
    if binary is None:
        pytest.skip("aviary binary not built")
    root = _install(tmp_path, binary)
    installed_bin = root / "usr/local/bin/aviary"
    unit = (root / "usr/local/lib/systemd/system/aviary.service").read_text()
    # The unit names the binary by its final path; point it at the staged copy.
    staged = tmp_path / "unit" / "aviary.service"
    staged.parent.mkdir()
    staged.write_text(unit.replace("/usr/local/bin/aviary", str(installed_bin)))
    env = dict(os.environ, MANPATH=str(root / "usr/local/share/man"), SYSTEMD_LOG_LEVEL="notice")
    r = subprocess.run(["systemd-analyze", "verify", str(staged)], capture_output=True, text=True,
                       env=env, timeout=60)
    out = (r.stdout + r.stderr).strip()
    # Some containers lack a system bus or cgroup access: skip only then.
    if r.returncode != 0 and re.search(r"Failed to (initialize manager|connect to bus|setup)", out):
        pytest.skip(f"systemd-analyze cannot run here: {out.splitlines()[0]}")
    assert r.returncode == 0 and out == "", out
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                        str(staged)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    directives = dict(line.split("=", 1) for line in unit.splitlines()
                      if "=" in line and not line.startswith("#"))
    assert directives["DynamicUser"] == "yes" and directives["StateDirectory"] == "aviary"
    assert directives["NoNewPrivileges"] == "yes" and directives["ProtectSystem"] == "strict"
    assert directives["ProtectHome"] == "yes" and directives["PrivateTmp"] == "yes"
    assert directives["RestrictAddressFamilies"] == "AF_INET AF_INET6 AF_UNIX"
    assert directives["CapabilityBoundingSet"] == "" and directives["Restart"] == "on-failure"
    assert "@system-service" in unit and "-HUP $MAINPID" in directives["ExecReload"]
    assert directives["EnvironmentFile"].startswith("/etc/aviary/")
    assert "--state-dir" not in directives["ExecStart"]  # $STATE_DIRECTORY is the default


def test_state_directory_environment_is_the_default_state_dir(tmp_path):
    binary = find_aviary()
    if binary is None:
        pytest.skip("aviary binary not built")
    src = tmp_path / "manifests"
    src.mkdir()
    (src / "app.yaml").write_text(APP_MANIFEST)
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(STATE_DIRECTORY=str(state), HOME=str(tmp_path / "home"))
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen([binary, "run", "--reconcilers", "noop", "--source", str(src),
                                 "--listen", f"127.0.0.1:{port}"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: _get(port, "/readyz")[0] == 200, timeout=30, message="readyz")
            wait_for(lambda: any(os.scandir(state)), timeout=30, message="a file in $STATE_DIRECTORY")
        finally:
            proc.terminate()
            assert proc.wait(timeout=30) == 0
    assert not (tmp_path / "home").exists()


# ---- the container image's runtime packages ---------------------------------

def _runtime_packages():
    with open(os.path.join(REPO, "deploy", "runtime-packages.txt")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def _package_of(path):
    for candidate in (path, os.path.realpath(path)):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
        # merged /usr: /lib/x86_64-linux-gnu is /usr/lib/x86_64-linux-gnu
        alt = candidate[4:] if candidate.startswith("/usr/") else "/usr" + candidate
        r = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    raise AssertionError(f"no Debian package owns {path}")


# Sanitizer runtimes are in the test build only (make test runs build-asan).
SANITIZER_LIBS = re.compile(r"lib(asan|ubsan|lsan|tsan)\.so")
# Packages in every Debian image (Essential: yes or priority required).
BASE = {"libc6"}


def test_runtime_package_list_matches_the_binary():
    binary = find_aviary()
    if binary is None:
        pytest.skip("aviary binary not built")
    if shutil.which("readelf") is None or shutil.which("dpkg") is None:
        pytest.skip("readelf or dpkg missing")
    pkgs = _runtime_packages()
    assert len(pkgs) == len(set(pkgs))
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=True).stdout
    paths = {}
    for line in ldd.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m and not SANITIZER_LIBS.search(m.group(1)):
            paths[m.group(1)] = m.group(2)
    dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    needed = [n for n in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn)
              if not SANITIZER_LIBS.search(n) and not n.startswith("ld-linux")]
    direct = {_package_of(paths[n]) for n in needed}
    listed = set(pkgs) - {"ca-certificates"}  # TLS trust store for libcurl, not a library
    assert sorted(direct - listed - BASE) == [], "libraries of packages missing from the list"
    assert sorted(listed - direct) == [], "packages in the list that the binary does not link"
    assert "ca-certificates" in pkgs
    # Every library ldd resolves comes from the list or what apt pulls in for it.
    closure = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", *pkgs],
        capture_output=True, text=True, timeout=120)
    assert closure.returncode == 0, closure.stderr
    closure_pkgs = {line.strip().split(":")[0] for line in closure.stdout.splitlines()
                    if line and not line.startswith(" ")}
    closure_pkgs |= {line.split(":", 1)[1].strip().strip("<>").split(":")[0]
                     for line in closure.stdout.splitlines() if "Depends:" in line}
    for soname, path in sorted(paths.items()):
        pkg = _package_of(path)
        assert pkg in closure_pkgs or pkg in BASE, f"{soname} ({pkg}) is not installed by the list"
    r = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", *pkgs],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "E:" not in r.stderr


def test_dockerfile_is_multi_stage_non_root_and_uses_the_package_list():
    text = open(os.path.join(REPO, "deploy", "Dockerfile")).read()
    code = [line for line in text.splitlines() if not line.startswith("#")]
    froms = [line for line in code if line.startswith("FROM ")]
    assert froms == ["FROM debian:12-slim AS build", "FROM debian:12-slim"]
    runtime = "\n".join(code[code.index(froms[1]):])
    assert "runtime-packages.txt" in runtime and "-dev" not in runtime
    assert "COPY --from=build /build/aviary" in runtime
    user = re.search(r"^USER (\S+)", runtime, re.M)
    assert user and user.group(1).split(":")[0] not in ("root", "0")
    assert "AWS_SECRET_ACCESS_KEY" not in "\n".join(code) and "AWS_ACCESS_KEY_ID" not in "\n".join(code)
    for line in code:  # COPY sources exist
        m = re.match(r"COPY (?!--from)(.+) (\S+)$", line)
        if m:
            for src in m.group(1).split():
                assert os.path.exists(os.path.join(REPO, src)), src


# ---- the man page --------------------------------------------------------------

def test_man_page_documents_every_command_and_run_option():
    binary = find_aviary()
    if binary is None:
        pytest.skip("aviary binary not built")
    man = open(os.path.join(REPO, "man", "aviary.1")).read().replace("\\-", "-")
    commands = re.findall(r"^  (\w+) ", subprocess.run([binary, "help"], capture_output=True,
                                                       text=True, timeout=30).stdout, re.M)
    assert "run" in commands and "doctor" in commands
    for c in commands:
        assert re.search(rf"\b{c}\b", man), f"command {c} missing from man/aviary.1"
    run_help = subprocess.run([binary, "run", "--help"], capture_output=True, text=True,
                              timeout=30).stdout
    for opt in set(re.findall(r"(--[a-z][a-z0-9-]+)", run_help)):
        assert opt in man, f"{opt} missing from man/aviary.1"
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", "-Tutf8", os.path.join(REPO, "man", "aviary.1")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stderr == "", r.stderr


# ---- docs/troubleshooting.md covers every reason --------------------------------

def _reasons():
    """Literal reasons given to status_set_condition (4th argument) and
    status_add_event (3rd), and to the rollout machine's event(),
    begin_rollback() and pause_rollout(), resolved like AWS operations."""
    r = aws_calls.Resolver()
    r.load(REPO)
    found, unresolved = set(), []
    for fn in r.functions:
        sinks = [("status_set_condition", 3), ("status_add_event", 2)]
        if fn.path.endswith("rollout_machine.c"):
            sinks += [("event", 2), ("begin_rollback", 1), ("pause_rollout", 1)]
        for sink, idx in sinks:
            for line, args in aws_calls._calls(fn, sink):
                if args is None or len(args) <= idx:
                    continue
                try:
                    vals = r.resolve(fn, args[idx])
                except aws_calls.Unresolved as e:
                    unresolved.append(f"{fn.path}:{line}: {e}")
                    continue
                found |= {v for kind, v in vals if kind == "lit" and re.fullmatch(r"[A-Z]\w+", v)}
    return found, unresolved


def test_troubleshooting_guide_explains_every_reason():
    doc = open(os.path.join(REPO, "docs", "troubleshooting.md")).read()
    reasons, _ = _reasons()
    assert len(reasons) > 10
    missing = sorted(r for r in reasons if f"`{r}`" not in doc)
    assert missing == [], f"reasons missing from docs/troubleshooting.md: {missing}"


# ---- threat check: no secret in any output --------------------------------------

APP_MANIFEST = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: leakcheck
spec:
  image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/leakcheck:1.0.0
  port: 8080
"""
BAD_MANIFEST = """apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: broken
spec:
  port: "not a port"
  failureLimt: 3
"""


def _get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def _fragments(secret, skip_prefix=0):
    """The secret and pieces of it long enough to matter (a truncated leak counts)."""
    body = secret[skip_prefix:]
    out = {secret}
    for i in range(0, max(1, len(body) - 16), 8):
        out.add(body[i:i + 16])
    return out


def _temporary_credentials(emulator):
    import boto3
    kw = dict(endpoint_url=emulator.url, region_name=emulator.region,
              aws_access_key_id="AKIDEXAMPLE",
              aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    iam = boto3.client("iam", **kw)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "*"}}]}
    role = iam.create_role(RoleName="aviary-leakcheck", AssumeRolePolicyDocument=json.dumps(trust))
    creds = boto3.client("sts", **kw).assume_role(RoleArn=role["Role"]["Arn"],
                                                  RoleSessionName="leakcheck")["Credentials"]
    s3 = boto3.client("s3", endpoint_url=emulator.url, region_name=emulator.region,
                      aws_access_key_id=creds["AccessKeyId"],
                      aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    s3.create_bucket(Bucket="leak-manifests")
    s3.put_object(Bucket="leak-manifests", Key="apps/app.yaml", Body=APP_MANIFEST.encode())
    s3.put_object(Bucket="leak-manifests", Key="apps/broken.yaml", Body=BAD_MANIFEST.encode())
    return creds


def test_no_secret_key_or_session_token_in_any_output(aviary, emulator, tmp_path):
    creds = _temporary_credentials(emulator)
    secret, token = creds["SecretAccessKey"], creds["SessionToken"]
    aviary.env.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=secret,
                      AWS_SESSION_TOKEN=token)
    outputs = {}
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "app.yaml").write_text(APP_MANIFEST)
    (manifests / "broken.yaml").write_text(BAD_MANIFEST)

    def cli(name, *args):
        r = aviary.run(*args, timeout=120)
        outputs[f"aviary {name} (exit {r.returncode})"] = r.stdout + r.stderr
        return r

    assert cli("doctor", "doctor").returncode == 0
    cli("validate", "validate", str(manifests))
    cli("plan", "plan", str(manifests / "app.yaml"))

    # The daemon, twice: the noop reconcilers on the S3 source (AWS calls with
    # the temporary credentials, nothing created), then the real reconcilers
    # on a directory, with a fault so that AWS errors are logged too.
    state_dirs = []
    for n, (source, extra) in enumerate([("s3://leak-manifests/apps/", ["--reconcilers", "noop",
                                                                        "--s3-interval", "1s"]),
                                         (str(manifests), [])]):
        port = free_port()
        state = tmp_path / f"state{n}"
        state_dirs.append(state)
        if n == 1:
            emulator.faults(throttle={"fraction": 0.2})
        aviary.start("run", "--source", source, "--state-dir", str(state), "--listen",
                     f"127.0.0.1:{port}", "--log-level", "debug", "--log-format",
                     "json" if n else "text", *extra, log_name=f"daemon{n}.log")
        wait_for(lambda: _get(port, "/readyz")[0] == 200, timeout=60, message="readyz")
        wait_for(lambda: "leakcheck" in _get(port, "/v1/objects")[1], timeout=60,
                 message="the Application in /v1/objects")
        if n == 1:  # let the reconciler make some calls (and errors)
            wait_for(lambda: len(emulator.calls()) > 5, timeout=60, message="AWS calls")
        for path in ("/healthz", "/readyz", "/metrics", "/v1/objects",
                     "/v1/objects/Application/leakcheck", "/v1/objects/Application/broken",
                     "/v1/objects/Application/nope"):
            outputs[f"GET {path} ({n})"] = _get(port, path)[1]
        outputs[f"POST pause ({n})"] = _get(port, "/v1/objects/Application/leakcheck/pause", "POST")[1]
        for args in (["status"], ["status", "-o", "json"], ["status", "leakcheck"],
                     ["status", "broken", "-o", "json"], ["resume", "leakcheck"]):
            cli(" ".join(args) + f" ({n})", *args, "--server", f"127.0.0.1:{port}")
        emulator.clear_faults()
        aviary.stop()
        outputs[f"daemon log {n}"] = aviary.log(f"daemon{n}.log")
        assert "leakcheck" in outputs[f"daemon log {n}"] or outputs[f"GET /v1/objects ({n})"]
    for state in state_dirs:
        for dirpath, _, files in os.walk(state):
            for f in files:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    outputs[f"state file {os.path.relpath(os.path.join(dirpath, f), state)}"] = \
                        fh.read().decode("utf-8", "replace")
    # The outputs are real: the doctor proved the credentials work and the
    # daemon reported the objects.
    assert "leakcheck" in outputs["GET /v1/objects (0)"]
    assert any(k.startswith("state file") for k in outputs)
    needles = _fragments(secret) | _fragments(token, skip_prefix=17)  # token's fixed prefix
    leaks = [(where, n) for where, text in outputs.items() for n in needles if n in text]
    assert leaks == [], f"secret material found in: {sorted({w for w, _ in leaks})}"
