"""CloudWatch Logs log groups: creation with tags, retention (AWS's allowed
values only), tags, and listing with prefix/pattern and pagination."""

import base64
import json

from .. import base
from ..base import AwsError

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)
MAX_TAGS = 50


def _check_tags(tags, current):
    merged = dict(current)
    for k, v in (tags or {}).items():
        if not 1 <= len(k) <= 128 or len(v) > 256:
            raise AwsError("InvalidParameterException",
                           "1 validation error detected: Value at 'tags' failed to satisfy "
                           "constraint: Map keys must have length between 1 and 128 and values "
                           "at most 256")
        if k.lower().startswith("aws:"):
            raise AwsError("InvalidParameterException", "Tag keys prefixed with 'aws:' are reserved")
        merged[k] = v
    if len(merged) > MAX_TAGS:
        raise AwsError("TooManyTagsException",
                       f"A resource can have no more than {MAX_TAGS} tags.")
    return merged


class LogsService(base.Service):
    SERVICE = "logs"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.groups = {}  # (region, name) -> record

    def _group(self, region, name):
        g = self.groups.get((region, name))
        if g is None:
            raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")
        return g

    def CreateLogGroup(self, req, params):
        name = params["logGroupName"]
        with self.lock:
            if (req.region, name) in self.groups:
                raise AwsError("ResourceAlreadyExistsException",
                               "The specified log group already exists")
            tags = _check_tags(params.get("tags"), {})
            if len([g for g in self.groups.values() if g["_region"] == req.region]) >= 1000000:
                raise AwsError("LimitExceededException", "Resource limit exceeded.")
            g = {"_region": req.region, "_tags": tags,
                 "logGroupName": name,
                 "creationTime": int(self.clock.now() * 1000),
                 "metricFilterCount": 0,
                 "arn": base.arn("logs", req.region, f"log-group:{name}:*"),
                 "storedBytes": 0}
            if params.get("kmsKeyId"):
                g["kmsKeyId"] = params["kmsKeyId"]
            self.groups[(req.region, name)] = g
        return {}

    def DeleteLogGroup(self, req, params):
        with self.lock:
            g = self._group(req.region, params["logGroupName"])
            del self.groups[(req.region, g["logGroupName"])]
        return {}

    def PutRetentionPolicy(self, req, params):
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            raise AwsError("InvalidParameterException",
                           f"1 validation error detected: Value '{days}' at 'retentionInDays' "
                           "failed to satisfy constraint: Member must satisfy enum value set: "
                           f"[{', '.join(str(d) for d in RETENTION_DAYS)}]")
        with self.lock:
            g = self._group(req.region, params["logGroupName"])
            g["retentionInDays"] = days
        return {}

    def TagLogGroup(self, req, params):
        with self.lock:
            g = self._group(req.region, params["logGroupName"])
            g["_tags"] = _check_tags(params["tags"], g["_tags"])
        return {}

    def ListTagsLogGroup(self, req, params):
        with self.lock:
            g = self._group(req.region, params["logGroupName"])
            return {"tags": dict(g["_tags"])}

    def DescribeLogGroups(self, req, params):
        prefix = params.get("logGroupNamePrefix")
        pattern = params.get("logGroupNamePattern")
        if prefix is not None and pattern is not None:
            raise AwsError("InvalidParameterException",
                           "LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                           "parameters.")
        if params.get("accountIdentifiers") and any(
                a != base.ACCOUNT_ID for a in params["accountIdentifiers"]):
            raise AwsError("InvalidParameterException",
                           "The account is not linked to this monitoring account")
        with self.lock:
            items = sorted((g for g in self.groups.values() if g["_region"] == req.region),
                           key=lambda g: g["logGroupName"])
            if prefix is not None:
                items = [g for g in items if g["logGroupName"].startswith(prefix)]
            if pattern:
                items = [g for g in items if pattern.lower() in g["logGroupName"].lower()]
            token = params.get("nextToken")
            start = 0
            if token:
                try:
                    start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
                except Exception:
                    raise AwsError("InvalidParameterException", "The specified nextToken is "
                                   "invalid.")
            limit = params.get("limit") or 50
            page = items[start:start + limit]
            out = {"logGroups": [{k: v for k, v in g.items() if not k.startswith("_")}
                                 for g in page]}
            if start + limit < len(items):
                out["nextToken"] = base64.urlsafe_b64encode(
                    json.dumps({"o": start + limit}).encode()).decode()
            return out

    # ------------------------------------------------- cross-service functions

    def get_log_group(self, name, region=None):
        """The log group (DescribeLogGroups shape plus "tags") or None."""
        with self.lock:
            g = self.groups.get((region or self.emulator.region, name))
            if g is None:
                return None
            out = {k: v for k, v in g.items() if not k.startswith("_")}
            out["tags"] = dict(g["_tags"])
            return out
