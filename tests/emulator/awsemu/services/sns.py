"""SNS: topics, subscriptions (e-mail and http(s) wait for confirmation),
Publish recorded in emulator.sns_publishes, tags. Query protocol."""

import base64
import json
import re
import uuid

from .. import base
from ..base import AwsError

TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SETTABLE = {"DisplayName", "Policy", "DeliveryPolicy", "KmsMasterKeyId", "TracingConfig",
            "SignatureVersion", "ContentBasedDeduplication", "DataProtectionPolicy"}
CREATE_ONLY = {"FifoTopic"}
PROTOCOLS = {"http", "https", "email", "email-json", "sms", "sqs", "application", "lambda",
             "firehose"}
MAX_MESSAGE_BYTES = 262144
PAGE = 100


def _invalid(what):
    return AwsError("InvalidParameter", f"Invalid parameter: {what}", 400)


def default_policy(topic_arn):
    return json.dumps({
        "Version": "2008-10-17", "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes",
                       "SNS:AddPermission", "SNS:RemovePermission", "SNS:DeleteTopic",
                       "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": base.ACCOUNT_ID}}}]},
        separators=(",", ":"))


class Sns(base.Service):
    SERVICE = "sns"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.topics = {}   # arn -> {"arn", "attributes": {}, "tags": {}, "subs": [sub arn]}
        self.subs = {}     # sub arn -> {"arn","topic","protocol","endpoint","pending","token"}

    # ---- helpers -----------------------------------------------------------
    def _topic(self, arn):
        t = self.topics.get(arn)
        if t is None:
            raise AwsError("NotFound", "Topic does not exist", 404)
        return t

    def _check_attribute(self, name, value):
        if name == "Policy" or name == "DeliveryPolicy" or name == "DataProtectionPolicy":
            try:
                json.loads(value)
            except ValueError:
                raise _invalid(f"{name}: failed to parse JSON") from None
        if name == "SignatureVersion" and value not in ("1", "2"):
            raise _invalid("SignatureVersion")
        if name == "TracingConfig" and value not in ("Active", "PassThrough"):
            raise _invalid("TracingConfig")

    # ---- topics ------------------------------------------------------------
    def CreateTopic(self, req, params):
        name = params["Name"]
        attrs = dict(params.get("Attributes") or {})
        fifo = attrs.get("FifoTopic", "false").lower() == "true"
        base_name = name[:-5] if name.endswith(".fifo") else name
        if not TOPIC_NAME.match(base_name) or (name.endswith(".fifo") != fifo):
            raise _invalid("Topic Name")
        for k, v in attrs.items():
            if k not in SETTABLE and k not in CREATE_ONLY:
                raise _invalid("AttributeName")
            self._check_attribute(k, v)
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        arn = base.arn("sns", req.region, name)
        with self.lock:
            t = self.topics.get(arn)
            if t is not None:
                for k, v in attrs.items():
                    if t["attributes"].get(k) != v:
                        raise _invalid("Attributes Reason: Topic already exists with "
                                       "different attributes")
                if tags and tags != t["tags"]:
                    raise _invalid("Tags Reason: Topic already exists with different tags")
                return {"TopicArn": arn}
            a = {"DisplayName": "", "Policy": default_policy(arn)}
            a.update(attrs)
            self.topics[arn] = {"arn": arn, "attributes": a, "tags": tags, "subs": []}
        return {"TopicArn": arn}

    def DeleteTopic(self, req, params):
        with self.lock:
            t = self.topics.pop(params["TopicArn"], None)
            if t:
                for s in t["subs"]:
                    self.subs.pop(s, None)
        return {}

    def GetTopicAttributes(self, req, params):
        with self.lock:
            t = self._topic(params["TopicArn"])
            subs = [self.subs[s] for s in t["subs"]]
            out = dict(t["attributes"])
            out.update({
                "TopicArn": t["arn"], "Owner": base.ACCOUNT_ID,
                "SubscriptionsConfirmed": str(sum(1 for s in subs if not s["pending"])),
                "SubscriptionsPending": str(sum(1 for s in subs if s["pending"])),
                "SubscriptionsDeleted": "0",
                "EffectiveDeliveryPolicy": json.dumps({"http": {"defaultHealthyRetryPolicy": {
                    "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3,
                    "numMaxDelayRetries": 0, "numNoDelayRetries": 0, "numMinDelayRetries": 0,
                    "backoffFunction": "linear"}, "disableSubscriptionOverrides": False}}),
            })
            return {"Attributes": out}

    def SetTopicAttributes(self, req, params):
        name, value = params["AttributeName"], params.get("AttributeValue", "")
        if name not in SETTABLE:
            raise _invalid("AttributeName")
        self._check_attribute(name, value)
        with self.lock:
            t = self._topic(params["TopicArn"])
            t["attributes"][name] = value
        return {}

    # ---- subscriptions -------------------------------------------------------
    def Subscribe(self, req, params):
        proto = params["Protocol"]
        endpoint = params.get("Endpoint") or ""
        if proto not in PROTOCOLS:
            raise _invalid("Invalid protocol type: " + proto)
        if proto in ("email", "email-json") and not EMAIL.match(endpoint):
            raise _invalid("Email address")
        if proto in ("http", "https") and not endpoint.startswith(proto + "://"):
            raise _invalid("Endpoint must match the specified protocol")
        if proto in ("sqs", "lambda", "firehose", "application") and \
                not endpoint.startswith("arn:"):
            raise _invalid("Invalid ARN: " + endpoint)
        with self.lock:
            t = self._topic(params["TopicArn"])
            for sarn in t["subs"]:
                s = self.subs[sarn]
                if s["protocol"] == proto and s["endpoint"] == endpoint:
                    if s["pending"] and not params.get("ReturnSubscriptionArn"):
                        return {"SubscriptionArn": "pending confirmation"}
                    return {"SubscriptionArn": sarn}
            sarn = f"{t['arn']}:{uuid.UUID(int=self._rng().getrandbits(128))}"
            pending = proto in ("email", "email-json", "http", "https")
            self.subs[sarn] = {"arn": sarn, "topic": t["arn"], "protocol": proto,
                               "endpoint": endpoint, "pending": pending,
                               "attributes": dict(params.get("Attributes") or {}),
                               "created": self.clock.now()}
            t["subs"].append(sarn)
            if pending and not params.get("ReturnSubscriptionArn"):
                return {"SubscriptionArn": "pending confirmation"}
            return {"SubscriptionArn": sarn}

    def _rng(self):
        r = getattr(self, "_random", None)
        if r is None:
            import random
            r = self._random = random.Random(getattr(self.emulator, "seed", 0) or 0)
        return r

    def Unsubscribe(self, req, params):
        sarn = params["SubscriptionArn"]
        if not sarn.startswith("arn:aws:sns:"):
            raise _invalid("SubscriptionArn")
        with self.lock:
            s = self.subs.pop(sarn, None)
            if s is None:
                raise AwsError("NotFound", "Subscription does not exist", 404)
            t = self.topics.get(s["topic"])
            if t:
                t["subs"].remove(sarn)
        return {}

    def ListSubscriptionsByTopic(self, req, params):
        start = 0
        if params.get("NextToken"):
            try:
                start = int(params["NextToken"])
            except ValueError:
                raise _invalid("NextToken") from None
        with self.lock:
            t = self._topic(params["TopicArn"])
            subs = [self.subs[s] for s in t["subs"]]
        page = subs[start:start + PAGE]
        out = {"Subscriptions": [{
            "SubscriptionArn": "PendingConfirmation" if s["pending"] else s["arn"],
            "Owner": base.ACCOUNT_ID, "Protocol": s["protocol"], "Endpoint": s["endpoint"],
            "TopicArn": s["topic"]} for s in page]}
        if start + PAGE < len(subs):
            out["NextToken"] = str(start + PAGE)
        return out

    # ---- publish -------------------------------------------------------------
    def Publish(self, req, params):
        if params.get("PhoneNumber"):
            raise _invalid("PhoneNumber Reason: SMS is not supported by this emulator")
        arn = params.get("TopicArn") or params.get("TargetArn")
        if not arn:
            raise _invalid("TopicArn or TargetArn Reason: no value for required parameter")
        msg = params["Message"]
        subject = params.get("Subject")
        if msg == "":
            raise _invalid("Empty message")
        if subject is not None:
            if subject == "" or len(subject) > 100 or any(
                    ord(c) < 32 or ord(c) > 126 for c in subject):
                raise _invalid("Subject")
        attrs = {}
        size = len(msg.encode())
        for k, v in (params.get("MessageAttributes") or {}).items():
            dt = v.get("DataType", "")
            if not dt.startswith(("String", "Number", "Binary")):
                raise _invalid(f"The message attribute '{k}' has an invalid message "
                               "attribute type")
            val = v.get("StringValue") if "BinaryValue" not in v else v["BinaryValue"]
            if val is None:
                raise _invalid(f"The message attribute '{k}' must contain non-empty "
                               "message attribute value")
            size += len(k) + len(dt) + len(val if isinstance(val, bytes) else val.encode())
            if isinstance(val, bytes):   # kept JSON-friendly for the control API
                val = base64.b64encode(val).decode()
            attrs[k] = {"DataType": dt, "Value": val}
        if size > MAX_MESSAGE_BYTES:
            raise _invalid("Message too long")
        if params.get("MessageStructure") is not None:
            if params["MessageStructure"] != "json":
                raise _invalid("MessageStructure")
            try:
                doc = json.loads(msg)
            except ValueError:
                raise _invalid("Message Structure - JSON message body failed to parse") \
                    from None
            if not isinstance(doc, dict) or "default" not in doc:
                raise _invalid("Message Structure - No default entry in JSON message body")
        with self.lock:
            t = self._topic(arn)
            fifo = t["attributes"].get("FifoTopic", "false").lower() == "true"
            if fifo and not params.get("MessageGroupId"):
                raise _invalid("The MessageGroupId parameter is required for FIFO topics")
            if not fifo and params.get("MessageGroupId"):
                raise _invalid("MessageGroupId Reason: The request includes MessageGroupId "
                               "parameter that is not valid for this topic type")
            return {"MessageId": self._record(arn, subject, msg, attrs)}

    def _record(self, arn, subject, message, attrs):
        mid = str(uuid.UUID(int=self._rng().getrandbits(128)))
        self.emulator.sns_publishes.append({
            "time": self.clock.now(), "topic_arn": arn, "subject": subject,
            "message": message, "attributes": attrs, "message_id": mid})
        return mid

    # ---- tags ------------------------------------------------------------------
    def _tagged(self, arn):
        t = self.topics.get(arn)
        if t is None:
            raise AwsError("ResourceNotFound", "Resource does not exist", 404)
        return t

    def TagResource(self, req, params):
        with self.lock:
            t = self._tagged(params["ResourceArn"])
            new = dict(t["tags"])
            for tag in params["Tags"]:
                if tag["Key"].startswith("aws:"):
                    raise _invalid("Tags Reason: Keys can't start with 'aws:'")
                new[tag["Key"]] = tag["Value"]
            if len(new) > 50:
                raise AwsError("TagLimitExceeded",
                               "Could not complete request: tag quota of per resource exceeded")
            t["tags"] = new
        return {}

    def UntagResource(self, req, params):
        with self.lock:
            t = self._tagged(params["ResourceArn"])
            for k in params["TagKeys"]:
                t["tags"].pop(k, None)
        return {}

    def ListTagsForResource(self, req, params):
        with self.lock:
            t = self._tagged(params["ResourceArn"])
            return {"Tags": [{"Key": k, "Value": v} for k, v in t["tags"].items()]}

    # ---- internal (other services, control API, tests) -----------------------
    def publish_internal(self, topic_arn, subject, message, attributes=None):
        """Publish as an AWS service would (CloudWatch alarm actions). Returns the
        message id, or None when the topic does not exist (the action fails
        silently on AWS too)."""
        with self.lock:
            if topic_arn not in self.topics:
                return None
            return self._record(topic_arn, subject[:100] if subject else subject, message,
                                attributes or {})

    def confirm_all_internal(self):
        """Confirm every pending subscription (the user clicked the link)."""
        with self.lock:
            n = 0
            for s in self.subs.values():
                if s["pending"]:
                    s["pending"] = False
                    n += 1
            return n

    def subscriptions_view(self):
        with self.lock:
            return [{"SubscriptionArn": s["arn"], "TopicArn": s["topic"],
                     "Protocol": s["protocol"], "Endpoint": s["endpoint"],
                     "PendingConfirmation": s["pending"], "Owner": base.ACCOUNT_ID}
                    for s in self.subs.values()]
