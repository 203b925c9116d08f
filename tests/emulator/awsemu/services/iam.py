"""IAM roles as aviary uses them: trust policies, attached managed policies,
inline policies and tags. IAM is global: one set of roles for all regions.

Policy documents are returned URL-encoded, as IAM's Query API does (clients
such as botocore decode them)."""

import base64
import json
import re
import urllib.parse

from .. import base
from ..base import AwsError

MAX_ATTACHED = 10
MAX_TAGS = 50

# AWS-managed policies aviary (or a typical ECS/SageMaker setup) attaches.
# Attaching an AWS-managed ARN not listed here answers NoSuchEntity, as AWS
# does for a policy that does not exist: a typo is caught in tests.
AWS_MANAGED_POLICIES = {
    "service-role/AmazonECSTaskExecutionRolePolicy",
    "service-role/AmazonEC2ContainerServiceRole",
    "service-role/AmazonEC2ContainerServiceAutoscaleRole",
    "service-role/AmazonEC2ContainerServiceforEC2Role",
    "service-role/AmazonSageMakerServiceCatalogProductsUseRole",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonEC2ContainerRegistryPowerUser",
    "AmazonEC2ContainerRegistryFullAccess",
    "AmazonECS_FullAccess",
    "AmazonS3ReadOnlyAccess",
    "AmazonS3FullAccess",
    "AmazonSageMakerFullAccess",
    "AmazonSageMakerReadOnly",
    "CloudWatchLogsFullAccess",
    "CloudWatchLogsReadOnlyAccess",
    "CloudWatchAgentServerPolicy",
    "CloudWatchFullAccess",
    "CloudWatchReadOnlyAccess",
    "AmazonSNSFullAccess",
    "AmazonSSMReadOnlyAccess",
    "SecretsManagerReadWrite",
    "AdministratorAccess",
    "ReadOnlyAccess",
    "PowerUserAccess",
}

_ARN_RE = re.compile(r"^arn:aws:iam::(aws|\d{12}):policy(/.*)?/([\w+=,.@-]+)$")


