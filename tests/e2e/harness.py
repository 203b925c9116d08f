"""End-to-end harness: start the AWS emulator and the aviary binary on
loopback with temporary directories, talk to the emulator's control API,
and wait for conditions with bounded polls."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_EMULATOR = os.path.join(REPO, "tests", "emulator", "run-emulator")
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def wait_for(predicate, timeout=30.0, interval=0.1, message="condition"):
    """Poll ``predicate`` until it returns a truthy value (returned) or
    ``timeout`` seconds pass (AssertionError naming ``message`` and the last
    value or exception seen)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # report the last failure if we time out
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}; "
                                 f"last: {last!r}")
        time.sleep(interval)


def _stop_process(proc, timeout=STOP_TIMEOUT):
    """SIGTERM, bounded wait, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


class Emulator:
    """A running emulator process and its control API."""

    def __init__(self, workdir, delay_scale=0.02, seed=0, region=REGION):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port_file = os.path.join(self.workdir, "emulator.port")
        self.log_path = os.path.join(self.workdir, "emulator.log")
        self.region = region
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [RUN_EMULATOR, "--port", "0", "--port-file", self.port_file, "--region", region,
             "--delay-scale", str(delay_scale), "--seed", str(seed)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for(self._port_ready, timeout=START_TIMEOUT, interval=0.05,
                     message="the emulator's port file")
            self.port = int(open(self.port_file).read())
            self.url = f"http://127.0.0.1:{self.port}"
            wait_for(lambda: self.control("GET", "health")["status"] == "ok",
                     timeout=START_TIMEOUT, message="the emulator's health")
        except BaseException:
            self.stop()
            raise

    def _port_ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"emulator exited with {self.proc.returncode}: {self.log()}")
        return os.path.exists(self.port_file)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        code = _stop_process(self.proc)
        self._log.close()
        return code

    # --- control API --------------------------------------------------------
    def control(self, method, path, doc=None):
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(f"{self.url}/_emulator/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def health(self):
        return self.control("GET", "health")

    def calls(self, service=None, mutating=None, operation=None):
        q = {}
        if service:
            q["service"] = service
        if operation:
            q["operation"] = operation
        if mutating is not None:
            q["mutating"] = "1" if mutating else "0"
        return self.control("GET", "calls" + ("?" + urllib.parse.urlencode(q) if q else ""))

    def clear_calls(self):
        return self.control("DELETE", "calls")

    def set_profile(self, image, **profile):
        return self.control("PUT", "profiles", {image: profile})

    def set_traffic(self, default_rps=None, per_lb=None):
        doc = {}
        if default_rps is not None:
            doc["default_rps"] = default_rps
        if per_lb:
            doc["per_lb"] = per_lb
        return self.control("PUT", "traffic", doc)

    def faults(self, **spec):
        """Inject faults, e.g. faults(throttle={"fraction": 0.2})."""
        return self.control("POST", "faults", spec)

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def set_quotas(self, **quotas):
        """Raise service quotas, e.g. set_quotas(**{"elbv2.load_balancers": 200})."""
        return self.control("PUT", "quotas", quotas)

    def clock(self, offset=None, advance=None):
        doc = {}
        if offset is not None:
            doc["offset"] = offset
        if advance is not None:
            doc["advance"] = advance
        return self.control("POST", "clock", doc)

    def sns(self):
        return self.control("GET", "sns")

    def subscriptions(self):
        return self.control("GET", "subscriptions")

    def confirm_subscriptions(self):
        """Confirm every pending SNS subscription (the recipients clicked the
        link); returns how many were pending."""
        return self.control("POST", "subscriptions/confirm")["confirmed"]

    def push_image(self, image, create_repository=False):
        """Push ``image`` (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG) into the
        emulated ECR, as `docker push` would: ECS tasks whose image is not
        there fail to start (CannotPullContainerError). The repository must
        exist unless ``create_repository``. Returns the image digest."""
        return self.control("POST", "images", {"image": image,
                                               "create_repository": create_repository}
                            )["imageDigest"]

    def weights(self):
        return self.control("GET", "weights")

    def webhooks(self, name=None):
        return self.control("GET", "webhooks" + (f"/{urllib.parse.quote(name)}" if name else ""))

    def webhook_url(self, name):
        return f"{self.url}/_emulator/webhooks/{urllib.parse.quote(name)}"

    def aws_env(self, home):
        """Environment for a process that should use this emulator as AWS."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") or k == "AWS_PAGER"}
        env.update({"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region, "HOME": str(home),
                    "AWS_CONFIG_FILE": os.path.join(str(home), ".aws", "config"),
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(str(home), ".aws", "credentials"),
                    "AWS_EC2_METADATA_DISABLED": "true"})
        return env


def find_aviary():
    """Path of the aviary binary: $AVIARY_BIN, else build-asan/aviary, else
    build/aviary; None when none exists."""
    env = os.environ.get("AVIARY_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    for rel in ("build-asan/aviary", "build/aviary"):
        path = os.path.join(REPO, rel)
        if os.access(path, os.X_OK):
            return path
    return None


class Aviary:
    """Runs the aviary binary against an emulator, in its own HOME."""

    def __init__(self, binary, emulator, workdir):
        self.binary = binary
        self.emulator = emulator
        self.workdir = str(workdir)
        self.home = os.path.join(self.workdir, "home")
        os.makedirs(self.home, exist_ok=True)
        self.env = emulator.aws_env(self.home)
        self.daemons = []

    def run(self, *args, timeout=120, check=False, input=None):
        """Run one aviary command to completion (CompletedProcess, text)."""
        result = subprocess.run([self.binary, *args], env=self.env, cwd=self.workdir,
                                capture_output=True, text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"aviary {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def start(self, *args, log_name="aviary.log"):
        """Start a long-running aviary (e.g. ``run --source DIR``); stopped at
        teardown with SIGTERM. Returns the Popen; its output goes to a log."""
        log = open(os.path.join(self.workdir, log_name), "w")
        proc = subprocess.Popen([self.binary, *args], env=self.env, cwd=self.workdir,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.daemons.append((proc, log))
        return proc

    def log(self, log_name="aviary.log"):
        with open(os.path.join(self.workdir, log_name)) as f:
            return f.read()

    def stop(self):
        """Stop every daemon started here; returns their exit codes."""
        codes = []
        for proc, log in self.daemons:
            codes.append(_stop_process(proc))
            log.close()
        self.daemons = []
        return codes


def free_port():
    """A free loopback TCP port (for --listen)."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
