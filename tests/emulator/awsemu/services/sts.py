"""STS: who is calling (GetCallerIdentity) and temporary credentials for IAM
roles (AssumeRole, AssumeRoleWithWebIdentity). Issued credentials are
registered in ``emulator.credentials`` so the core accepts requests signed
with them until they expire. Trust policies are evaluated: the caller (or
the web identity provider) must be allowed to assume the role."""

import base64
import datetime
import fnmatch
import hashlib
import json
import re

from .. import base
from ..base import AwsError

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _listify(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _b64url(part):
    pad = "=" * (-len(part) % 4)
    return base64.urlsafe_b64decode(part + pad)


class StsService(base.Service):
    SERVICE = "sts"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.sessions = {}  # access key id -> identity of issued credentials

    def _identity(self, access_key):
        """Account, Arn and UserId of the caller's access key."""
        s = self.sessions.get(access_key)
        if s is not None:
            return {"Account": base.ACCOUNT_ID, "Arn": s["Arn"], "UserId": s["AssumedRoleId"],
                    "chained": True}
        digest = hashlib.sha256((access_key or "").encode()).digest()
        user_id = "AIDA" + "".join(_UPPER[b % 32] for b in digest[:17])
        return {"Account": base.ACCOUNT_ID,
                "Arn": f"arn:aws:iam::{base.ACCOUNT_ID}:user/emulator-user",
                "UserId": user_id, "chained": False}

    def GetCallerIdentity(self, req, params):
        with self.lock:
            ident = self._identity(req.access_key)
        return {"UserId": ident["UserId"], "Account": ident["Account"], "Arn": ident["Arn"]}

    def _role(self, arn):
        if not re.fullmatch(r"arn:aws:iam::\d{12}:role/(?:[\x21-\x7e]+/)?[\w+=,.@-]+", arn):
            raise AwsError("ValidationError", f"{arn} is invalid", 400)
        return self.other("iam").get_role_by_arn(arn)

    @staticmethod
    def _statements(role, action):
        for s in _listify(role["TrustPolicy"].get("Statement")):
            actions = _listify(s.get("Action"))
            if s.get("Effect") == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in actions):
                yield s

    def _issue(self, role, session_name, duration, source=None):
        now = self.clock.now()
        akid = "ASIA" + base.rand_suffix(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        secret = base.rand_suffix(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        token = "IQoJb3JpZ2luX2VjE" + base.rand_suffix(
            300, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        expires = now + duration
        role_path_name = role["Arn"].split(":role/", 1)[1]
        role_name = role_path_name.rsplit("/", 1)[-1]
        arn = f"arn:aws:sts::{base.ACCOUNT_ID}:assumed-role/{role_name}/{session_name}"
        assumed_id = f"{role['RoleId']}:{session_name}"
        self.emulator.credentials[akid] = {"secret": secret, "token": token, "expires": expires}
        self.sessions[akid] = {"Arn": arn, "AssumedRoleId": assumed_id,
                               "RoleArn": role["Arn"], "source": source}
        return {"Credentials": {"AccessKeyId": akid, "SecretAccessKey": secret,
                                "SessionToken": token,
                                "Expiration": datetime.datetime.fromtimestamp(
                                    int(expires), datetime.timezone.utc)},
                "AssumedRoleUser": {"AssumedRoleId": assumed_id, "Arn": arn},
                "PackedPolicySize": 0}

    def _check_duration(self, role, duration, chained):
        if chained and duration > 3600:
            raise AwsError("ValidationError",
                           "The requested DurationSeconds exceeds the 1 hour session limit for "
                           "roles assumed by role chaining.", 400)
        if duration > role["MaxSessionDuration"]:
            raise AwsError("ValidationError",
                           "The requested DurationSeconds exceeds the MaxSessionDuration set for "
                           "this role.", 400)

    def AssumeRole(self, req, params):
        with self.lock:
            caller = self._identity(req.access_key)
            role = self._role(params["RoleArn"])
            denied = AwsError("AccessDenied",
                              f"User: {caller['Arn']} is not authorized to perform: sts:AssumeRole "
                              f"on resource: {params['RoleArn']}", 403)
            if role is None:
                raise denied
            accepted = {"*", base.ACCOUNT_ID, f"arn:aws:iam::{base.ACCOUNT_ID}:root", caller["Arn"]}
            if caller["chained"]:
                s = self.sessions[req.access_key]
                accepted.add(s["RoleArn"])
            allowed = False
            for s in self._statements(role, "sts:AssumeRole"):
                principal = s.get("Principal")
                aws = _listify(principal.get("AWS")) if isinstance(principal, dict) else \
                    _listify(principal)
                if any(p in accepted for p in aws):
                    cond = s.get("Condition") or {}
                    ext = (cond.get("StringEquals") or {}).get("sts:ExternalId")
                    if ext is not None and params.get("ExternalId") not in _listify(ext):
                        continue
                    allowed = True
            if not allowed:
                raise denied
            duration = params.get("DurationSeconds") or 3600
            self._check_duration(role, duration, caller["chained"])
            out = self._issue(role, params["RoleSessionName"], duration)
            if params.get("SourceIdentity"):
                out["SourceIdentity"] = params["SourceIdentity"]
            return out

    def AssumeRoleWithWebIdentity(self, req, params):
        token = params["WebIdentityToken"]
        parts = token.split(".")
        invalid = AwsError("InvalidIdentityToken", "The ID Token provided is not a valid JWT. "
                           "(You may see this error if you sent an Access Token)", 400)
        if len(parts) != 3 or not all(parts[:2]):
            raise invalid
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
        except (ValueError, TypeError):
            raise invalid
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise invalid
        issuer = claims.get("iss") or ""
        subject = claims.get("sub")
        if not issuer or not subject:
            raise AwsError("InvalidIdentityToken", "Missing a required claim: iss or sub", 400)
        now = self.clock.now()
        if claims.get("exp") is not None and float(claims["exp"]) <= now:
            raise AwsError("ExpiredTokenException", "Token expired: current date/time "
                           f"{int(now)} must be before the expiration date/time {claims['exp']}",
                           400)
        with self.lock:
            role = self._role(params["RoleArn"])
            denied = AwsError("AccessDenied", "Not authorized to perform "
                              "sts:AssumeRoleWithWebIdentity", 403)
            if role is None:
                raise denied
            provider = re.sub(r"^https://", "", issuer)
            allowed = False
            for s in self._statements(role, "sts:AssumeRoleWithWebIdentity"):
                principal = s.get("Principal")
                fed = _listify(principal.get("Federated")) if isinstance(principal, dict) else []
                if any(f == provider or f.endswith(f":oidc-provider/{provider}") for f in fed):
                    allowed = True
            if not allowed:
                raise denied
            duration = params.get("DurationSeconds") or 3600
            self._check_duration(role, duration, False)
            out = self._issue(role, params["RoleSessionName"], duration, source=provider)
            out["SubjectFromWebIdentityToken"] = subject
            out["Provider"] = provider
            aud = claims.get("aud")
            if aud is not None:
                out["Audience"] = aud[0] if isinstance(aud, list) else str(aud)
            return out
