"""ECR repositories: creation with scan-on-push and tag mutability, lifecycle
policies (validated, and applied to images when they are pushed), tags and
images. Images only exist when a test pushes one (``push_image_internal``,
or POST /_emulator/images); ECS asks ``pull_error_internal`` whether a task
could pull its image.
"""

import base64
import hashlib
import json
import re

from .. import base
from ..base import AwsError

MAX_TAGS = 50

# ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG][@sha256:DIGEST]
IMAGE_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([a-z0-9._/-]+?)"
                       r"(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$")


def _paginate(items, params):
    token = params.get("nextToken")
    start = 0
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
        except Exception:
            raise AwsError("InvalidParameterException", "Invalid parameter at 'nextToken' failed "
                           "to satisfy constraint: 'Invalid pagination token'")
    size = params.get("maxResults") or 100
    end = start + size
    token = base64.urlsafe_b64encode(json.dumps({"o": end}).encode()).decode() \
        if end < len(items) else None
    return items[start:end], token


def _lifecycle_error(detail):
    return AwsError("InvalidParameterException",
                    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                    f"'Lifecycle policy validation failure: {detail}'")


def _check_lifecycle(text):
    """The parsed lifecycle policy rules, sorted by priority, or AwsError."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _lifecycle_error("Could not parse the lifecycle policy JSON")
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise _lifecycle_error("object has missing required properties ([\"rules\"])")
    priorities = set()
    for rule in doc["rules"]:
        if not isinstance(rule, dict):
            raise _lifecycle_error("rule must be an object")
        prio = rule.get("rulePriority")
        if not isinstance(prio, int) or prio < 1:
            raise _lifecycle_error("rulePriority must be a positive integer")
        if prio in priorities:
            raise _lifecycle_error(f"rulePriority {prio} is used more than once")
        priorities.add(prio)
        sel = rule.get("selection")
        if not isinstance(sel, dict):
            raise _lifecycle_error("object has missing required properties ([\"selection\"])")
        status = sel.get("tagStatus")
        if status not in ("tagged", "untagged", "any"):
            raise _lifecycle_error(f"instance value (\"{status}\") not found in enum "
                                   "(possible values: [\"tagged\",\"untagged\",\"any\"])")
        if status == "tagged" and not sel.get("tagPrefixList"):
            raise _lifecycle_error("tagPrefixList must be specified when tagStatus is tagged")
        ctype = sel.get("countType")
        if ctype not in ("imageCountMoreThan", "sinceImagePushed"):
            raise _lifecycle_error(f"instance value (\"{ctype}\") not found in enum (possible "
                                   "values: [\"imageCountMoreThan\",\"sinceImagePushed\"])")
        if ctype == "sinceImagePushed" and sel.get("countUnit") != "days":
            raise _lifecycle_error("countUnit must be days when countType is sinceImagePushed")
        if ctype == "imageCountMoreThan" and "countUnit" in sel:
            raise _lifecycle_error("countUnit must not be specified when countType is "
                                   "imageCountMoreThan")
        n = sel.get("countNumber")
        if not isinstance(n, int) or n < 1:
            raise _lifecycle_error("countNumber must be an integer greater than 0")
        if (rule.get("action") or {}).get("type") != "expire":
            raise _lifecycle_error("action type must be expire")
    any_rules = [r["rulePriority"] for r in doc["rules"] if r["selection"]["tagStatus"] == "any"]
    if any_rules and max(any_rules) != max(priorities):
        raise _lifecycle_error("a rule with tagStatus any must have the highest rulePriority")
    return sorted(doc["rules"], key=lambda r: r["rulePriority"])


class EcrService(base.Service):
    SERVICE = "ecr"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.repos = {}  # (region, name) -> repository record

    def _repo(self, region, name, registry_id=None):
        if registry_id not in (None, base.ACCOUNT_ID):
            raise AwsError("RepositoryNotFoundException",
                           f"The repository with name '{name}' does not exist in the registry "
                           f"with id '{registry_id}'")
        repo = self.repos.get((region, name))
        if repo is None:
            raise AwsError("RepositoryNotFoundException",
                           f"The repository with name '{name}' does not exist in the registry "
                           f"with id '{base.ACCOUNT_ID}'")
        return repo

    def _repo_by_arn(self, arn):
        prefix = "arn:aws:ecr:"
        if not arn.startswith(prefix) or ":repository/" not in arn:
            raise AwsError("InvalidParameterException",
                           "Invalid parameter at 'resourceArn' failed to satisfy constraint: "
                           "'Invalid ARN'")
        region = arn[len(prefix):].split(":", 1)[0]
        name = arn.split(":repository/", 1)[1]
        return self._repo(region, name)

    @staticmethod
    def _render(repo):
        return {k: (dict(v) if isinstance(v, dict) else v)
                for k, v in repo.items() if not k.startswith("_")}

    @staticmethod
    def _check_tags(tags, current):
        merged = dict(current)
        for t in tags:
            if t.get("Key") is None or t.get("Value") is None:
                raise AwsError("InvalidTagParameterException",
                               "Tag keys and values must be specified")
            merged[t["Key"]] = t["Value"]
        if len(merged) > MAX_TAGS:
            raise AwsError("TooManyTagsException",
                           f"The repository can have at most {MAX_TAGS} tags")
        return merged

    def CreateRepository(self, req, params):
        name = params["repositoryName"]
        with self.lock:
            if params.get("registryId") not in (None, base.ACCOUNT_ID):
                raise AwsError("InvalidParameterException",
                               "Invalid parameter at 'registryId' failed to satisfy constraint: "
                               "'must be the caller's registry'")
            if (req.region, name) in self.repos:
                raise AwsError("RepositoryAlreadyExistsException",
                               f"The repository with name '{name}' already exists in the registry "
                               f"with id '{base.ACCOUNT_ID}'")
            enc = params.get("encryptionConfiguration") or {"encryptionType": "AES256"}
            if enc.get("encryptionType") == "AES256" and enc.get("kmsKey"):
                raise AwsError("InvalidParameterException",
                               "Invalid parameter at 'encryptionConfiguration' failed to satisfy "
                               "constraint: 'kmsKey can only be specified with KMS encryption'")
            if enc.get("encryptionType") == "KMS" and not enc.get("kmsKey"):
                enc = dict(enc, kmsKey=base.arn("kms", req.region, "alias/aws/ecr"))
            tags = self._check_tags(params.get("tags") or [], {})
            repo = {"_region": req.region, "_tags": tags, "_policy": None, "_images": [],
                    "repositoryArn": base.arn("ecr", req.region, f"repository/{name}"),
                    "registryId": base.ACCOUNT_ID, "repositoryName": name,
                    "repositoryUri": f"{base.ACCOUNT_ID}.dkr.ecr.{req.region}.amazonaws.com/{name}",
                    "createdAt": self.clock.utcnow(),
                    "imageTagMutability": params.get("imageTagMutability") or "MUTABLE",
                    "imageScanningConfiguration": {
                        "scanOnPush": bool((params.get("imageScanningConfiguration") or {})
                                           .get("scanOnPush", False))},
                    "encryptionConfiguration": enc}
            self.repos[(req.region, name)] = repo
            return {"repository": self._render(repo)}

    def DescribeRepositories(self, req, params):
        with self.lock:
            names = params.get("repositoryNames")
            if names:
                if params.get("maxResults") or params.get("nextToken"):
                    raise AwsError("InvalidParameterException",
                                   "Invalid parameter: maxResults and nextToken cannot be used "
                                   "with repositoryNames")
                items = [self._repo(req.region, n, params.get("registryId")) for n in names]
            else:
                items = sorted((r for r in self.repos.values() if r["_region"] == req.region),
                               key=lambda r: r["repositoryName"])
            page, token = _paginate(items, params)
            out = {"repositories": [self._render(r) for r in page]}
        if token:
            out["nextToken"] = token
        return out

    def DeleteRepository(self, req, params):
        with self.lock:
            repo = self._repo(req.region, params["repositoryName"], params.get("registryId"))
            if repo["_images"] and not params.get("force"):
                raise AwsError("RepositoryNotEmptyException",
                               f"The repository with name '{repo['repositoryName']}' in registry "
                               f"with id '{base.ACCOUNT_ID}' cannot be deleted because it still "
                               "contains images")
            del self.repos[(req.region, repo["repositoryName"])]
            return {"repository": self._render(repo)}

    def PutImageScanningConfiguration(self, req, params):
        with self.lock:
            repo = self._repo(req.region, params["repositoryName"], params.get("registryId"))
            cfg = {"scanOnPush": bool(params["imageScanningConfiguration"].get("scanOnPush", False))}
            repo["imageScanningConfiguration"] = cfg
            return {"registryId": base.ACCOUNT_ID, "repositoryName": repo["repositoryName"],
                    "imageScanningConfiguration": dict(cfg)}

    def PutLifecyclePolicy(self, req, params):
        text = params["lifecyclePolicyText"]
        _check_lifecycle(text)
        with self.lock:
            repo = self._repo(req.region, params["repositoryName"], params.get("registryId"))
            repo["_policy"] = text
            return {"registryId": base.ACCOUNT_ID, "repositoryName": repo["repositoryName"],
                    "lifecyclePolicyText": text}

    def GetLifecyclePolicy(self, req, params):
        with self.lock:
            repo = self._repo(req.region, params["repositoryName"], params.get("registryId"))
            if repo["_policy"] is None:
                raise AwsError("LifecyclePolicyNotFoundException",
                               "Lifecycle policy does not exist for the repository with name "
                               f"'{repo['repositoryName']}' in the registry with id "
                               f"'{base.ACCOUNT_ID}'")
            out = {"registryId": base.ACCOUNT_ID, "repositoryName": repo["repositoryName"],
                   "lifecyclePolicyText": repo["_policy"]}
            if repo.get("_evaluated_at"):
                out["lastEvaluatedAt"] = repo["_evaluated_at"]
            return out

    def TagResource(self, req, params):
        with self.lock:
            repo = self._repo_by_arn(params["resourceArn"])
            repo["_tags"] = self._check_tags(params["tags"], repo["_tags"])
        return {}

    def ListTagsForResource(self, req, params):
        with self.lock:
            repo = self._repo_by_arn(params["resourceArn"])
            return {"tags": [{"Key": k, "Value": v} for k, v in repo["_tags"].items()]}

    def _render_image(self, repo, img):
        out = {"registryId": base.ACCOUNT_ID, "repositoryName": repo["repositoryName"],
               "imageDigest": img["digest"], "imageSizeInBytes": img["size"],
               "imagePushedAt": img["pushed_at"],
               "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "artifactMediaType": "application/vnd.docker.container.image.v1+json"}
        if img["tags"]:
            out["imageTags"] = list(img["tags"])
        if img["scanned"]:
            out["imageScanStatus"] = {"status": "COMPLETE",
                                      "description": "The scan was completed successfully."}
            out["imageScanFindingsSummary"] = {"imageScanCompletedAt": img["pushed_at"],
                                               "vulnerabilitySourceUpdatedAt": img["pushed_at"],
                                               "findingSeverityCounts": {}}
        return out

    def DescribeImages(self, req, params):
        with self.lock:
            repo = self._repo(req.region, params["repositoryName"], params.get("registryId"))
            images = list(repo["_images"])
            ids = params.get("imageIds")
            if ids:
                if params.get("maxResults") or params.get("nextToken"):
                    raise AwsError("InvalidParameterException",
                                   "Invalid parameter: maxResults and nextToken cannot be used "
                                   "with imageIds")
                picked = []
                for i in ids:
                    match = [img for img in images
                             if (i.get("imageDigest") in (None, img["digest"]))
                             and (i.get("imageTag") is None or i["imageTag"] in img["tags"])]
                    if not match or not (i.get("imageDigest") or i.get("imageTag")):
                        ident = ", ".join(f"{k}={v}" for k, v in i.items())
                        raise AwsError("ImageNotFoundException",
                                       f"The image with imageId {{{ident}}} does not exist within "
                                       f"the repository with name '{repo['repositoryName']}' in "
                                       f"the registry with id '{base.ACCOUNT_ID}'")
                    for m in match:
                        if m not in picked:
                            picked.append(m)
                images = picked
            status = (params.get("filter") or {}).get("tagStatus") or "ANY"
            if status == "TAGGED":
                images = [i for i in images if i["tags"]]
            elif status == "UNTAGGED":
                images = [i for i in images if not i["tags"]]
            page, token = _paginate(images, params)
            out = {"imageDetails": [self._render_image(repo, i) for i in page]}
        if token:
            out["nextToken"] = token
        return out

    # ------------------------------------------------- cross-service functions

    def create_repository_internal(self, region, name):
        """Create a repository with AWS's defaults and no tags, as someone
        other than aviary would (a CI pipeline). Returns its description."""
        req = base.RequestContext(self.emulator, "ecr", "CreateRepository", region, None)
        return self.CreateRepository(req, {"repositoryName": name})["repository"]

    def parse_image_uri(self, image):
        """(region, repository, tag, digest) of an image URI in this
        account's ECR registry, or None for any other registry."""
        m = IMAGE_URI.match(image or "")
        if m is None or m.group(1) != base.ACCOUNT_ID:
            return None
        tag, digest = m.group(4), m.group(5)
        if tag is None and digest is None:
            tag = "latest"
        return m.group(2), m.group(3), tag, digest

    def pull_error_internal(self, image):
        """Why pulling ``image`` from this account's ECR would fail now (the
        text of ECS's CannotPullContainerError), or None when the image is
        there or lives in another registry (not checked)."""
        parsed = self.parse_image_uri(image)
        if parsed is None:
            return None
        region, name, tag, digest = parsed
        with self.lock:
            repo = self.repos.get((region, name))
            found = repo is not None and any(
                (tag is None or tag in img["tags"]) and digest in (None, img["digest"])
                for img in repo["_images"])
        if found:
            return None
        return (f"CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                f"failed to resolve ref {image}: {image}: not found")

    def push_image_internal(self, repo, tag, region=None, size=None):
        """Push an image (as `docker push` would) into repository ``repo``
        with ``tag`` (None for untagged); applies tag mutability and then the
        lifecycle policy. Returns the image digest. Raises AwsError
        RepositoryNotFoundException / ImageTagAlreadyExistsException."""
        with self.lock:
            region = region or self.emulator.region
            r = self._repo(region, repo)
            now = self.clock.utcnow()
            seed = f"{repo}:{tag}:{self.clock.now()}:{base.rand_suffix(8)}"
            digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
            if tag is not None:
                holder = next((i for i in r["_images"] if tag in i["tags"]), None)
                if holder is not None:
                    if r["imageTagMutability"] == "IMMUTABLE":
                        raise AwsError("ImageTagAlreadyExistsException",
                                       f"The image tag '{tag}' already exists in the '{repo}' "
                                       "repository and cannot be overwritten because the "
                                       "repository is immutable.")
                    holder["tags"].remove(tag)
            r["_images"].append({"digest": digest, "tags": [tag] if tag else [],
                                 "size": size or 50_000_000 + base._rand.randint(0, 10_000_000),
                                 "pushed_at": now,
                                 "scanned": r["imageScanningConfiguration"]["scanOnPush"]})
            if r["_policy"]:
                self._apply_lifecycle(r)
            return digest

    def _apply_lifecycle(self, repo):
        """Expire images as the lifecycle policy says (AWS evaluates within
        24 hours; the emulator does it at each push)."""
        rules = _check_lifecycle(repo["_policy"])
        expired = set()
        now = self.clock.now()
        for rule in rules:
            sel = rule["selection"]
            cands = [i for i in repo["_images"] if i["digest"] not in expired]
            if sel["tagStatus"] == "untagged":
                cands = [i for i in cands if not i["tags"]]
            elif sel["tagStatus"] == "tagged":
                cands = [i for i in cands if any(t.startswith(p) for t in i["tags"]
                                                 for p in sel["tagPrefixList"])]
            cands.sort(key=lambda i: i["pushed_at"], reverse=True)
            if sel["countType"] == "imageCountMoreThan":
                doomed = cands[sel["countNumber"]:]
            else:
                limit = now - sel["countNumber"] * 86400
                doomed = [i for i in cands if i["pushed_at"].timestamp() < limit]
            expired.update(i["digest"] for i in doomed)
        repo["_images"] = [i for i in repo["_images"] if i["digest"] not in expired]
        repo["_evaluated_at"] = self.clock.utcnow()
