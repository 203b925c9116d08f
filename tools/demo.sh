#!/usr/bin/env bash
# make demo: runs aviary against the local AWS emulator and narrates what
# happens: the example application converges, a good version is released as a
# canary and promoted step by step, a bad version (5xx) is rolled back
# automatically with the alert shown. Stops everything it started on exit.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
AVIARY=${AVIARY_BIN:-$top/build/aviary}
work=$(mktemp -d /tmp/aviary-demo.XXXXXX)
emu_pid=""
aviary_pid=""

stop_pid() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

cleanup() {
    stop_pid "$aviary_pid"
    stop_pid "$emu_pid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# control METHOD PATH [JSON]: the emulator's control API (test double only).
control() {
    "$PYTHON" - "$endpoint" "$@" <<'PY'
import json, sys, urllib.request
url, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(f"{url}/_emulator/{path}", data=data, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=10).read().decode())
PY
}

# field NAME EXPR: a Python expression over the status object `s`.
field() {
    "$AVIARY" status "$1" -o json --server "$server" 2>/dev/null |
        "$PYTHON" -c "import json,sys; s=json.load(sys.stdin); print($2)" 2>/dev/null || true
}

# wait_for SECONDS DESCRIPTION COMMAND...: bounded wait, printing progress.
wait_for() {
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 2; i++)); do
        if "$@"; then return 0; fi
        kill -0 "$aviary_pid" 2>/dev/null || { tail -20 "$work/aviary.log"; exit 1; }
        sleep 0.5
    done
    echo "gave up waiting for $what after ${limit}s"
    tail -20 "$work/aviary.log"
    exit 1
}

say "Starting the local AWS emulator (tests/emulator) on a free loopback port"
"$top/tests/emulator/run-emulator" --port 0 --port-file "$work/port" --delay-scale 0.02 \
    >"$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
    [ -s "$work/port" ] && break
    kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emulator.log"; exit 1; }
    sleep 0.1
done
[ -s "$work/port" ] || { echo "emulator did not start"; cat "$work/emulator.log"; exit 1; }
endpoint="http://127.0.0.1:$(cat "$work/port")"
echo "emulator: $endpoint (AWS delays shortened 50 times; metrics in real seconds)"

export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export HOME="$work"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION

mkdir -p "$work/manifests"
cp "$top/examples/training.yaml" "$work/manifests/"
cp -r "$top/examples/data" "$work/manifests/"

say "Validating the example manifests (no AWS access needed)"
run "$AVIARY" validate "$top/examples"

say "A typo in a manifest is an error with file, line, column and field, never ignored"
sed 's/failureLimit:/failureLimt:/' "$top/examples/fraud-model.yaml" >"$work/typo.yaml"
run "$AVIARY" validate "$work/typo.yaml" || echo "(exit status $?: rejected, as it should be)"

say "aviary's AWS client against the emulator: credentials, region, endpoints, signed calls"
run "$AVIARY" doctor | grep -v '^  '

# The demo's application: examples/fraud-model.yaml with second-scale rollout
# timings, so a canary completes in well under a minute. The image lives in
# the emulated ECR (pushed below, as CI would); its "profile" in the emulator
# decides how the version behaves under traffic.
registry=123456789012.dkr.ecr.us-east-1.amazonaws.com
hook="$endpoint/_emulator/webhooks/ml-team"
write_app() { # write_app TAG MODEL_VERSION
    cat >"$work/manifests/.fraud-model.yaml.tmp" <<EOF
apiVersion: aviary.io/v1alpha1
kind: Application
metadata:
  name: fraud-model
spec:
  image: $registry/fraud:$1
  port: 8080
  healthCheck: {path: /health, interval: 5s, timeout: 2s, healthyThreshold: 2}
  cpu: 512
  memory: 1024
  env: {MODEL_VERSION: "$2"}
  network: {cidr: 10.40.0.0/16, natGateway: true}
  scaling: {min: 2, max: 10, cpuPercent: 70}
  notifications:
    email: [ml-team@example.com]
    webhooks: [{url: "$hook", format: slack}]
  rollout:
    strategy: canary
    scaleDownDelay: 2s
    canary:
      steps:
        - setWeight: 20
        - pause: {duration: 6s}
        - setWeight: 50
        - pause: {duration: 6s}
    analysis:
      interval: 2s
      failureLimit: 0
      minRequests: 20
      metrics:
        - {name: error-rate, type: errorRate, max: 0.02}
        - {name: p99, type: latency, stat: p99, max: 0.8}
EOF
    mv "$work/manifests/.fraud-model.yaml.tmp" "$work/manifests/fraud-model.yaml"
}

