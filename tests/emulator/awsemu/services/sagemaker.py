"""SageMaker notebook instances: Pending -> InService, Stopping -> Stopped,
Updating -> Stopped, Deleting -> gone (delays scaled by the clock), with the
role checked in IAM and the subnet/security groups in EC2; tags. JSON
protocol. Instance types are checked by the core against the model's enum."""

import random
import re
import urllib.parse

from .. import base
from ..base import AwsError

NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PENDING_SECONDS = 180.0
STOPPING_SECONDS = 60.0
UPDATING_SECONDS = 60.0
DELETING_SECONDS = 60.0


def _validation(msg):
    return AwsError("ValidationException", msg)


class Sagemaker(base.Service):
    SERVICE = "sagemaker"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.notebooks = {}   # (region, name) -> record
        self.rng = random.Random(getattr(emulator, "seed", 0) or 0)

    def _nb(self, region, name):
        nb = self.notebooks.get((region, name))
        if nb is None:
            raise _validation("RecordNotFound")
        return nb

    def _transition_error(self, nb, action, allowed):
        return _validation(f"Status ({nb['NotebookInstanceStatus']}) not in "
                           f"([{', '.join(allowed)}]). Unable to {action} Notebook Instance "
                           f"({nb['NotebookInstanceArn']}).")

    def _set(self, nb, status, after=None, then=None):
        nb["NotebookInstanceStatus"] = status
        nb["LastModifiedTime"] = self.clock.utcnow()
        nb["_next"] = (self.clock.now() + self.clock.delay(after), then) if after else None

    # ---- operations ------------------------------------------------------------
    def CreateNotebookInstance(self, req, params):
        name = params["NotebookInstanceName"]
        if not NAME_RE.match(name):
            raise _validation(f"1 validation error detected: Value '{name}' at "
                              "'notebookInstanceName' failed to satisfy constraint: Member must "
                              "satisfy regular expression pattern: "
                              "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
        arn = base.arn("sagemaker", req.region, f"notebook-instance/{name.lower()}")
        role_arn = params["RoleArn"]
        iam = self.emulator.services.get("iam")
        role = iam.get_role_by_arn(role_arn) if iam is not None else None
        if iam is not None and (role is None or "sagemaker.amazonaws.com" not in
                                str(role.get("TrustPolicy") or
                                    role.get("AssumeRolePolicyDocument") or "")):
            raise _validation(f"Could not assume role {role_arn}. Please ensure that the role "
                              "exists and allows principal 'sagemaker.amazonaws.com' to assume "
                              "the role.")
        subnet_id = params.get("SubnetId")
        groups = params.get("SecurityGroupIds") or []
        if params.get("DirectInternetAccess") == "Disabled" and not subnet_id:
            raise _validation("Direct internet access cannot be disabled when no subnet is "
                              "provided.")
        if groups and not subnet_id:
            raise _validation("SecurityGroupIds cannot be specified without a SubnetId.")
        if subnet_id and not groups:
            raise _validation("SecurityGroupIds must be specified when SubnetId is specified.")
        ec2 = self.emulator.services.get("ec2")
        vpc = None
        if subnet_id and ec2 is not None:
            sub = ec2.get_subnet(subnet_id)
            if sub is None:
                raise _validation(f"Subnet {subnet_id} does not exist.")
            vpc = sub["VpcId"]
            for gid in groups:
                sg = ec2.get_security_group(gid)
                if sg is None:
                    raise _validation(f"Security group {gid} does not exist.")
                if sg["VpcId"] != vpc:
                    raise _validation(f"Security group {gid} is not in the VPC {vpc} of subnet "
                                      f"{subnet_id}.")
        if len(params.get("Tags") or []) > 50:
            raise _validation("Tags can have at most 50 items.")
        with self.lock:
            if (req.region, name) in self.notebooks:
                raise _validation(f"Cannot create a duplicate Notebook Instance ({arn})")
            now = self.clock.utcnow()
            nb = {"NotebookInstanceArn": arn, "NotebookInstanceName": name,
                  "InstanceType": params["InstanceType"], "RoleArn": role_arn,
                  "CreationTime": now, "LastModifiedTime": now,
                  "DirectInternetAccess": params.get("DirectInternetAccess") or "Enabled",
                  "VolumeSizeInGB": params.get("VolumeSizeInGB") or 5,
                  "RootAccess": params.get("RootAccess") or "Enabled",
                  "PlatformIdentifier": params.get("PlatformIdentifier") or "notebook-al2-v2",
                  "InstanceMetadataServiceConfiguration":
                      params.get("InstanceMetadataServiceConfiguration") or
                      {"MinimumInstanceMetadataServiceVersion": "1"},
                  "Url": f"{name}.notebook.{req.region}.sagemaker.aws",
                  "_tags": {t["Key"]: t["Value"] for t in params.get("Tags") or []},
                  "_region": req.region, "_next": None}
            for k in ("KmsKeyId", "DefaultCodeRepository", "AdditionalCodeRepositories",
                      "AcceleratorTypes"):
                if params.get(k):
                    nb[k] = params[k]
            if params.get("LifecycleConfigName"):
                nb["NotebookInstanceLifecycleConfigName"] = params["LifecycleConfigName"]
            if subnet_id:
                nb["SubnetId"] = subnet_id
                nb["SecurityGroups"] = list(groups)
                if ec2 is not None:
                    eni = ec2.create_network_interface_internal(
                        subnet_id, groups, f"[DO NOT DELETE] ENI managed by SageMaker for "
                        f"notebook instance {name}")
                    nb["NetworkInterfaceId"] = eni["NetworkInterfaceId"]
            self._set(nb, "Pending", PENDING_SECONDS, "InService")
            self.notebooks[(req.region, name)] = nb
            return {"NotebookInstanceArn": arn}

    def DescribeNotebookInstance(self, req, params):
        with self.lock:
            nb = self._nb(req.region, params["NotebookInstanceName"])
            return {k: v for k, v in nb.items() if not k.startswith("_")}

    def StopNotebookInstance(self, req, params):
        with self.lock:
            nb = self._nb(req.region, params["NotebookInstanceName"])
            if nb["NotebookInstanceStatus"] != "InService":
                raise self._transition_error(nb, "stop", ["InService"])
            self._set(nb, "Stopping", STOPPING_SECONDS, "Stopped")
        return {}

    def StartNotebookInstance(self, req, params):
        with self.lock:
            nb = self._nb(req.region, params["NotebookInstanceName"])
            if nb["NotebookInstanceStatus"] not in ("Stopped", "Failed"):
                raise self._transition_error(nb, "start", ["Stopped", "Failed"])
            nb.pop("FailureReason", None)
            self._set(nb, "Pending", PENDING_SECONDS, "InService")
        return {}

    def UpdateNotebookInstance(self, req, params):
        with self.lock:
            nb = self._nb(req.region, params["NotebookInstanceName"])
            if nb["NotebookInstanceStatus"] != "Stopped":
                raise _validation(f"Unable to update Notebook Instance "
                                  f"({nb['NotebookInstanceArn']}) because of status "
                                  f"({nb['NotebookInstanceStatus']}). Please stop the notebook "
                                  "instance first.")
            if params.get("VolumeSizeInGB") is not None and \
                    params["VolumeSizeInGB"] < nb["VolumeSizeInGB"]:
                raise _validation("Volume size can only be increased: "
                                  f"{params['VolumeSizeInGB']} < {nb['VolumeSizeInGB']}.")
            if params.get("RoleArn"):
                iam = self.emulator.services.get("iam")
                if iam is not None and iam.get_role_by_arn(params["RoleArn"]) is None:
                    raise _validation(f"Could not assume role {params['RoleArn']}. Please "
                                      "ensure that the role exists and allows principal "
                                      "'sagemaker.amazonaws.com' to assume the role.")
            for k in ("InstanceType", "RoleArn", "VolumeSizeInGB", "DefaultCodeRepository",
                      "AdditionalCodeRepositories", "AcceleratorTypes", "RootAccess",
                      "InstanceMetadataServiceConfiguration"):
                if params.get(k) is not None:
                    nb[k] = params[k]
            if params.get("LifecycleConfigName"):
                nb["NotebookInstanceLifecycleConfigName"] = params["LifecycleConfigName"]
            for flag, k in (("DisassociateLifecycleConfig", "NotebookInstanceLifecycleConfigName"),
                            ("DisassociateAcceleratorTypes", "AcceleratorTypes"),
                            ("DisassociateDefaultCodeRepository", "DefaultCodeRepository"),
                            ("DisassociateAdditionalCodeRepositories",
                             "AdditionalCodeRepositories")):
                if params.get(flag):
                    nb.pop(k, None)
            self._set(nb, "Updating", UPDATING_SECONDS, "Stopped")
        return {}

    def DeleteNotebookInstance(self, req, params):
        with self.lock:
            nb = self._nb(req.region, params["NotebookInstanceName"])
            if nb["NotebookInstanceStatus"] not in ("Stopped", "Failed"):
                raise self._transition_error(nb, "delete", ["Stopped", "Failed"])
            self._set(nb, "Deleting", DELETING_SECONDS, None)
        return {}

    def CreatePresignedNotebookInstanceUrl(self, req, params):
        secs = params.get("SessionExpirationDurationInSeconds") or 43200
        if not 1800 <= secs <= 43200:
            raise _validation("SessionExpirationDurationInSeconds must be between 1800 and "
                              "43200.")
        with self.lock:
            nb = self._nb(req.region, params["NotebookInstanceName"])
            token = "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                            "qrstuvwxyz0123456789") for _ in range(64))
            return {"AuthorizedUrl": f"https://{nb['Url']}?authToken="
                                     f"{urllib.parse.quote(token)}"}

    # ---- tags ----------------------------------------------------------------------
    def _by_arn(self, arn):
        for nb in self.notebooks.values():
            if nb["NotebookInstanceArn"] == arn:
                return nb
        raise _validation(f"Resource {arn} not found.")

    def AddTags(self, req, params):
        with self.lock:
            nb = self._by_arn(params["ResourceArn"])
            tags = dict(nb["_tags"])
            for t in params["Tags"]:
                if t["Key"].startswith("aws:"):
                    raise _validation("Tag keys beginning with 'aws:' are reserved.")
                tags[t["Key"]] = t["Value"]
            if len(tags) > 50:
                raise AwsError("ResourceLimitExceeded", "A resource can have at most 50 tags.")
            nb["_tags"] = tags
            return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def DeleteTags(self, req, params):
        with self.lock:
            nb = self._by_arn(params["ResourceArn"])
            for k in params["TagKeys"]:
                nb["_tags"].pop(k, None)
        return {}

    def ListTags(self, req, params):
        limit = params.get("MaxResults") or 50
        start = int(params["NextToken"]) if (params.get("NextToken") or "").isdigit() else 0
        with self.lock:
            nb = self._by_arn(params["ResourceArn"])
            items = [{"Key": k, "Value": v} for k, v in nb["_tags"].items()]
        out = {"Tags": items[start:start + limit]}
        if start + limit < len(items):
            out["NextToken"] = str(start + limit)
        return out

    # ---- time ----------------------------------------------------------------------
    def tick(self):
        with self.lock:
            now = self.clock.now()
            for key, nb in list(self.notebooks.items()):
                nxt = nb["_next"]
                if nxt is None or now < nxt[0]:
                    continue
                if nxt[1] is None:   # deletion finished
                    ec2 = self.emulator.services.get("ec2")
                    if nb.get("NetworkInterfaceId") and ec2 is not None:
                        ec2.delete_network_interface_internal(nb["NetworkInterfaceId"])
                    del self.notebooks[key]
                else:
                    self._set(nb, nxt[1])
