"""Fault injection for AWS calls (never for /_emulator/): throttling, 500s,
added latency, dropped connections and one-shot failures, with seedable
randomness so that a fraction of calls fails deterministically."""

import random
import threading

from .base import AwsError
from . import codes


class Faults:
    def __init__(self, seed=0):
        self._lock = threading.Lock()
        self._seed = seed
        self._rand = random.Random(seed)
        self.config = {}

    def set(self, config):
        """Merge a fault configuration (see README); returns the result."""
        with self._lock:
            for key in ("throttle", "error500", "drop"):
                if key in config:
                    spec = config[key]
                    if spec is None:
                        self.config.pop(key, None)
                        continue
                    fraction = float(spec.get("fraction", 1.0))
                    if not 0.0 <= fraction <= 1.0:
                        raise ValueError(f"{key}.fraction must be within 0..1")
                    self.config[key] = {"fraction": fraction, "service": spec.get("service"),
                                        "operation": spec.get("operation")}
            if "latency_ms" in config:
                self.config["latency_ms"] = float(config["latency_ms"] or 0)
            if "fail_once" in config:
                spec = config["fail_once"]
                if not spec or not spec.get("operation"):
                    raise ValueError("fail_once needs an operation")
                self.config.setdefault("fail_once", []).append(
                    {"service": spec.get("service"), "operation": spec["operation"],
                     "code": spec.get("code"), "status": int(spec.get("status", 0) or 0),
                     "message": spec.get("message")})
            if "seed" in config:
                self._rand = random.Random(config["seed"])
            return self.snapshot()

    def clear(self):
        with self._lock:
            self.config = {}
            self._rand = random.Random(self._seed)

    def snapshot(self):
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.config.items()}

    @staticmethod
    def _applies(spec, service, operation):
        return ((not spec.get("service") or spec["service"] == service)
                and (not spec.get("operation") or spec["operation"] == operation))

    def _roll(self, key, service, operation):
        spec = self.config.get(key)
        if not spec or not self._applies(spec, service, operation):
            return False
        return self._rand.random() < spec["fraction"]

    def decide(self, model, operation):
        """What to do with a routed AWS call: (latency_seconds, action) where
        action is None, "drop" or an AwsError to answer instead."""
        service = model.service_name
        with self._lock:
            latency = self.config.get("latency_ms", 0.0) / 1000.0
            pending = self.config.get("fail_once", [])
            for i, spec in enumerate(pending):
                if self._applies(spec, service, operation):
                    del pending[i]
                    return latency, self._fail_once_error(model, spec)
            if self._roll("drop", service, operation):
                return latency, "drop"
            if self._roll("throttle", service, operation):
                return latency, codes.throttling_error(model)
            if self._roll("error500", service, operation):
                return latency, codes.internal_error(model)
        return latency, None

    @staticmethod
    def _fail_once_error(model, spec):
        if not spec.get("code"):
            err = codes.internal_error(model)
        elif spec["code"] in ("Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown"):
            err = codes.throttling_error(model)
        else:
            err = AwsError(spec["code"], spec.get("message") or f"Injected failure {spec['code']}")
        if spec.get("status"):
            err.status = spec["status"]
            err.sender_fault = spec["status"] < 500
        return err