control POST images "{\"image\": \"$registry/fraud:1.4.2\", \"create_repository\": true}" >/dev/null
control PUT traffic '{"default_rps": 100}' >/dev/null
write_app 1.4.2 1.4.2

say "Running the controller on the manifests (fraud-model and a training environment)"
api_port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server="127.0.0.1:$api_port"
printf '$ %s\n' "aviary run --source manifests --state-dir state --listen $server --resync 10s"
"$AVIARY" run --source "$work/manifests" --state-dir "$work/state" --listen "$server" \
    --resync 10s >"$work/aviary.log" 2>&1 &
aviary_pid=$!
ready() { [ "$(field fraud-model 's.get("phase")')" = "Ready" ]; }
wait_for 120 "fraud-model to be Ready" ready
run "$AVIARY" status --server "$server"
echo
echo "Endpoint:  $(field fraud-model 's.get("endpoint")')"
echo "Dashboard: $(field fraud-model 's.get("dashboardUrl")')"
echo "Created:   VPC, 4 subnets, NAT gateway, ALB with two target groups, ECS cluster,"
echo "           services fraud-model-a/-b, autoscaling, SNS topic, alarms, dashboard."

revision() { field fraud-model 's.get("observedRevision","")'; }
weights() { field fraud-model '"%s stable / %s canary" % (100-s.get("rollout",{}).get("weight",0), s.get("rollout",{}).get("weight",0))'; }

say "Releasing version 1.5.0 (healthy): a canary, promoted step by step"
control POST images "{\"image\": \"$registry/fraud:1.5.0\"}" >/dev/null
control PUT profiles "{\"$registry/fraud:1.5.0\": {\"error_rate\": 0.001}}" >/dev/null
old=$(revision)
write_app 1.5.0 1.5.0
last=""
promoted() {
    local w phase
    w=$(weights)
    phase=$(field fraud-model 's.get("phase")')
    if [ "$w" != "$last" ]; then echo "  traffic: $w  (phase $phase)"; last=$w; fi
    [ "$phase" = "Ready" ] && [ "$(revision)" != "$old" ]
}
wait_for 120 "the canary to be promoted" promoted
run "$AVIARY" status --server "$server"

say "Releasing version 1.6.0, which answers 30% of requests with 5xx"
control POST images "{\"image\": \"$registry/fraud:1.6.0\"}" >/dev/null
control PUT profiles "{\"$registry/fraud:1.6.0\": {\"error_rate\": 0.3}}" >/dev/null
write_app 1.6.0 1.6.0
last=""
rolled_back() {
    local w phase
    w=$(weights)
    phase=$(field fraud-model 's.get("phase")')
    if [ "$w" != "$last" ]; then echo "  traffic: $w  (phase $phase)"; last=$w; fi
    [ "$phase" = "RolledBack" ]
}
wait_for 120 "the automatic rollback" rolled_back
printf '$ %s\n' "aviary status fraud-model   (conditions and analysis; the last events)"
"$AVIARY" status fraud-model --server "$server" | sed -n '/^Conditions:/,/^Events:/p' | grep -v '^Events:'
"$AVIARY" status fraud-model --server "$server" | sed -n '/^Events:/,$p' | tail -n 5
echo
echo "Users are still served revision $(revision), the promoted 1.5.0."
echo "The alert, as SNS and the Slack webhook received it:"
control GET sns | "$PYTHON" -c '
import json, sys
for p in json.load(sys.stdin):
    if "rolled back" in (p.get("subject") or "").lower() or "rollback" in (p.get("subject") or "").lower():
        print("  SNS subject:", p["subject"]); print("  " + p["message"].replace("\n", "\n  ")[:1200])'
control GET webhooks/ml-team | "$PYTHON" -c '
import json, sys
hooks = json.load(sys.stdin)
print("  webhook deliveries:", len(hooks))
for h in hooks[-1:]:
    body = h["body"] if isinstance(h["body"], dict) else json.loads(h["body"])
    print("  Slack text:", body.get("text", "")[:300])'

say "Done"
echo "Everything ran against the local emulator; nothing touched a real AWS account."