def _iam_id(prefix):
    return prefix + base.rand_suffix(17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _parse_policy(doc, trust=False):
    """The parsed policy document, or MalformedPolicyDocument."""
    try:
        parsed = json.loads(doc)
    except ValueError:
        raise AwsError("MalformedPolicyDocument", "This policy contains invalid Json", 400)
    if not isinstance(parsed, dict):
        raise AwsError("MalformedPolicyDocument", "This policy contains invalid Json", 400)
    version = parsed.get("Version")
    if version is not None and version not in ("2012-10-17", "2008-10-17"):
        raise AwsError("MalformedPolicyDocument", "The policy must contain a valid version string",
                       400)
    stmts = parsed.get("Statement")
    if stmts is None:
        raise AwsError("MalformedPolicyDocument", "Syntax errors in policy.", 400)
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise AwsError("MalformedPolicyDocument", "Syntax errors in policy.", 400)
    for s in stmts:
        if not isinstance(s, dict) or s.get("Effect") not in ("Allow", "Deny"):
            raise AwsError("MalformedPolicyDocument", "Policy statement must contain an Effect "
                           "of Allow or Deny.", 400)
        if "Action" not in s and "NotAction" not in s:
            raise AwsError("MalformedPolicyDocument", "Policy statement must contain actions.", 400)
        if trust:
            if "Principal" not in s and "NotPrincipal" not in s:
                raise AwsError("MalformedPolicyDocument",
                               "AssumeRolepolicy contains an invalid principal", 400)
            if "Resource" in s:
                raise AwsError("MalformedPolicyDocument",
                               "Has prohibited field Resource", 400)
        elif "Resource" not in s and "NotResource" not in s:
            raise AwsError("MalformedPolicyDocument", "Policy statement must contain resources.",
                           400)
    return parsed


def _encode(doc):
    return urllib.parse.quote(doc, safe="")


def _page(items, params):
    marker = params.get("Marker")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode())
        except Exception:
            raise AwsError("InvalidInput", f"Invalid marker: {marker}", 400)
    size = params.get("MaxItems") or 100
    page = items[start:start + size]
    out = {"IsTruncated": start + size < len(items)}
    if out["IsTruncated"]:
        out["Marker"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return page, out


class IamService(base.Service):
    SERVICE = "iam"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.roles = {}   # lower-case name -> role record

    def _role(self, name):
        role = self.roles.get(name.lower())
        if role is None or role["RoleName"] != name:
            raise AwsError("NoSuchEntity", f"The role with name {name} cannot be found.", 404)
        return role

    def _render(self, role):
        out = {k: v for k, v in role.items() if not k.startswith("_")}
        out["AssumeRolePolicyDocument"] = _encode(role["AssumeRolePolicyDocument"])
        out["RoleLastUsed"] = {}
        if role["_tags"]:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in role["_tags"].items()]
        return out

    @staticmethod
    def _check_tags(tags, current):
        keys = [t["Key"].lower() for t in tags]
        if len(set(keys)) != len(keys):
            raise AwsError("InvalidInput", "Duplicate tag keys found. Please note that Tag keys "
                           "are case insensitive.", 400)
        merged = dict(current)
        for t in tags:
            for k in list(merged):
                if k.lower() == t["Key"].lower():
                    del merged[k]
            merged[t["Key"]] = t["Value"]
        if len(merged) > MAX_TAGS:
            raise AwsError("LimitExceeded", f"The number of tags has reached the maximum limit "
                           f"of {MAX_TAGS}.", 409)
        for t in tags:
            if t["Key"].lower().startswith("aws:"):
                raise AwsError("InvalidInput", "Tag keys starting with 'aws:' are reserved", 400)
        return merged

    def CreateRole(self, req, params):
        name = params["RoleName"]
        path = params.get("Path") or "/"
        doc = params["AssumeRolePolicyDocument"]
        _parse_policy(doc, trust=True)
        with self.lock:
            if name.lower() in self.roles:
                raise AwsError("EntityAlreadyExists", f"Role with name {name} already exists.", 409)
            if params.get("PermissionsBoundary"):
                self._check_policy_arn(params["PermissionsBoundary"])
            tags = self._check_tags(params.get("Tags") or [], {})
            role = {"Path": path, "RoleName": name, "RoleId": _iam_id("AROA"),
                    "Arn": f"arn:aws:iam::{base.ACCOUNT_ID}:role{path}{name}",
                    "CreateDate": self.clock.utcnow().replace(microsecond=0),
                    "AssumeRolePolicyDocument": doc,
                    "MaxSessionDuration": params.get("MaxSessionDuration") or 3600,
                    "_tags": tags, "_attached": [], "_inline": {}}
            if params.get("Description") is not None:
                role["Description"] = params["Description"]
            if params.get("PermissionsBoundary"):
                role["PermissionsBoundary"] = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                               "PermissionsBoundaryArn": params["PermissionsBoundary"]}
            self.roles[name.lower()] = role
            return {"Role": self._render(role)}

    def GetRole(self, req, params):
        with self.lock:
            return {"Role": self._render(self._role(params["RoleName"]))}

    def DeleteRole(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            if role["_attached"]:
                raise AwsError("DeleteConflict",
                               "Cannot delete entity, must detach all policies first.", 409)
            if role["_inline"]:
                raise AwsError("DeleteConflict",
                               "Cannot delete entity, must delete policies first.", 409)
            del self.roles[role["RoleName"].lower()]
        return {}

    def UpdateAssumeRolePolicy(self, req, params):
        _parse_policy(params["PolicyDocument"], trust=True)
        with self.lock:
            role = self._role(params["RoleName"])
            role["AssumeRolePolicyDocument"] = params["PolicyDocument"]
        return {}

    def _check_policy_arn(self, arn):
        m = _ARN_RE.match(arn)
        if not m:
            raise AwsError("InvalidInput", f"ARN {arn} is not valid.", 400)
        owner = m.group(1)
        name_path = arn.split(":policy/", 1)[1]
        if owner == "aws" and name_path in AWS_MANAGED_POLICIES:
            return name_path.rsplit("/", 1)[-1]
        raise AwsError("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.", 404)

    def AttachRolePolicy(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            arn = params["PolicyArn"]
            self._check_policy_arn(arn)
            if arn in role["_attached"]:
                return {}
            if len(role["_attached"]) >= MAX_ATTACHED:
                raise AwsError("LimitExceeded",
                               f"Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED}", 409)
            role["_attached"].append(arn)
        return {}

    def DetachRolePolicy(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            arn = params["PolicyArn"]
            if not _ARN_RE.match(arn):
                raise AwsError("InvalidInput", f"ARN {arn} is not valid.", 400)
            if arn not in role["_attached"]:
                raise AwsError("NoSuchEntity", f"Policy {arn} was not found.", 404)
            role["_attached"].remove(arn)
        return {}

    def ListAttachedRolePolicies(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            prefix = params.get("PathPrefix") or "/"
            items = []
            for arn in role["_attached"]:
                path_name = "/" + arn.split(":policy/", 1)[1]
                if path_name.startswith(prefix):
                    items.append({"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn})
            page, extra = _page(items, params)
            return dict(extra, AttachedPolicies=page)

    def PutRolePolicy(self, req, params):
        doc = params["PolicyDocument"]
        _parse_policy(doc)
        with self.lock:
            role = self._role(params["RoleName"])
            role["_inline"][params["PolicyName"]] = doc
        return {}

    def GetRolePolicy(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            name = params["PolicyName"]
            if name not in role["_inline"]:
                raise AwsError("NoSuchEntity", f"The role policy with name {name} cannot be found.",
                               404)
            return {"RoleName": role["RoleName"], "PolicyName": name,
                    "PolicyDocument": _encode(role["_inline"][name])}

    def DeleteRolePolicy(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            name = params["PolicyName"]
            if name not in role["_inline"]:
                raise AwsError("NoSuchEntity", f"The role policy with name {name} cannot be found.",
                               404)
            del role["_inline"][name]
        return {}

    def ListRolePolicies(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            page, extra = _page(sorted(role["_inline"]), params)
            return dict(extra, PolicyNames=page)

    def ListRoleTags(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            items = [{"Key": k, "Value": v} for k, v in role["_tags"].items()]
            page, extra = _page(items, params)
            return dict(extra, Tags=page)

    def TagRole(self, req, params):
        with self.lock:
            role = self._role(params["RoleName"])
            role["_tags"] = self._check_tags(params["Tags"], role["_tags"])
        return {}

    # ------------------------------------------------- cross-service functions

    def get_role_by_arn(self, arn):
        """The role (GetRole shape, with the trust policy decoded as a dict
        under "TrustPolicy", "AttachedPolicyArns" and "InlinePolicies") or
        None."""
        with self.lock:
            for role in self.roles.values():
                if role["Arn"] == arn:
                    out = self._render(role)
                    out["AssumeRolePolicyDocument"] = role["AssumeRolePolicyDocument"]
                    out["TrustPolicy"] = json.loads(role["AssumeRolePolicyDocument"])
                    out["AttachedPolicyArns"] = list(role["_attached"])
                    out["InlinePolicies"] = dict(role["_inline"])
                    return out
            return None
