"""Elastic Load Balancing v2 (Application Load Balancers): load balancers,
target groups with health-checked targets, listeners with weighted forward,
redirect and fixed-response actions, attributes and tags.

Target health is computed from timestamps: a target registered (by ECS,
through ``register_targets_internal``) is ``initial`` until its health checks
have run HealthyThresholdCount (or UnhealthyThresholdCount) times, scaled by
the clock; deregistered targets drain for the target group's deregistration
delay and then disappear (``_advance``, run from ``tick()`` and reads).
"""

import base64
import datetime
import json
import re

from .. import base
from ..base import AwsError

LB_PROVISION_SECONDS = 60.0
ENI_RELEASE_SECONDS = 20.0
# After a listener goes (DeleteListener, DeleteLoadBalancer) its target groups
# stay "in use" for DeleteTargetGroup a little longer: AWS answers
# ResourceInUse for a while, which is why controllers retry that call.
LISTENER_RELEASE_SECONDS = 15.0
MAX_TAGS = 50
MAX_SECURITY_GROUPS = 5   # per load balancer (AWS quota)

_HOSTED_ZONES = {"us-east-1": "Z35SXDOTRQ7X7K", "us-east-2": "Z3AADJGX6KTTL2",
                 "us-west-1": "Z368ELLRRE2KJ0", "us-west-2": "Z1H1FL5HABSF5",
                 "eu-west-1": "Z32O12XQLNTSW2", "eu-central-1": "Z215JYRZR1TBD5",
                 "ap-southeast-1": "Z1LMS91P8CMLE5", "ap-northeast-1": "Z14GRHDCWA56QT"}

_SSL_POLICIES = {
    "ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06", "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-TLS-1-1-2017-01", "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-2-2019-08", "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08", "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-2015-05",
}

_CONTENT_TYPES = {"text/plain", "text/css", "text/html", "application/javascript",
                  "application/json"}

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
_LB_ARN_RE = re.compile(r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer/"
                        r"(app|net|gwy)/[^/]+/[0-9a-f]{16}$")
_TG_ARN_RE = re.compile(r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/"
                        r"[^/]+/[0-9a-f]{16}$")
_LISTENER_ARN_RE = re.compile(r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/"
                              r"(app|net|gwy)/[^/]+/[0-9a-f]{16}/[0-9a-f]{16}$")


def _attr_defaults():
    return {
        "deregistration_delay.timeout_seconds": "300",
        "stickiness.enabled": "false",
        "stickiness.type": "lb_cookie",
        "stickiness.lb_cookie.duration_seconds": "86400",
        "stickiness.app_cookie.cookie_name": "",
        "stickiness.app_cookie.duration_seconds": "86400",
        "load_balancing.algorithm.type": "round_robin",
        "load_balancing.cross_zone.enabled": "use_load_balancer_configuration",
        "slow_start.duration_seconds": "0",
        "target_group_health.dns_failover.minimum_healthy_targets.count": "1",
        "target_group_health.dns_failover.minimum_healthy_targets.percentage": "off",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": "1",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off",
    }


def _int_attr(key, value, lo, hi):
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = None
    if n is None or not lo <= n <= hi:
        raise AwsError("ValidationError",
                       f"'{value}' is not a valid value for target group attribute '{key}'; "
                       f"it must be an integer from {lo} to {hi}")
    return str(n)


def _check_attr(key, value):
    """The normalized value of a target group attribute, or AwsError."""
    if key == "deregistration_delay.timeout_seconds":
        return _int_attr(key, value, 0, 3600)
    if key in ("stickiness.lb_cookie.duration_seconds", "stickiness.app_cookie.duration_seconds"):
        return _int_attr(key, value, 1, 604800)
    if key == "slow_start.duration_seconds":
        v = _int_attr(key, value, 0, 900)
        if 0 < int(v) < 30:
            raise AwsError("ValidationError",
                           "Slow start duration must be 0 (disabled) or between 30 and 900 seconds")
        return v
    if key == "stickiness.enabled":
        if value not in ("true", "false"):
            raise AwsError("ValidationError",
                           f"'{value}' is not a valid value for 'stickiness.enabled'; "
                           "it must be 'true' or 'false'")
        return value
    if key == "stickiness.type":
        if value not in ("lb_cookie", "app_cookie"):
            raise AwsError("ValidationError",
                           f"'{value}' is not a valid stickiness type for an Application Load "
                           "Balancer target group")
        return value
    if key == "load_balancing.algorithm.type":
        if value not in ("round_robin", "least_outstanding_requests"):
            raise AwsError("ValidationError",
                           f"'{value}' is not a valid load balancing algorithm")
        return value
    if key == "load_balancing.cross_zone.enabled":
        if value not in ("true", "false", "use_load_balancer_configuration"):
            raise AwsError("ValidationError", f"'{value}' is not a valid cross-zone setting")
        return value
    if key == "stickiness.app_cookie.cookie_name":
        if value.upper().startswith(("AWSALB", "AWSALBAPP", "AWSALBTG")):
            raise AwsError("ValidationError", f"Cookie name '{value}' is reserved")
        return value
    if key.startswith("target_group_health."):
        if value == "off" and not key.endswith("unhealthy_state_routing.minimum_healthy_targets.count"):
            return value
        hi = 100 if key.endswith("percentage") else 10000
        return _int_attr(key, value, 1, hi)
    raise AwsError("ValidationError", f"Target group attribute key '{key}' is not recognized")


def _check_matcher(matcher, protocol):
    code = (matcher or {}).get("HttpCode")
    if matcher and matcher.get("GrpcCode") and protocol in ("HTTP", "HTTPS"):
        raise AwsError("ValidationError", "GrpcCode is only valid for the GRPC protocol version")
    if code is None:
        return {"HttpCode": "200"}
    lo, hi = (200, 499) if protocol in ("HTTP", "HTTPS") else (200, 599)
    ok = bool(code)
    for part in code.split(","):
        m = re.fullmatch(r"(\d{3})(?:-(\d{3}))?", part.strip())
        if not m:
            ok = False
            break
        a = int(m.group(1))
        b = int(m.group(2) or a)
        if not (lo <= a <= hi and lo <= b <= hi and a <= b):
            ok = False
    if not ok:
        raise AwsError("ValidationError",
                       f"Health check matcher HTTP code '{code}' must be within '{lo}-{hi}'")
    return {"HttpCode": code}


def _tag_check(tags):
    keys = [t["Key"] for t in tags]
    if len(set(keys)) != len(keys):
        raise AwsError("DuplicateTagKeys", "Tag keys must be unique")
    for k in keys:
        if k.lower().startswith("aws:"):
            raise AwsError("ValidationError", "Tag keys starting with 'aws:' are reserved")


def _marker_encode(offset):
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _paginate(items, params):
    marker = params.get("Marker")
    start = 0
    if marker:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(marker.encode()))["o"])
        except Exception:
            raise AwsError("ValidationError", f"Invalid marker '{marker}'")
    size = params.get("PageSize") or 400
    end = start + size
    return items[start:end], (_marker_encode(end) if end < len(items) else None)


