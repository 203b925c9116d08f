"""The control API under /_emulator/ (unsigned JSON): health, call log,
image profiles, traffic, SNS publishes and subscriptions, listener weight
history, ECR image pushes, webhook sink, fault injection and the emulated
clock."""

import json
import urllib.parse

from .base import AwsError


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _json_body(raw):
    if not raw.body.strip():
        return {}
    try:
        doc = json.loads(raw.body)
    except ValueError as exc:
        raise ControlError(400, f"body is not JSON: {exc}")
    if not isinstance(doc, dict):
        raise ControlError(400, "body must be a JSON object")
    return doc


def _truthy(text):
    return text.lower() in ("1", "true", "yes")


class Control:
    def __init__(self, app):
        self.app = app
        self.emu = app.emulator

    def handle(self, raw):
        """(status, headers, body) of a control request."""
        parts = [p for p in raw.path[len("/_emulator/"):].split("/") if p]
        name = parts[0] if parts else ""
        method = getattr(self, f"{raw.method.lower()}_{name}", None)
        try:
            if method is None:
                raise ControlError(404, f"no control endpoint {raw.method} {raw.path}")
            result = method(raw, parts[1:])
            status = 200
        except ControlError as exc:
            status, result = exc.status, {"error": str(exc)}
        except (ValueError, TypeError) as exc:
            status, result = 400, {"error": str(exc)}
        body = json.dumps(result, default=str).encode()
        return status, {"Content-Type": "application/json"}, body

    # --- health, clock, ticks ---------------------------------------------
    def get_health(self, raw, rest):
        return {"status": "ok", "region": self.emu.region,
                "services": sorted(self.emu.services),
                "load_errors": self.app.load_errors,
                "output_warnings": list(self.app.output_warnings), "now": self.emu.clock.now()}

    def get_clock(self, raw, rest):
        return {"now": self.emu.clock.now(), "offset": self.emu.clock.offset,
                "delay_scale": self.emu.clock.delay_scale}

    def post_clock(self, raw, rest):
        doc = _json_body(raw)
        with self.emu.lock:
            if "offset" in doc:
                self.emu.clock.offset = float(doc["offset"])
            if "advance" in doc:
                self.emu.clock.offset += float(doc["advance"])
        self.app.tick_all()
        return self.get_clock(raw, rest)

    def post_tick(self, raw, rest):
        self.app.tick_all()
        return {"ok": True}

    # --- call log -----------------------------------------------------------
    def get_calls(self, raw, rest):
        q = raw.query_dict()
        with self.emu.lock:
            calls = list(self.emu.calls)
        if q.get("service"):
            calls = [c for c in calls if c["service"] == q["service"]]
        if q.get("operation"):
            calls = [c for c in calls if c["operation"] == q["operation"]]
        if "mutating" in q:
            want = _truthy(q["mutating"])
            calls = [c for c in calls if c["mutating"] == want]
        if q.get("since"):
            since = float(q["since"])
            calls = [c for c in calls if c["time"] >= since]
        return calls

    def delete_calls(self, raw, rest):
        with self.emu.lock:
            n = len(self.emu.calls)
            del self.emu.calls[:]
        return {"deleted": n}

    # --- profiles and traffic -------------------------------------------------
    def get_profiles(self, raw, rest):
        with self.emu.lock:
            return {"default": dict(self.emu.default_profile),
                    "profiles": json.loads(json.dumps(self.emu.profiles))}

    def put_profiles(self, raw, rest):
        doc = _json_body(raw)
        with self.emu.lock:
            for image, profile in doc.items():
                if not isinstance(profile, dict):
                    raise ControlError(400, f"profile of {image} must be an object")
                if image == "default":
                    self.emu.default_profile.update(profile)
                else:
                    self.emu.profiles.setdefault(image, {}).update(profile)
        return self.get_profiles(raw, rest)

    post_profiles = put_profiles

    def get_traffic(self, raw, rest):
        with self.emu.lock:
            return json.loads(json.dumps(self.emu.traffic))

    def put_traffic(self, raw, rest):
        doc = _json_body(raw)
        with self.emu.lock:
            if "default_rps" in doc:
                rps = float(doc["default_rps"])
                if rps < 0:
                    raise ControlError(400, "default_rps must be >= 0")
                self.emu.traffic["default_rps"] = rps
            for lb, rps in (doc.get("per_lb") or {}).items():
                if rps is None:
                    self.emu.traffic["per_lb"].pop(lb, None)
                else:
                    self.emu.traffic["per_lb"][lb] = float(rps)
        return self.get_traffic(raw, rest)

    post_traffic = put_traffic

    # --- views delegated to service modules -------------------------------------
    def get_sns(self, raw, rest):
        with self.emu.lock:
            return list(self.emu.sns_publishes)

    def get_subscriptions(self, raw, rest):
        sns = self.emu.services.get("sns")
        view = getattr(sns, "subscriptions_view", None)
        if view is None:
            return []
        with self.emu.lock:
            return view()

    def post_subscriptions(self, raw, rest):
        """POST subscriptions/confirm: every pending SNS subscription is
        confirmed, as if each recipient had clicked the link."""
        if rest != ["confirm"]:
            raise ControlError(404, "POST /_emulator/subscriptions/confirm")
        sns = self.emu.services.get("sns")
        confirm = getattr(sns, "confirm_all_internal", None)
        if confirm is None:
            raise ControlError(404, "no SNS module loaded")
        with self.emu.lock:
            return {"confirmed": confirm()}

    def post_images(self, raw, rest):
        """POST images {"image": URI, "create_repository": bool}: push an image
        into this account's ECR, as `docker push` would. The repository must
        exist unless create_repository is true."""
        doc = _json_body(raw)
        ecr = self.emu.services.get("ecr")
        if ecr is None or not hasattr(ecr, "parse_image_uri"):
            raise ControlError(404, "no ECR module loaded")
        parsed = ecr.parse_image_uri(str(doc.get("image") or ""))
        if parsed is None:
            raise ControlError(400, "image must be ACCOUNT.dkr.ecr.REGION.amazonaws.com/"
                               "REPOSITORY[:TAG] of this emulator's account")
        region, name, tag, digest = parsed
        if digest is not None:
            raise ControlError(400, "push by tag, not by digest")
        with self.emu.lock:
            if (region, name) not in ecr.repos:
                if not doc.get("create_repository"):
                    raise ControlError(404, f"repository {name} does not exist in {region}")
                ecr.create_repository_internal(region, name)
            try:
                digest = ecr.push_image_internal(name, tag, region=region)
            except AwsError as exc:
                raise ControlError(409, f"{exc.code}: {exc.message}")
        return {"image": doc["image"], "imageDigest": digest}

    def get_weights(self, raw, rest):
        elbv2 = self.emu.services.get("elbv2")
        history = getattr(elbv2, "weight_history", None)
        if history is None:
            return []
        with self.emu.lock:
            return history()

    # --- webhook sink -------------------------------------------------------------
    def post_webhooks(self, raw, rest):
        if not rest:
            raise ControlError(404, "POST /_emulator/webhooks/NAME")
        text = raw.body.decode("utf-8", errors="replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        entry = {"time": self.emu.clock.now(), "name": urllib.parse.unquote("/".join(rest)),
                 "headers": {k: ",".join(v) for k, v in raw.headers.items()}, "body": body}
        with self.emu.lock:
            self.emu.webhooks.append(entry)
        return {"ok": True}

    def get_webhooks(self, raw, rest):
        with self.emu.lock:
            hooks = list(self.emu.webhooks)
        name = rest[0] if rest else raw.query_dict().get("name")
        return [h for h in hooks if not name or h["name"] == name]

    def delete_webhooks(self, raw, rest):
        with self.emu.lock:
            del self.emu.webhooks[:]
        return {"ok": True}

    # --- quotas -------------------------------------------------------------------
    def get_quotas(self, raw, rest):
        with self.emu.lock:
            return dict(self.emu.quotas)

    def put_quotas(self, raw, rest):
        """PUT quotas {"elbv2.load_balancers": 200}: a service quota increase."""
        doc = _json_body(raw)
        with self.emu.lock:
            for name, value in doc.items():
                if name not in self.emu.quotas:
                    raise ControlError(400, f"unknown quota {name!r}; known: "
                                       f"{', '.join(sorted(self.emu.quotas))}")
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ControlError(400, f"quota {name} must be a non-negative integer")
                self.emu.quotas[name] = value
            return dict(self.emu.quotas)

    # --- faults -------------------------------------------------------------------
    def get_faults(self, raw, rest):
        return self.app.faults.snapshot()

    def post_faults(self, raw, rest):
        return self.app.faults.set(_json_body(raw))

    put_faults = post_faults

    def delete_faults(self, raw, rest):
        self.app.faults.clear()
        return {}