class Elbv2Service(base.Service):
    SERVICE = "elbv2"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.lbs = {}
        self.tgs = {}
        self.listeners = {}
        self.tags = {}      # arn -> {key: value}
        self.targets = {}   # tg arn -> {(id, port): target record}
        self.history = []

    # ------------------------------------------------------------------ helpers

    def _now(self):
        return self.clock.now()

    def _dt(self, t):
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)

    def _ec2(self):
        return self.other("ec2")

    def _lb(self, arn, region):
        if not _LB_ARN_RE.match(arn or ""):
            raise AwsError("ValidationError", f"'{arn}' is not a valid load balancer ARN")
        lb = self.lbs.get(arn)
        if lb is None or lb["_region"] != region:
            raise AwsError("LoadBalancerNotFound", f"Load balancer '{arn}' not found")
        return lb

    def _tg(self, arn, region):
        if not _TG_ARN_RE.match(arn or ""):
            raise AwsError("ValidationError", f"'{arn}' is not a valid target group ARN")
        tg = self.tgs.get(arn)
        if tg is None or tg["_region"] != region:
            raise AwsError("TargetGroupNotFound", f"Target groups '{arn}' not found")
        return tg

    def _listener(self, arn, region):
        if not _LISTENER_ARN_RE.match(arn or ""):
            raise AwsError("ValidationError", f"'{arn}' is not a valid listener ARN")
        ls = self.listeners.get(arn)
        if ls is None or ls["_region"] != region:
            raise AwsError("ListenerNotFound", f"Listener '{arn}' not found")
        return ls

    def _tag_list(self, arn):
        return [{"Key": k, "Value": v} for k, v in self.tags.get(arn, {}).items()]

    def _set_tags(self, arn, tags):
        current = dict(self.tags.get(arn, {}))
        for t in tags:
            current[t["Key"]] = t.get("Value") or ""
        if len(current) > MAX_TAGS:
            raise AwsError("TooManyTags", f"The quota for the number of tags that can be assigned "
                           f"to a load balancer has been reached ({MAX_TAGS})")
        self.tags[arn] = current

    def _tg_lbs(self, tg_arn):
        """ARNs of the load balancers whose listeners forward to the target group."""
        out = []
        for ls in self.listeners.values():
            if tg_arn in self._action_tgs(ls["DefaultActions"]) and ls["LoadBalancerArn"] not in out:
                out.append(ls["LoadBalancerArn"])
        return out

    @staticmethod
    def _action_tgs(actions):
        out = []
        for a in actions:
            if a["Type"] == "forward":
                for t in a["ForwardConfig"]["TargetGroups"]:
                    out.append(t["TargetGroupArn"])
        return out

    # ------------------------------------------------------------- advance time

    def tick(self):
        with self.lock:
            self._advance()

    def _advance(self):
        now = self._now()
        for lb in self.lbs.values():
            if lb["State"]["Code"] == "provisioning" and now >= lb["_active_at"]:
                lb["State"] = {"Code": "active"}
        for tg_arn, targets in self.targets.items():
            for key, t in list(targets.items()):
                if t.get("_gone_at") is not None and now >= t["_gone_at"]:
                    del targets[key]

    def _refresh_attachments(self):
        now = self._now()
        for arn, tg in self.tgs.items():
            used = bool(self._tg_lbs(arn))
            if used and tg["_attached_since"] is None:
                tg["_attached_since"] = now
            elif not used:
                tg["_attached_since"] = None

    def _target_state(self, tg, t, now):
        """(State, Reason, Description) of a registered target at ``now``."""
        if t.get("_gone_at") is not None:
            return ("draining", "Target.DeregistrationInProgress",
                    "Target deregistration is in progress")
        lb_arns = self._tg_lbs(tg["TargetGroupArn"])
        if not lb_arns or tg["_attached_since"] is None:
            return ("unused", "Target.NotInUse",
                    "Target group is not configured to receive traffic from the load balancer")
        if not tg["HealthCheckEnabled"]:
            return ("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")
        lb = self.lbs.get(lb_arns[0])
        lb_ready = lb["_active_at"] if lb is not None else now
        start = max(t["_registered_at"], tg["_attached_since"], lb_ready)
        if now < lb_ready:
            return ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
        interval = tg["HealthCheckIntervalSeconds"]

        def verdict(healthy, since):
            count = tg["HealthyThresholdCount"] if healthy else tg["UnhealthyThresholdCount"]
            if now < since + self.clock.delay(count * interval):
                return None
            if healthy:
                return ("healthy", None, None)
            return ("unhealthy", "Target.ResponseCodeMismatch",
                    "Health checks failed with these codes: [500]")

        if t.get("_changed_at") is not None and t["_changed_at"] > start:
            now_verdict = verdict(t["healthy"], t["_changed_at"])
            if now_verdict is not None:
                return now_verdict
            prev = verdict(not t["healthy"], start)
            if prev is not None:
                return prev
            return ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
        result = verdict(t["healthy"], start)
        if result is None:
            return ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
        return result

    # ---------------------------------------------------------- load balancers

    def CreateLoadBalancer(self, req, params):
        name = params["Name"]
        if len(name) > 32:
            raise AwsError("ValidationError",
                           f"The load balancer name '{name}' cannot be longer than '32' characters")
        if not _NAME_RE.match(name) or name.lower().startswith("internal-"):
            raise AwsError("ValidationError",
                           f"The load balancer name '{name}' can only contain characters that are "
                           "alphanumeric characters and hyphens(-), must not begin or end with a "
                           "hyphen and must not begin with 'internal-'")
        lb_type = params.get("Type") or "application"
        if lb_type != "application":
            raise AwsError("ValidationError",
                           f"Load balancer type '{lb_type}' is not supported by this emulator")
        scheme = params.get("Scheme") or "internet-facing"
        if params.get("Subnets") and params.get("SubnetMappings"):
            raise AwsError("ValidationError",
                           "You can specify subnets or subnet mappings, but not both")
        subnet_ids = list(params.get("Subnets") or
                          [m.get("SubnetId") for m in params.get("SubnetMappings") or []])
        tags = params.get("Tags") or []
        _tag_check(tags)
        with self.lock:
            self._advance()
            ec2 = self._ec2()
            subnets = []
            for sid in subnet_ids:
                sub = ec2.get_subnet(sid) if sid else None
                if sub is None or sub["Region"] != req.region:
                    raise AwsError("SubnetNotFound", f"The subnet ID '{sid}' is not valid")
                subnets.append(sub)
            if len({s["AvailabilityZone"] for s in subnets}) < 2:
                raise AwsError("ValidationError",
                               "At least two subnets in two different Availability Zones must be "
                               "specified")
            if len({s["AvailabilityZone"] for s in subnets}) != len(subnets):
                raise AwsError("InvalidConfigurationRequest",
                               "A load balancer cannot be attached to multiple subnets in the same "
                               "Availability Zone")
            vpc_ids = {s["VpcId"] for s in subnets}
            if len(vpc_ids) != 1:
                raise AwsError("InvalidConfigurationRequest",
                               "Subnets must all belong to the same VPC")
            vpc_id = vpc_ids.pop()
            vpc = ec2.get_vpc(vpc_id)
            if scheme == "internet-facing" and not vpc["InternetGatewayIds"]:
                raise AwsError("InvalidSubnet", f"VPC {vpc_id} has no internet gateway")
            sg_ids = list(params.get("SecurityGroups") or [])
            for gid in sg_ids:
                sg = ec2.get_security_group(gid)
                if sg is None or sg["VpcId"] != vpc_id:
                    raise AwsError("InvalidSecurityGroup",
                                   f"One or more security groups are invalid: '{gid}'")
            if not sg_ids:
                sg_ids = [vpc["DefaultSecurityGroupId"]]
            for lb in self.lbs.values():
                if lb["_region"] == req.region and lb["LoadBalancerName"] == name:
                    same = (lb["Scheme"] == scheme and lb["_subnets"] == sorted(subnet_ids)
                            and sorted(lb["SecurityGroups"]) == sorted(sg_ids))
                    if not same:
                        raise AwsError("DuplicateLoadBalancerName",
                                       f"A load balancer with the same name '{name}' exists, but "
                                       "with different settings")
                    return {"LoadBalancers": [self._render_lb(lb)]}
            if len([lb for lb in self.lbs.values() if lb["_region"] == req.region]) >= \
                    self.emulator.quotas["elbv2.load_balancers"]:
                raise AwsError("TooManyLoadBalancers",
                               "The quota for the number of load balancers has been reached")
            lb_id = base.rand_suffix(16, "0123456789abcdef")
            arn = base.arn("elasticloadbalancing", req.region, f"loadbalancer/app/{name}/{lb_id}")
            dns_prefix = ("internal-" if scheme == "internal" else "") + name
            dns = (f"{dns_prefix}-{base._rand.randint(1000000000, 2147483647)}."
                   f"{req.region}.elb.amazonaws.com")
            now = self._now()
            enis = []
            try:
                for sub in subnets:
                    eni = ec2.create_network_interface_internal(
                        sub["SubnetId"], sg_ids, f"ELB app/{name}/{lb_id}",
                        public_ip=(scheme == "internet-facing"))
                    enis.append(eni["NetworkInterfaceId"])
            except AwsError:
                for e in enis:
                    ec2.delete_network_interface_internal(e)
                raise
            lb = {"_region": req.region, "_active_at": now + self.clock.delay(LB_PROVISION_SECONDS),
                  "_enis": enis, "_subnets": sorted(subnet_ids),
                  "_eni_of": {s["SubnetId"]: e for s, e in zip(subnets, enis)},
                  "LoadBalancerArn": arn, "DNSName": dns,
                  "CanonicalHostedZoneId": _HOSTED_ZONES.get(req.region, "Z35SXDOTRQ7X7K"),
                  "CreatedTime": self._dt(now), "LoadBalancerName": name, "Scheme": scheme,
                  "VpcId": vpc_id, "State": {"Code": "provisioning"}, "Type": lb_type,
                  "AvailabilityZones": [{"ZoneName": s["AvailabilityZone"],
                                         "SubnetId": s["SubnetId"], "LoadBalancerAddresses": []}
                                        for s in subnets],
                  "SecurityGroups": sg_ids,
                  "IpAddressType": params.get("IpAddressType") or "ipv4"}
            self.lbs[arn] = lb
            self._set_tags(arn, tags)
            return {"LoadBalancers": [self._render_lb(lb)]}

    def _render_lb(self, lb):
        out = {k: v for k, v in lb.items() if not k.startswith("_")}
        out["State"] = dict(lb["State"])
        out["AvailabilityZones"] = [dict(z) for z in lb["AvailabilityZones"]]
        out["SecurityGroups"] = list(lb["SecurityGroups"])
        return out

    def DescribeLoadBalancers(self, req, params):
        with self.lock:
            self._advance()
            arns, names = params.get("LoadBalancerArns"), params.get("Names")
            if arns and names:
                raise AwsError("ValidationError",
                               "Load balancer names and load balancer ARNs cannot be specified at "
                               "the same time")
            items = [lb for lb in self.lbs.values() if lb["_region"] == req.region]
            if arns:
                for a in arns:
                    if not _LB_ARN_RE.match(a):
                        raise AwsError("ValidationError", f"'{a}' is not a valid load balancer ARN")
                missing = [a for a in arns if a not in {lb["LoadBalancerArn"] for lb in items}]
                if missing:
                    raise AwsError("LoadBalancerNotFound", "One or more load balancers not found")
                items = [lb for lb in items if lb["LoadBalancerArn"] in arns]
            if names:
                missing = [n for n in names if n not in {lb["LoadBalancerName"] for lb in items}]
                if missing:
                    raise AwsError("LoadBalancerNotFound",
                                   f"Load balancers '[{', '.join(missing)}]' not found")
                items = [lb for lb in items if lb["LoadBalancerName"] in names]
            page, marker = _paginate(items, params)
            out = {"LoadBalancers": [self._render_lb(lb) for lb in page]}
        if marker:
            out["NextMarker"] = marker
        return out

    def DeleteLoadBalancer(self, req, params):
        with self.lock:
            arn = params["LoadBalancerArn"]
            if not _LB_ARN_RE.match(arn):
                raise AwsError("ValidationError", f"'{arn}' is not a valid load balancer ARN")
            lb = self.lbs.get(arn)
            if lb is None or lb["_region"] != req.region:
                return {}   # AWS: deleting a load balancer that does not exist succeeds
            for larn in [a for a, ls in self.listeners.items() if ls["LoadBalancerArn"] == arn]:
                self._delete_listener(larn)
            ec2 = self._ec2()
            for eni in lb["_enis"]:
                ec2.delete_network_interface_internal(eni, delay_seconds=ENI_RELEASE_SECONDS)
            del self.lbs[arn]
            self.tags.pop(arn, None)
            self._refresh_attachments()
        return {}

    def _lb_subnets(self, req, lb, params):
        """The subnets SetSubnets asks for, checked as AWS checks an ALB's:
        they exist, at least two in distinct Availability Zones, all in the
        load balancer's VPC. Returns the subnet records in request order."""
        if params.get("Subnets") and params.get("SubnetMappings"):
            raise AwsError("ValidationError",
                           "You can specify subnets or subnet mappings, but not both")
        mappings = params.get("SubnetMappings") or []
        for m in mappings:
            if m.get("AllocationId") or m.get("PrivateIPv4Address") or m.get("IPv6Address"):
                raise AwsError("InvalidConfigurationRequest",
                               "Elastic IP addresses and private IP addresses can only be "
                               "specified for Network Load Balancers")
        subnet_ids = list(params.get("Subnets") or [m.get("SubnetId") for m in mappings])
        ec2 = self._ec2()
        subnets = []
        for sid in subnet_ids:
            sub = ec2.get_subnet(sid) if sid else None
            if sub is None or sub["Region"] != req.region:
                raise AwsError("SubnetNotFound", f"The subnet ID '{sid}' is not valid")
            subnets.append(sub)
        zones = {s["AvailabilityZone"] for s in subnets}
        if len(zones) < 2:
            raise AwsError("ValidationError",
                           "At least two subnets in two different Availability Zones must be "
                           "specified")
        if len(zones) != len(subnets):
            raise AwsError("InvalidConfigurationRequest",
                           "A load balancer cannot be attached to multiple subnets in the same "
                           "Availability Zone")
        for s in subnets:
            if s["VpcId"] != lb["VpcId"]:
                raise AwsError("InvalidConfigurationRequest",
                               f"Subnet '{s['SubnetId']}' is in VPC '{s['VpcId']}', not in the "
                               f"load balancer's VPC '{lb['VpcId']}'")
        return subnets

    def SetSubnets(self, req, params):
        """Replaces the load balancer's subnets (and so its Availability
        Zones): one ENI per subnet, those of removed subnets released a
        little later as AWS does, new ones in the added subnets."""
        with self.lock:
            self._advance()
            lb = self._lb(params["LoadBalancerArn"], req.region)
            ip_type = params.get("IpAddressType") or lb["IpAddressType"]
            if ip_type != "ipv4":
                raise AwsError("InvalidConfigurationRequest",
                               f"IP address type '{ip_type}' needs subnets with IPv6 CIDR "
                               "blocks (IPv6 is not modelled by this emulator)")
            subnets = self._lb_subnets(req, lb, params)
            ec2 = self._ec2()
            eni_of = lb["_eni_of"]
            added = []
            try:
                for s in subnets:
                    if s["SubnetId"] not in eni_of:
                        eni = ec2.create_network_interface_internal(
                            s["SubnetId"], lb["SecurityGroups"],
                            f"ELB {self.lb_dimension(lb['LoadBalancerArn'])}",
                            public_ip=(lb["Scheme"] == "internet-facing"))
                        added.append((s["SubnetId"], eni["NetworkInterfaceId"]))
            except AwsError:
                for _, e in added:
                    ec2.delete_network_interface_internal(e)
                raise
            wanted = {s["SubnetId"] for s in subnets}
            for sid in [sid for sid in eni_of if sid not in wanted]:
                ec2.delete_network_interface_internal(eni_of.pop(sid),
                                                      delay_seconds=ENI_RELEASE_SECONDS)
            eni_of.update(added)
            lb["_enis"] = [eni_of[s["SubnetId"]] for s in subnets]
            lb["_subnets"] = sorted(wanted)
            lb["IpAddressType"] = ip_type
            lb["AvailabilityZones"] = [{"ZoneName": s["AvailabilityZone"],
                                        "SubnetId": s["SubnetId"], "LoadBalancerAddresses": []}
                                       for s in subnets]
            return {"AvailabilityZones": [dict(z) for z in lb["AvailabilityZones"]],
                    "IpAddressType": ip_type}

    def SetSecurityGroups(self, req, params):
        """Replaces the load balancer's security groups (at most 5, all of
        its VPC), on the load balancer and on its network interfaces."""
        with self.lock:
            self._advance()
            lb = self._lb(params["LoadBalancerArn"], req.region)
            sg_ids = list(dict.fromkeys(params["SecurityGroups"]))
            if not sg_ids:
                raise AwsError("InvalidConfigurationRequest",
                               "An Application Load Balancer must have at least one security "
                               "group")
            if len(sg_ids) > MAX_SECURITY_GROUPS:
                raise AwsError("InvalidConfigurationRequest",
                               f"A load balancer can have at most {MAX_SECURITY_GROUPS} security "
                               "groups")
            ec2 = self._ec2()
            records = []
            for gid in sg_ids:
                sg = ec2.get_security_group(gid)
                if sg is None or sg["Region"] != req.region or sg["VpcId"] != lb["VpcId"]:
                    raise AwsError("InvalidSecurityGroup",
                                   f"One or more security groups are invalid: '{gid}'")
                records.append(sg)
            # The interfaces carry the groups too (what keeps a group in use
            # for DeleteSecurityGroup). EC2 has no internal setter for a
            # requester-managed interface's groups; one lock guards both
            # services' state, so they are set here.
            groups = [{"GroupName": g["GroupName"], "GroupId": g["GroupId"]} for g in records]
            for eni_id in lb["_enis"]:
                eni = ec2.enis.get(eni_id)
                if eni is not None:
                    eni["Groups"] = [dict(g) for g in groups]
            lb["SecurityGroups"] = sg_ids
            return {"SecurityGroupIds": list(sg_ids)}

    # ---------------------------------------------------------- target groups

    def _health_settings(self, params, protocol, current=None):
        cur = current or {}

        def pick(key, default):
            v = params.get(key)
            return v if v is not None else cur.get(key, default)

        hc = {"HealthCheckProtocol": pick("HealthCheckProtocol", protocol or "HTTP"),
              "HealthCheckPort": pick("HealthCheckPort", "traffic-port"),
              "HealthCheckEnabled": pick("HealthCheckEnabled", True),
              "HealthCheckIntervalSeconds": pick("HealthCheckIntervalSeconds", 30),
              "HealthCheckTimeoutSeconds": pick("HealthCheckTimeoutSeconds", 5),
              "HealthyThresholdCount": pick("HealthyThresholdCount", 5),
              "UnhealthyThresholdCount": pick("UnhealthyThresholdCount", 2),
              "HealthCheckPath": pick("HealthCheckPath", "/"),
              "Matcher": _check_matcher(params.get("Matcher") or cur.get("Matcher"),
                                        protocol or "HTTP")}
        if hc["HealthCheckProtocol"] not in ("HTTP", "HTTPS"):
            raise AwsError("ValidationError",
                           f"Health check protocol '{hc['HealthCheckProtocol']}' is not supported "
                           "for target groups with the HTTP protocol")
        port = hc["HealthCheckPort"]
        if port != "traffic-port" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise AwsError("ValidationError",
                           f"Health check port '{port}' must be 'traffic-port' or 1-65535")
        if not hc["HealthCheckPath"].startswith("/"):
            raise AwsError("ValidationError",
                           f"Health check path '{hc['HealthCheckPath']}' must begin with a '/'")
        if hc["HealthCheckTimeoutSeconds"] >= hc["HealthCheckIntervalSeconds"]:
            raise AwsError("InvalidConfigurationRequest",
                           f"Health check timeout '{hc['HealthCheckTimeoutSeconds']}' must be smaller "
                           f"than the interval '{hc['HealthCheckIntervalSeconds']}'")
        return hc

    def CreateTargetGroup(self, req, params):
        name = params["Name"]
        if len(name) > 32:
            raise AwsError("ValidationError",
                           f"Target group name '{name}' cannot be longer than '32' characters")
        if not _NAME_RE.match(name):
            raise AwsError("ValidationError",
                           f"Target group name '{name}' can only contain characters that are "
                           "alphanumeric characters or hyphens(-) and must not begin or end with "
                           "a hyphen")
        ttype = params.get("TargetType") or "instance"
        if ttype == "lambda" or ttype == "alb":
            raise AwsError("ValidationError", f"Target type '{ttype}' is not supported by this emulator")
        protocol = params.get("Protocol")
        if protocol is None:
            raise AwsError("ValidationError", "A protocol must be specified")
        if protocol not in ("HTTP", "HTTPS"):
            raise AwsError("ValidationError",
                           f"Protocol '{protocol}' is not supported by this emulator")
        if params.get("Port") is None:
            raise AwsError("ValidationError", "A port must be specified")
        if not params.get("VpcId"):
            raise AwsError("ValidationError", "A VPC ID must be specified")
        pv = params.get("ProtocolVersion") or "HTTP1"
        if pv not in ("HTTP1", "HTTP2", "GRPC"):
            raise AwsError("ValidationError", f"Protocol version '{pv}' is not valid")
        tags = params.get("Tags") or []
        _tag_check(tags)
        with self.lock:
            vpc = self._ec2().get_vpc(params["VpcId"])
            if vpc is None or vpc["Region"] != req.region:
                raise AwsError("ValidationError", f"The VPC ID '{params['VpcId']}' is not found")
            hc = self._health_settings(params, protocol)
            fields = dict(hc, Protocol=protocol, Port=params["Port"], VpcId=params["VpcId"],
                          TargetType=ttype, ProtocolVersion=pv,
                          IpAddressType=params.get("IpAddressType") or "ipv4")
            for tg in self.tgs.values():
                if tg["_region"] == req.region and tg["TargetGroupName"] == name:
                    if all(tg.get(k) == v for k, v in fields.items()):
                        return {"TargetGroups": [self._render_tg(tg)]}
                    raise AwsError("DuplicateTargetGroupName",
                                   "A target group with the same name "
                                   f"'{name}' exists, but with different settings")
            tg_id = base.rand_suffix(16, "0123456789abcdef")
            arn = base.arn("elasticloadbalancing", req.region, f"targetgroup/{name}/{tg_id}")
            tg = dict(fields, _region=req.region, _attrs=_attr_defaults(), _attached_since=None,
                      TargetGroupArn=arn, TargetGroupName=name)
            self.tgs[arn] = tg
            self.targets[arn] = {}
            self._set_tags(arn, tags)
            return {"TargetGroups": [self._render_tg(tg)]}

    def _render_tg(self, tg):
        out = {k: v for k, v in tg.items() if not k.startswith("_")}
        out["Matcher"] = dict(tg["Matcher"])
        out["LoadBalancerArns"] = self._tg_lbs(tg["TargetGroupArn"])
        return out

    def DescribeTargetGroups(self, req, params):
        with self.lock:
            self._advance()
            given = [k for k in ("LoadBalancerArn", "TargetGroupArns", "Names") if params.get(k)]
            if len(given) > 1:
                raise AwsError("ValidationError",
                               "Target group names, target group ARNs, and a load balancer ARN "
                               "cannot be specified at the same time")
            items = [tg for tg in self.tgs.values() if tg["_region"] == req.region]
            if params.get("LoadBalancerArn"):
                lb = self._lb(params["LoadBalancerArn"], req.region)
                items = [tg for tg in items if lb["LoadBalancerArn"] in self._tg_lbs(tg["TargetGroupArn"])]
            if params.get("TargetGroupArns"):
                for a in params["TargetGroupArns"]:
                    if not _TG_ARN_RE.match(a):
                        raise AwsError("ValidationError", f"'{a}' is not a valid target group ARN")
                have = {tg["TargetGroupArn"] for tg in items}
                if any(a not in have for a in params["TargetGroupArns"]):
                    raise AwsError("TargetGroupNotFound", "One or more target groups not found")
                items = [tg for tg in items if tg["TargetGroupArn"] in params["TargetGroupArns"]]
            if params.get("Names"):
                have = {tg["TargetGroupName"] for tg in items}
                if any(n not in have for n in params["Names"]):
                    raise AwsError("TargetGroupNotFound", "One or more target groups not found")
                items = [tg for tg in items if tg["TargetGroupName"] in params["Names"]]
            page, marker = _paginate(items, params)
            out = {"TargetGroups": [self._render_tg(tg) for tg in page]}
        if marker:
            out["NextMarker"] = marker
        return out

    def ModifyTargetGroup(self, req, params):
        with self.lock:
            tg = self._tg(params["TargetGroupArn"], req.region)
            hc = self._health_settings(params, tg["Protocol"], current=tg)
            tg.update(hc)
            return {"TargetGroups": [self._render_tg(tg)]}

    def DeleteTargetGroup(self, req, params):
        with self.lock:
            arn = params["TargetGroupArn"]
            if not _TG_ARN_RE.match(arn):
                raise AwsError("ValidationError", f"'{arn}' is not a valid target group ARN")
            tg = self.tgs.get(arn)
            if tg is None or tg["_region"] != req.region:
                return {}
            in_use = any(arn in self._action_tgs(ls["DefaultActions"])
                         for ls in self.listeners.values())
            if in_use or (tg.get("_in_use_until") or 0.0) > self._now():
                raise AwsError("ResourceInUse",
                               f"Target group '{arn}' is currently in use by a listener or a rule")
            del self.tgs[arn]
            self.targets.pop(arn, None)
            self.tags.pop(arn, None)
        return {}

    def DescribeTargetGroupAttributes(self, req, params):
        with self.lock:
            tg = self._tg(params["TargetGroupArn"], req.region)
            return {"Attributes": [{"Key": k, "Value": v} for k, v in tg["_attrs"].items()]}

    def ModifyTargetGroupAttributes(self, req, params):
        with self.lock:
            tg = self._tg(params["TargetGroupArn"], req.region)
            updates = {}
            for a in params["Attributes"]:
                key, value = a.get("Key"), a.get("Value")
                if key is None or value is None:
                    raise AwsError("ValidationError", "Attribute key and value must be specified")
                updates[key] = _check_attr(key, value)
            tg["_attrs"].update(updates)
            return {"Attributes": [{"Key": k, "Value": v} for k, v in tg["_attrs"].items()]}

    def DescribeTargetHealth(self, req, params):
        with self.lock:
            self._advance()
            tg = self._tg(params["TargetGroupArn"], req.region)
            now = self._now()
            registered = self.targets.get(tg["TargetGroupArn"], {})
            wanted = []
            if params.get("Targets"):
                for t in params["Targets"]:
                    wanted.append((t["Id"], t.get("Port") or tg["Port"]))
            else:
                wanted = list(registered)
            out = []
            for key in wanted:
                tid, port = key
                hc_port = str(port) if tg["HealthCheckPort"] == "traffic-port" else tg["HealthCheckPort"]
                t = registered.get(key)
                target = {"Id": tid, "Port": port}
                if t is None:
                    health = {"State": "unused", "Reason": "Target.NotRegistered",
                              "Description": "Target is not registered to the target group"}
                else:
                    if t.get("AvailabilityZone"):
                        target["AvailabilityZone"] = t["AvailabilityZone"]
                    state, reason, desc = self._target_state(tg, t, now)
                    health = {"State": state}
                    if reason:
                        health["Reason"] = reason
                        health["Description"] = desc
                out.append({"Target": target, "HealthCheckPort": hc_port, "TargetHealth": health})
            return {"TargetHealthDescriptions": out}

    # ---------------------------------------------------------- listeners

    def _normalize_actions(self, req, lb, actions, protocol):
        if not actions:
            raise AwsError("ValidationError", "A default action must be specified")
        out = []
        terminal = 0
        for a in actions:
            atype = a["Type"]
            if atype.startswith("authenticate-"):
                if protocol != "HTTPS":
                    raise AwsError("InvalidLoadBalancerAction",
                                   "Authenticate actions are supported only on HTTPS listeners")
                raise AwsError("InvalidLoadBalancerAction",
                               f"Action type '{atype}' is not supported by this emulator")
            terminal += 1
            norm = {"Type": atype}
            if a.get("Order") is not None:
                norm["Order"] = a["Order"]
            if atype == "forward":
                fc = a.get("ForwardConfig")
                single = a.get("TargetGroupArn")
                tuples = []
                if fc and fc.get("TargetGroups"):
                    for t in fc["TargetGroups"]:
                        if not t.get("TargetGroupArn"):
                            raise AwsError("ValidationError",
                                           "A target group ARN must be specified in each target "
                                           "group tuple")
                        w = t.get("Weight")
                        w = 1 if w is None else w
                        if not 0 <= w <= 999:
                            raise AwsError("ValidationError",
                                           f"1 validation error detected: Value '{w}' at "
                                           "'defaultActions.member.forwardConfig.targetGroups."
                                           "member.weight' failed to satisfy constraint: Member "
                                           "must have value between 0 and 999")
                        tuples.append({"TargetGroupArn": t["TargetGroupArn"], "Weight": w})
                    if single and [t["TargetGroupArn"] for t in tuples] != [single]:
                        raise AwsError("ValidationError",
                                       "You cannot specify both a target group ARN and a "
                                       "forward config with different target groups")
                elif single:
                    tuples = [{"TargetGroupArn": single, "Weight": 1}]
                else:
                    raise AwsError("ValidationError",
                                   "A target group ARN must be specified for forward actions")
                if len(tuples) > 5:
                    raise AwsError("ValidationError",
                                   "A forward action can have at most 5 target groups")
                arns = [t["TargetGroupArn"] for t in tuples]
                if len(set(arns)) != len(arns):
                    raise AwsError("ValidationError",
                                   "A target group can be specified only once in a forward action")
                for tarn in arns:
                    tg = self._tg(tarn, req.region)
                    if tg["VpcId"] != lb["VpcId"]:
                        raise AwsError("InvalidConfigurationRequest",
                                       f"The target group '{tarn}' is not in the same VPC as the "
                                       "load balancer")
                    others = [x for x in self._tg_lbs(tarn) if x != lb["LoadBalancerArn"]]
                    if others:
                        raise AwsError("TargetGroupAssociationLimit",
                                       "The following target groups cannot be associated with "
                                       f"more than one load balancer: {tarn}")
                stick = (fc or {}).get("TargetGroupStickinessConfig") or {"Enabled": False}
                stick = dict(stick)
                if stick.get("Enabled"):
                    d = stick.get("DurationSeconds")
                    if d is None or not 1 <= d <= 604800:
                        raise AwsError("ValidationError",
                                       "Target group stickiness duration must be between 1 and "
                                       "604800 seconds")
                else:
                    stick = {"Enabled": False}
                if len(tuples) == 1:
                    norm["TargetGroupArn"] = tuples[0]["TargetGroupArn"]
                norm["ForwardConfig"] = {"TargetGroups": tuples,
                                         "TargetGroupStickinessConfig": stick}
            elif atype == "redirect":
                rc = a.get("RedirectConfig")
                if not rc:
                    raise AwsError("ValidationError",
                                   "A redirect configuration must be specified for redirect actions")
                full = {"Protocol": rc.get("Protocol") or "#{protocol}",
                        "Port": rc.get("Port") or "#{port}",
                        "Host": rc.get("Host") or "#{host}",
                        "Path": rc.get("Path") or "/#{path}",
                        "Query": rc.get("Query") if rc.get("Query") is not None else "#{query}",
                        "StatusCode": rc["StatusCode"]}
                if full["Protocol"] in ("#{protocol}", protocol) and full["Port"] == "#{port}" and \
                        full["Host"] == "#{host}" and full["Path"] == "/#{path}" and \
                        full["Query"] == "#{query}":
                    raise AwsError("InvalidLoadBalancerAction",
                                   "The redirect configuration is not valid: it would redirect to "
                                   "the same location")
                norm["RedirectConfig"] = full
            elif atype == "fixed-response":
                fr = a.get("FixedResponseConfig")
                if not fr:
                    raise AwsError("ValidationError",
                                   "A fixed response configuration must be specified")
                if fr.get("ContentType") and fr["ContentType"] not in _CONTENT_TYPES:
                    raise AwsError("ValidationError",
                                   f"Content type '{fr['ContentType']}' is not valid")
                norm["FixedResponseConfig"] = dict(fr)
            out.append(norm)
        if terminal != 1:
            raise AwsError("InvalidLoadBalancerAction",
                           "A listener must have exactly one terminal default action")
        return out

    def _check_certificates(self, req, protocol, certs, ssl_policy):
        if protocol == "HTTPS":
            if not certs:
                raise AwsError("ValidationError",
                               "A certificate must be specified for HTTPS listeners")
            if len(certs) > 1:
                raise AwsError("ValidationError",
                               "Only one default certificate can be specified for a listener")
            for c in certs:
                arn = c.get("CertificateArn") or ""
                acm = re.fullmatch(r"arn:aws:acm:([a-z0-9-]+):(\d{12}):certificate/"
                                   r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", arn)
                iam = re.fullmatch(r"arn:aws:iam::(\d{12}):server-certificate/.+", arn)
                if not ((acm and acm.group(1) == req.region and acm.group(2) == base.ACCOUNT_ID)
                        or (iam and iam.group(1) == base.ACCOUNT_ID)):
                    raise AwsError("CertificateNotFound", f"Certificate '{arn}' not found")
            policy = ssl_policy or "ELBSecurityPolicy-2016-08"
            if policy not in _SSL_POLICIES:
                raise AwsError("SSLPolicyNotFound", f"SSL policy '{policy}' not found")
            return [{"CertificateArn": c["CertificateArn"]} for c in certs], policy
        if certs or ssl_policy:
            raise AwsError("ValidationError",
                           "Certificates and SSL policies are only valid for HTTPS listeners")
        return None, None

    def _weights_of(self, ls):
        for a in ls["DefaultActions"]:
            if a["Type"] == "forward":
                return {t["TargetGroupArn"]: t["Weight"] for t in a["ForwardConfig"]["TargetGroups"]}
        return {}

    def _record_weights(self, ls, before):
        after = self._weights_of(ls)
        if after != before:
            self.history.append({"time": self._now(), "listener_arn": ls["ListenerArn"],
                                 "load_balancer_arn": ls["LoadBalancerArn"], "weights": after})

    def CreateListener(self, req, params):
        tags = params.get("Tags") or []
        _tag_check(tags)
        with self.lock:
            self._advance()
            lb = self._lb(params["LoadBalancerArn"], req.region)
            protocol = params.get("Protocol")
            port = params.get("Port")
            if protocol is None or port is None:
                raise AwsError("ValidationError", "A listener protocol and port must be specified")
            if protocol not in ("HTTP", "HTTPS"):
                raise AwsError("UnsupportedProtocol",
                               f"Protocol '{protocol}' is not supported by Application Load Balancers")
            certs, policy = self._check_certificates(req, protocol, params.get("Certificates"),
                                                     params.get("SslPolicy"))
            actions = self._normalize_actions(req, lb, params["DefaultActions"], protocol)
            for ls in self.listeners.values():
                if ls["LoadBalancerArn"] == lb["LoadBalancerArn"] and ls["Port"] == port:
                    if (ls["Protocol"] == protocol and ls["DefaultActions"] == actions
                            and ls.get("Certificates") == certs):
                        return {"Listeners": [self._render_listener(ls)]}
                    raise AwsError("DuplicateListener",
                                   "A listener already exists on this port for this load balancer "
                                   f"'{lb['LoadBalancerArn']}'")
            if sum(1 for ls in self.listeners.values()
                   if ls["LoadBalancerArn"] == lb["LoadBalancerArn"]) >= 50:
                raise AwsError("TooManyListeners", "The quota for the number of listeners has been "
                               "reached")
            lb_path = lb["LoadBalancerArn"].split(":loadbalancer/", 1)[1]
            arn = base.arn("elasticloadbalancing", req.region,
                           f"listener/{lb_path}/{base.rand_suffix(16, '0123456789abcdef')}")
            ls = {"_region": req.region, "ListenerArn": arn,
                  "LoadBalancerArn": lb["LoadBalancerArn"], "Port": port, "Protocol": protocol,
                  "DefaultActions": actions}
            if certs:
                ls["Certificates"] = certs
                ls["SslPolicy"] = policy
            if params.get("AlpnPolicy"):
                ls["AlpnPolicy"] = list(params["AlpnPolicy"])
            self.listeners[arn] = ls
            self._set_tags(arn, tags)
            self._refresh_attachments()
            self._record_weights(ls, {})
            return {"Listeners": [self._render_listener(ls)]}

    def _render_listener(self, ls):
        return json.loads(json.dumps({k: v for k, v in ls.items() if not k.startswith("_")}))

    def DescribeListeners(self, req, params):
        with self.lock:
            if not params.get("LoadBalancerArn") and not params.get("ListenerArns"):
                raise AwsError("ValidationError",
                               "You must specify either listener ARNs or a load balancer ARN")
            if params.get("LoadBalancerArn") and params.get("ListenerArns"):
                raise AwsError("ValidationError",
                               "Listener ARNs and a load balancer ARN cannot be specified at the "
                               "same time")
            if params.get("LoadBalancerArn"):
                lb = self._lb(params["LoadBalancerArn"], req.region)
                items = [ls for ls in self.listeners.values()
                         if ls["LoadBalancerArn"] == lb["LoadBalancerArn"]]
            else:
                items = [self._listener(a, req.region) for a in params["ListenerArns"]]
            page, marker = _paginate(items, params)
            out = {"Listeners": [self._render_listener(ls) for ls in page]}
        if marker:
            out["NextMarker"] = marker
        return out

    def ModifyListener(self, req, params):
        with self.lock:
            self._advance()
            ls = self._listener(params["ListenerArn"], req.region)
            lb = self.lbs[ls["LoadBalancerArn"]]
            protocol = params.get("Protocol") or ls["Protocol"]
            if protocol not in ("HTTP", "HTTPS"):
                raise AwsError("UnsupportedProtocol",
                               f"Protocol '{protocol}' is not supported by Application Load Balancers")
            port = params.get("Port") or ls["Port"]
            for other in self.listeners.values():
                if other is not ls and other["LoadBalancerArn"] == ls["LoadBalancerArn"] and \
                        other["Port"] == port:
                    raise AwsError("DuplicateListener",
                                   "A listener already exists on this port for this load balancer "
                                   f"'{ls['LoadBalancerArn']}'")
            certs_in = params.get("Certificates")
            policy_in = params.get("SslPolicy")
            if protocol == "HTTPS":
                certs_in = certs_in if certs_in is not None else ls.get("Certificates")
                policy_in = policy_in or ls.get("SslPolicy")
            certs, policy = self._check_certificates(req, protocol, certs_in, policy_in)
            if params.get("DefaultActions") is not None:
                # Validate against the other load balancers' target groups without
                # counting this listener's current ones as conflicts.
                actions = self._normalize_actions(req, lb, params["DefaultActions"], protocol)
            else:
                actions = ls["DefaultActions"]
            before = self._weights_of(ls)
            ls["Protocol"], ls["Port"], ls["DefaultActions"] = protocol, port, actions
            ls.pop("Certificates", None)
            ls.pop("SslPolicy", None)
            if certs:
                ls["Certificates"], ls["SslPolicy"] = certs, policy
            if params.get("AlpnPolicy") is not None:
                ls["AlpnPolicy"] = list(params["AlpnPolicy"])
            self._refresh_attachments()
            self._record_weights(ls, before)
            return {"Listeners": [self._render_listener(ls)]}

    def _delete_listener(self, arn):
        ls = self.listeners.pop(arn)
        self.tags.pop(arn, None)
        until = self._now() + self.clock.delay(LISTENER_RELEASE_SECONDS)
        for tg_arn in self._action_tgs(ls["DefaultActions"]):
            tg = self.tgs.get(tg_arn)
            if tg is not None:
                tg["_in_use_until"] = max(tg.get("_in_use_until") or 0.0, until)
        before = self._weights_of(ls)
        if before:
            self.history.append({"time": self._now(), "listener_arn": arn,
                                 "load_balancer_arn": ls["LoadBalancerArn"], "weights": {}})

    def DeleteListener(self, req, params):
        with self.lock:
            ls = self._listener(params["ListenerArn"], req.region)
            self._delete_listener(ls["ListenerArn"])
            self._refresh_attachments()
        return {}

    # ---------------------------------------------------------- tags

    def _resource(self, arn, region):
        if ":loadbalancer/" in arn:
            return self._lb(arn, region)
        if ":targetgroup/" in arn:
            return self._tg(arn, region)
        if ":listener/" in arn:
            return self._listener(arn, region)
        if ":listener-rule/" in arn:
            raise AwsError("RuleNotFound", f"Rule '{arn}' not found")
        raise AwsError("ValidationError", f"'{arn}' is not a valid resource ARN")

    def AddTags(self, req, params):
        arns = params["ResourceArns"]
        if len(arns) > 20:
            raise AwsError("ValidationError", "You can specify up to 20 resource ARNs")
        _tag_check(params["Tags"])
        with self.lock:
            for a in arns:
                self._resource(a, req.region)
            for a in arns:
                current = dict(self.tags.get(a, {}))
                current.update({t["Key"]: t.get("Value") or "" for t in params["Tags"]})
                if len(current) > MAX_TAGS:
                    raise AwsError("TooManyTags", "The quota for the number of tags that can be "
                                   f"assigned to a resource has been reached ({MAX_TAGS})")
            for a in arns:
                self._set_tags(a, params["Tags"])
        return {}

    def RemoveTags(self, req, params):
        arns = params["ResourceArns"]
        if len(arns) > 20:
            raise AwsError("ValidationError", "You can specify up to 20 resource ARNs")
        with self.lock:
            for a in arns:
                self._resource(a, req.region)
            for a in arns:
                current = self.tags.setdefault(a, {})
                for k in params["TagKeys"]:
                    current.pop(k, None)
        return {}

    def DescribeTags(self, req, params):
        arns = params["ResourceArns"]
        if len(arns) > 20:
            raise AwsError("ValidationError", "You can specify up to 20 resource ARNs")
        with self.lock:
            for a in arns:
                self._resource(a, req.region)
            return {"TagDescriptions": [{"ResourceArn": a, "Tags": self._tag_list(a)}
                                        for a in arns]}

    # ------------------------------------------------- cross-service functions

    def register_targets_internal(self, tg_arn, targets):
        """Register targets ({"Id", "Port", "healthy"}) in a target group, as
        ECS does for its tasks. A target already registered (and not
        draining) keeps its state; a draining one is registered afresh.
        Raises AwsError TargetGroupNotFound for an unknown target group."""
        with self.lock:
            self._advance()
            tg = self.tgs.get(tg_arn)
            if tg is None:
                raise AwsError("TargetGroupNotFound", f"Target groups '{tg_arn}' not found")
            now = self._now()
            store = self.targets.setdefault(tg_arn, {})
            for t in targets:
                key = (t["Id"], t.get("Port") or tg["Port"])
                cur = store.get(key)
                if cur is not None and cur.get("_gone_at") is None:
                    continue
                rec = {"_registered_at": now, "healthy": bool(t.get("healthy", True))}
                if t.get("AvailabilityZone"):
                    rec["AvailabilityZone"] = t["AvailabilityZone"]
                store[key] = rec

    def set_target_health_internal(self, tg_arn, target_id, healthy, port=None):
        """Change whether a registered target passes health checks (a task
        whose application starts failing). The reported state follows after
        the threshold number of checks."""
        with self.lock:
            tg = self.tgs.get(tg_arn)
            if tg is None:
                return
            t = self.targets.get(tg_arn, {}).get((target_id, port or tg["Port"]))
            if t is None or t["healthy"] == bool(healthy):
                return
            t["healthy"] = bool(healthy)
            t["_changed_at"] = self._now()

    def deregister_targets_internal(self, tg_arn, targets):
        """Deregister targets ({"Id", "Port"}): they drain for the target
        group's deregistration delay (scaled) and then disappear; targets of
        a target group no load balancer uses go at once."""
        with self.lock:
            self._advance()
            tg = self.tgs.get(tg_arn)
            if tg is None:
                return
            store = self.targets.get(tg_arn, {})
            now = self._now()
            delay = self.clock.delay(int(tg["_attrs"]["deregistration_delay.timeout_seconds"]))
            in_use = bool(self._tg_lbs(tg_arn))
            for t in targets:
                key = (t["Id"], t.get("Port") or tg["Port"])
                rec = store.get(key)
                if rec is None or rec.get("_gone_at") is not None:
                    continue
                if not in_use or delay <= 0:
                    del store[key]
                else:
                    rec["_gone_at"] = now + delay

    def target_group(self, tg_arn):
        """The target group (DescribeTargetGroups shape, plus "Attributes" as a
        dict and "Region") or None."""
        with self.lock:
            tg = self.tgs.get(tg_arn)
            if tg is None:
                return None
            out = self._render_tg(tg)
            out["Attributes"] = dict(tg["_attrs"])
            out["Region"] = tg["_region"]
            return out

    def target_states(self, tg_arn):
        """{target id: state} of every registered target (draining included)."""
        with self.lock:
            self._advance()
            tg = self.tgs.get(tg_arn)
            if tg is None:
                return {}
            now = self._now()
            return {key[0]: self._target_state(tg, t, now)[0]
                    for key, t in self.targets.get(tg_arn, {}).items()}

    def healthy_targets(self, tg_arn):
        """Ids of the target group's targets currently in state healthy."""
        return [tid for tid, state in self.target_states(tg_arn).items() if state == "healthy"]

    def listener_weights(self, lb_arn):
        """{target group arn: weight} of the listener receiving client traffic:
        the port-80 forward listener, or the listener port 80 redirects to; {}
        when there is none."""
        with self.lock:
            mine = sorted((ls for ls in self.listeners.values() if ls["LoadBalancerArn"] == lb_arn),
                          key=lambda ls: ls["Port"])
            by_port = {ls["Port"]: ls for ls in mine}
            entry = by_port.get(80) or (mine[0] if mine else None)
            seen = set()
            while entry is not None and entry["ListenerArn"] not in seen:
                seen.add(entry["ListenerArn"])
                weights = self._weights_of(entry)
                if weights:
                    return weights
                redirect = next((a["RedirectConfig"] for a in entry["DefaultActions"]
                                 if a["Type"] == "redirect"), None)
                if redirect is None or redirect["Host"] != "#{host}":
                    return {}
                port = redirect["Port"]
                if port == "#{port}":
                    port = "443" if redirect["Protocol"] == "HTTPS" else str(entry["Port"])
                entry = by_port.get(int(port)) if port.isdigit() else None
            return {}

    def load_balancers(self):
        """Every load balancer: LoadBalancerArn, LoadBalancerName, State (code),
        DNSName, VpcId, Region."""
        with self.lock:
            self._advance()
            return [{"LoadBalancerArn": lb["LoadBalancerArn"],
                     "LoadBalancerName": lb["LoadBalancerName"], "State": lb["State"]["Code"],
                     "DNSName": lb["DNSName"], "VpcId": lb["VpcId"], "Region": lb["_region"]}
                    for lb in self.lbs.values()]

    @staticmethod
    def lb_dimension(lb_arn):
        """The CloudWatch LoadBalancer dimension value: app/NAME/ID."""
        return lb_arn.split(":loadbalancer/", 1)[1]

    @staticmethod
    def tg_dimension(tg_arn):
        """The CloudWatch TargetGroup dimension value: targetgroup/NAME/ID."""
        return "targetgroup/" + tg_arn.split(":targetgroup/", 1)[1]

    def weight_history(self):
        """Every change of a listener's forward weights, oldest first."""
        with self.lock:
            return [dict(h, weights=dict(h["weights"])) for h in self.history]
