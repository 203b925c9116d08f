"""EC2 networking as aviary uses it: VPCs, subnets, internet and NAT gateways,
Elastic IPs, route tables, security groups (with rule ids), network
interfaces and tags, with AWS's dependency errors and eventual states.

State is kept per resource id (ids are globally unique); every record
remembers its region and Describe calls only see the caller's region.
Time-driven transitions (VPC pending -> available, NAT gateway pending ->
available / failed, deleting -> deleted -> gone) happen in ``_advance``,
run from ``tick()`` and before every read.
"""

import base64
import datetime
import fnmatch
import ipaddress
import json

from .. import base
from ..base import AwsError

NAT_PROVISION_SECONDS = 30.0
NAT_DELETE_SECONDS = 30.0
NAT_DELETED_VISIBLE_SECONDS = 3600.0
VPC_PENDING_SECONDS = 2.0
MAX_TAGS = 50

# id prefix -> (DescribeTags resource-type, NotFound code, noun in messages)
_KINDS = {
    "vpc": ("vpc", "InvalidVpcID.NotFound", "vpc"),
    "subnet": ("subnet", "InvalidSubnetID.NotFound", "subnet"),
    "igw": ("internet-gateway", "InvalidInternetGatewayID.NotFound", "internetGateway"),
    "nat": ("natgateway", "NatGatewayNotFound", "natGateway"),
    "rtb": ("route-table", "InvalidRouteTableID.NotFound", "routeTable"),
    "sg": ("security-group", "InvalidGroup.NotFound", "security group"),
    "eipalloc": ("elastic-ip", "InvalidAllocationID.NotFound", "allocation"),
    "eni": ("network-interface", "InvalidNetworkInterfaceID.NotFound", "networkInterface"),
    "sgr": ("security-group-rule", "InvalidSecurityGroupRuleId.NotFound", "security group rule"),
}

_PROTO_NUMBERS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def _not_found(rid):
    kind = rid.split("-", 1)[0]
    if kind not in _KINDS:
        return AwsError("InvalidID", f"The ID '{rid}' is not valid")
    _, code, noun = _KINDS[kind]
    if kind == "nat":
        return AwsError(code, f"The Nat Gateway {rid} was not found")
    if kind == "sg":
        return AwsError(code, f"The security group '{rid}' does not exist")
    return AwsError(code, f"The {noun} ID '{rid}' does not exist")


def _public(rec):
    """A copy of a record without its internal (underscore) keys."""
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def _net(cidr, param):
    try:
        return ipaddress.IPv4Network(cidr, strict=True)
    except (ValueError, TypeError):
        raise AwsError("InvalidParameterValue",
                       f"Value ({cidr}) for parameter {param} is invalid. "
                       "This is not a valid CIDR block.")


def _dry_run(params):
    if params.get("DryRun"):
        raise AwsError("DryRunOperation",
                       "Request would have succeeded, but DryRun flag is set.", 412)


def _region_short(region):
    """us-east-1 -> use1 (the prefix of AWS zone ids)."""
    parts = region.split("-")
    if len(parts) != 3:
        return region.replace("-", "")
    return parts[0] + "".join(p[0] for p in parts[1:-1]) + parts[-1]


def _match(values, candidates):
    """Whether any filter value (with * and ? wildcards) matches any candidate."""
    cands = [c for c in candidates if c is not None]
    for v in values:
        for c in cands:
            if fnmatch.fnmatchcase(str(c), v):
                return True
    return False


def _encode_token(offset):
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode_token(token):
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except Exception:
        raise AwsError("InvalidParameterValue", f"The token '{token}' is invalid.")


class Ec2Service(base.Service):
    SERVICE = "ec2"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.vpcs = {}
        self.subnets = {}
        self.igws = {}
        self.nats = {}
        self.rtbs = {}
        self.sgs = {}
        self.rules = {}      # sgr id -> rule record
        self.addresses = {}  # allocation id -> address record
        self.enis = {}
        self.tags = {}       # resource id -> {key: value}
        self.nat_tokens = {}  # (region, client token) -> nat id

    # ------------------------------------------------------------------ helpers

    def _now(self):
        return self.clock.now()

    def _dt(self, t):
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)

    def _tag_list(self, rid):
        return [{"Key": k, "Value": v} for k, v in self.tags.get(rid, {}).items()]

    def _store(self, kind):
        return {"vpc": self.vpcs, "subnet": self.subnets, "igw": self.igws, "nat": self.nats,
                "rtb": self.rtbs, "sg": self.sgs, "eipalloc": self.addresses,
                "eni": self.enis, "sgr": self.rules}.get(kind)

    def _get(self, rid, region, kind=None):
        k = rid.split("-", 1)[0] if isinstance(rid, str) else None
        if kind is not None and k != kind:
            raise _not_found_for(kind, rid)
        store = self._store(k)
        rec = store.get(rid) if store is not None else None
        if rec is None or rec["_region"] != region:
            raise _not_found(rid) if kind is None else _not_found_for(kind, rid)
        return rec

    def _apply_tag_specs(self, params, resource_type, rid):
        for spec in params.get("TagSpecifications") or []:
            rtype = spec.get("ResourceType")
            if rtype != resource_type:
                raise AwsError("InvalidParameterValue",
                               f"'{rtype}' is not a valid taggable resource type for this operation.")
            self._set_tags(rid, spec.get("Tags") or [])

    def _check_tags(self, tags):
        for t in tags:
            key = t.get("Key")
            if key is None or key == "":
                raise AwsError("InvalidParameterValue", "Tag key cannot be empty")
            if len(key) > 128 or len(t.get("Value") or "") > 256:
                raise AwsError("InvalidParameterValue",
                               f"Tag key or value exceeds the maximum length: {key}")
            if key.lower().startswith("aws:"):
                raise AwsError("InvalidParameterValue",
                               "Tag keys starting with 'aws:' are reserved for internal use")

    def _set_tags(self, rid, tags):
        self._check_tags(tags)
        current = dict(self.tags.get(rid, {}))
        for t in tags:
            current[t["Key"]] = t.get("Value") or ""
        if len(current) > MAX_TAGS:
            raise AwsError("TagLimitExceeded",
                           f"The maximum number of tags for resource '{rid}' ({MAX_TAGS}) was exceeded.")
        self.tags[rid] = current

    def _filter(self, items, filters, fields, rid_of):
        """Keep the items matching every filter. ``fields`` maps a filter name to
        a function item -> list of candidate values; tag filters are generic."""
        out = list(items)
        for f in filters or []:
            name = f.get("Name")
            values = f.get("Values") or []
            if name is None:
                raise AwsError("InvalidParameterValue", "The filter 'null' is invalid")
            if name.startswith("tag:"):
                key = name[4:]
                out = [i for i in out if key in self.tags.get(rid_of(i), {})
                       and _match(values, [self.tags[rid_of(i)][key]])]
            elif name == "tag-key":
                out = [i for i in out if _match(values, list(self.tags.get(rid_of(i), {})))]
            elif name == "tag-value":
                out = [i for i in out if _match(values, list(self.tags.get(rid_of(i), {}).values()))]
            elif name in fields:
                fn = fields[name]
                out = [i for i in out if _match(values, [str(x).lower() if isinstance(x, bool) else x
                                                         for x in fn(i)])]
            else:
                raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")
        return out

    def _paginate(self, items, params, ids_param=None):
        max_results = params.get("MaxResults")
        token = params.get("NextToken")
        if ids_param and params.get(ids_param) and max_results is not None:
            raise AwsError("InvalidParameterCombination",
                           f"The parameter {ids_param} cannot be used with the parameter maxResults")
        start = _decode_token(token) if token else 0
        if max_results is None:
            return items[start:], None
        end = start + max_results
        return items[start:end], (_encode_token(end) if end < len(items) else None)

    def _select(self, store, region, ids, ids_param_kind):
        """Records of the region, in creation order, restricted to ``ids`` (each
        must exist)."""
        if ids:
            out = []
            for rid in ids:
                out.append(self._get(rid, region, ids_param_kind))
            return out
        return [r for r in store.values() if r["_region"] == region]

    # ------------------------------------------------------------- advance time

    def tick(self):
        with self.lock:
            self._advance()

    def _advance(self):
        now = self._now()
        for vpc in self.vpcs.values():
            if vpc["State"] == "pending" and now >= vpc["_ready_at"]:
                vpc["State"] = "available"
        for nat_id, nat in list(self.nats.items()):
            if nat["State"] == "pending" and now >= nat["_ready_at"]:
                failure = self._nat_failure(nat)
                if failure:
                    nat["State"] = "failed"
                    nat["FailureCode"], nat["FailureMessage"] = failure
                    nat["_gone_at"] = now + self.clock.delay(NAT_DELETED_VISIBLE_SECONDS)
                    self._release_nat_resources(nat)
                else:
                    nat["State"] = "available"
            elif nat["State"] == "deleting" and now >= nat["_deleted_at"]:
                nat["State"] = "deleted"
                nat["DeleteTime"] = self._dt(now)
                nat["_gone_at"] = now + self.clock.delay(NAT_DELETED_VISIBLE_SECONDS)
                self._release_nat_resources(nat)
            elif nat["State"] in ("deleted", "failed") and now >= nat.get("_gone_at", now + 1):
                del self.nats[nat_id]
                self.tags.pop(nat_id, None)
        for eni_id, eni in list(self.enis.items()):
            if eni.get("_delete_at") is not None and now >= eni["_delete_at"]:
                self._remove_eni(eni_id)

    def _nat_failure(self, nat):
        if nat["ConnectivityType"] != "public":
            return None
        vpc_id = nat["VpcId"]
        if not any(a["VpcId"] == vpc_id and a["State"] == "attached"
                   for igw in self.igws.values() for a in igw["Attachments"]):
            return ("Gateway.NotAttached", f"Network {vpc_id} has no Internet gateway attached")
        alloc = nat["_allocation_id"]
        addr = self.addresses.get(alloc)
        if addr is None:
            return ("InvalidAllocationID.NotFound", f"Elastic IP address [{alloc}] could not be found")
        if addr.get("_nat") not in (None, nat["NatGatewayId"]):
            return ("Resource.AlreadyAssociated",
                    f"Elastic IP address [{alloc}] is already associated")
        return None

    def _release_nat_resources(self, nat):
        addr = self.addresses.get(nat.get("_allocation_id"))
        if addr is not None and addr.get("_nat") == nat["NatGatewayId"]:
            self._disassociate_address(addr)
        eni_id = nat.get("_eni")
        if eni_id in self.enis:
            self._remove_eni(eni_id)
        nat["_eni"] = None

    # ---------------------------------------------------------------- zones

    def _zones(self, region):
        short = _region_short(region)
        return [{"ZoneName": f"{region}{s}", "ZoneId": f"{short}-az{i + 1}", "State": "available",
                 "OptInStatus": "opt-in-not-required", "Messages": [], "RegionName": region,
                 "GroupName": region, "NetworkBorderGroup": region, "ZoneType": "availability-zone"}
                for i, s in enumerate("abc")]

    def DescribeAvailabilityZones(self, req, params):
        zones = self._zones(req.region)
        names = params.get("ZoneNames") or []
        ids = params.get("ZoneIds") or []
        for n in names:
            if n not in [z["ZoneName"] for z in zones]:
                raise AwsError("InvalidParameterValue", f"Invalid availability zone: [{n}]")
        for n in ids:
            if n not in [z["ZoneId"] for z in zones]:
                raise AwsError("InvalidParameterValue", f"Invalid availability zone id: [{n}]")
        if names:
            zones = [z for z in zones if z["ZoneName"] in names]
        if ids:
            zones = [z for z in zones if z["ZoneId"] in ids]
        fields = {"zone-name": lambda z: [z["ZoneName"]], "zone-id": lambda z: [z["ZoneId"]],
                  "region-name": lambda z: [z["RegionName"]], "state": lambda z: [z["State"]],
                  "zone-type": lambda z: [z["ZoneType"]], "group-name": lambda z: [z["GroupName"]],
                  "opt-in-status": lambda z: [z["OptInStatus"]]}
        zones = self._filter(zones, params.get("Filters"), fields, lambda z: z["ZoneName"])
        return {"AvailabilityZones": zones}

    # ---------------------------------------------------------------- tags

    def CreateTags(self, req, params):
        _dry_run(params)
        with self.lock:
            self._check_tags(params["Tags"])
            for rid in params["Resources"]:
                self._get(rid, req.region)
            for rid in params["Resources"]:
                self._set_tags(rid, params["Tags"])
        return {}

    def DeleteTags(self, req, params):
        _dry_run(params)
        with self.lock:
            for rid in params["Resources"]:
                self._get(rid, req.region)
            for rid in params["Resources"]:
                current = self.tags.get(rid, {})
                if params.get("Tags") is None:
                    current.clear()
                    continue
                for t in params["Tags"]:
                    key = t.get("Key")
                    if key in current and (t.get("Value") is None or t["Value"] == current[key]):
                        del current[key]
        return {}

    def DescribeTags(self, req, params):
        with self.lock:
            self._advance()
            max_results = params.get("MaxResults")
            if max_results is not None and not 5 <= max_results <= 1000:
                raise AwsError("InvalidParameterValue",
                               f"Value ( {max_results} ) for parameter maxResults is invalid. "
                               "Expecting a value between 5 and 1000.")
            rows = []
            for rid, tags in self.tags.items():
                kind = rid.split("-", 1)[0]
                store = self._store(kind)
                rec = store.get(rid) if store is not None else None
                if rec is None or rec["_region"] != req.region:
                    continue
                for k, v in tags.items():
                    rows.append({"Key": k, "Value": v, "ResourceId": rid,
                                 "ResourceType": _KINDS[kind][0]})
            for f in params.get("Filters") or []:
                name, values = f.get("Name"), f.get("Values") or []
                field = {"key": "Key", "value": "Value", "resource-id": "ResourceId",
                         "resource-type": "ResourceType"}.get(name)
                if name and name.startswith("tag:"):
                    rows = [r for r in rows if r["Key"] == name[4:] and _match(values, [r["Value"]])]
                elif field:
                    rows = [r for r in rows if _match(values, [r[field]])]
                else:
                    raise AwsError("InvalidParameterValue", f"The filter '{name}' is invalid")
            page, token = self._paginate(rows, params)
        out = {"Tags": page}
        if token:
            out["NextToken"] = token
        return out

    # ---------------------------------------------------------------- VPCs

    def CreateVpc(self, req, params):
        _dry_run(params)
        cidr = params.get("CidrBlock")
        if not cidr:
            raise AwsError("MissingParameter",
                           "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.")
        net = _net(cidr, "cidrBlock")
        if not 16 <= net.prefixlen <= 28:
            raise AwsError("InvalidVpc.Range", f"The CIDR '{cidr}' is invalid.")
        with self.lock:
            now = self._now()
            vpc_id = base.hex_id("vpc")
            vpc = {"_region": req.region, "_ready_at": now + self.clock.delay(VPC_PENDING_SECONDS),
                   "_dns_support": True, "_dns_hostnames": False, "_nau_metrics": False,
                   "VpcId": vpc_id, "CidrBlock": str(net), "State": "pending",
                   "DhcpOptionsId": "dopt-" + base.rand_suffix(17, "0123456789abcdef"),
                   "OwnerId": base.ACCOUNT_ID,
                   "InstanceTenancy": params.get("InstanceTenancy") or "default",
                   "CidrBlockAssociationSet": [{
                       "AssociationId": base.hex_id("vpc-cidr-assoc"), "CidrBlock": str(net),
                       "CidrBlockState": {"State": "associated"}}],
                   "IsDefault": False}
            self._apply_tag_specs(params, "vpc", vpc_id)
            self.vpcs[vpc_id] = vpc
            # The main route table and the default security group come with it.
            rtb = self._new_route_table(req.region, vpc)
            assoc_id = base.hex_id("rtbassoc")
            rtb["_assocs"].append({"Main": True, "RouteTableAssociationId": assoc_id,
                                   "RouteTableId": rtb["RouteTableId"],
                                   "AssociationState": {"State": "associated"}})
            sg = self._new_security_group(req.region, vpc_id, "default",
                                          "default VPC security group")
            self._add_rule(sg, egress=False, proto="-1", lo=-1, hi=-1,
                           target=("ref", sg["GroupId"]), desc=None)
            vpc["_main_rtb"] = rtb["RouteTableId"]
            vpc["_default_sg"] = sg["GroupId"]
            return {"Vpc": self._render_vpc(vpc)}

    def _render_vpc(self, vpc):
        out = _public(vpc)
        out["Tags"] = self._tag_list(vpc["VpcId"])
        return out

    def DescribeVpcs(self, req, params):
        with self.lock:
            self._advance()
            items = self._select(self.vpcs, req.region, params.get("VpcIds"), "vpc")
            fields = {"vpc-id": lambda v: [v["VpcId"]], "cidr": lambda v: [v["CidrBlock"]],
                      "cidr-block-association.cidr-block": lambda v: [v["CidrBlock"]],
                      "cidr-block-association.state": lambda v: ["associated"],
                      "state": lambda v: [v["State"]], "is-default": lambda v: [v["IsDefault"]],
                      "owner-id": lambda v: [v["OwnerId"]],
                      "dhcp-options-id": lambda v: [v["DhcpOptionsId"]]}
            items = self._filter(items, params.get("Filters"), fields, lambda v: v["VpcId"])
            page, token = self._paginate(items, params, "VpcIds")
            out = {"Vpcs": [self._render_vpc(v) for v in page]}
        if token:
            out["NextToken"] = token
        return out

    def DescribeVpcAttribute(self, req, params):
        with self.lock:
            vpc = self._get(params["VpcId"], req.region, "vpc")
            attr = params["Attribute"]
            out = {"VpcId": vpc["VpcId"]}
            key = {"enableDnsSupport": ("EnableDnsSupport", "_dns_support"),
                   "enableDnsHostnames": ("EnableDnsHostnames", "_dns_hostnames"),
                   "enableNetworkAddressUsageMetrics": ("EnableNetworkAddressUsageMetrics",
                                                        "_nau_metrics")}[attr]
            out[key[0]] = {"Value": vpc[key[1]]}
            return out

    def ModifyVpcAttribute(self, req, params):
        given = [k for k in ("EnableDnsSupport", "EnableDnsHostnames",
                             "EnableNetworkAddressUsageMetrics") if params.get(k) is not None]
        if not given:
            raise AwsError("MissingParameter", "The request must contain exactly one attribute.")
        if len(given) > 1:
            raise AwsError("InvalidParameterCombination",
                           "Fields for multiple attribute types specified: "
                           + ", ".join(g[0].lower() + g[1:] for g in given))
        with self.lock:
            vpc = self._get(params["VpcId"], req.region, "vpc")
            name = given[0]
            value = params[name].get("Value")
            if value is None:
                raise AwsError("MissingParameter",
                               f"The request must contain the parameter {name[0].lower() + name[1:]}.value")
            if name == "EnableDnsHostnames" and value and not vpc["_dns_support"]:
                raise AwsError("InvalidParameterValue",
                               "Cannot enable DNS hostnames when DNS support is disabled")
            if name == "EnableDnsSupport" and not value and vpc["_dns_hostnames"]:
                raise AwsError("InvalidParameterValue",
                               "Cannot disable DNS support when DNS hostnames are enabled")
            vpc[{"EnableDnsSupport": "_dns_support", "EnableDnsHostnames": "_dns_hostnames",
                 "EnableNetworkAddressUsageMetrics": "_nau_metrics"}[name]] = bool(value)
        return {}

    def DeleteVpc(self, req, params):
        _dry_run(params)
        with self.lock:
            self._advance()
            vpc = self._get(params["VpcId"], req.region, "vpc")
            vid = vpc["VpcId"]
            deps = (any(s["VpcId"] == vid for s in self.subnets.values())
                    or any(a["VpcId"] == vid for g in self.igws.values() for a in g["Attachments"])
                    or any(g["VpcId"] == vid and g["GroupId"] != vpc["_default_sg"]
                           for g in self.sgs.values())
                    or any(r["VpcId"] == vid and r["RouteTableId"] != vpc["_main_rtb"]
                           for r in self.rtbs.values())
                    or any(e["VpcId"] == vid for e in self.enis.values())
                    or any(n["VpcId"] == vid and n["State"] not in ("deleted", "failed")
                           for n in self.nats.values()))
            if deps:
                raise AwsError("DependencyViolation",
                               f"The vpc '{vid}' has dependencies and cannot be deleted.")
            for rid in (vpc["_main_rtb"], vpc["_default_sg"]):
                self.tags.pop(rid, None)
            self.rtbs.pop(vpc["_main_rtb"], None)
            sg = self.sgs.pop(vpc["_default_sg"], None)
            for rule_id in (sg or {}).get("_rules", []):
                self.rules.pop(rule_id, None)
                self.tags.pop(rule_id, None)
            del self.vpcs[vid]
            self.tags.pop(vid, None)
        return {}

    # ---------------------------------------------------------------- subnets

    def CreateSubnet(self, req, params):
        _dry_run(params)
        with self.lock:
            vpc = self._get(params["VpcId"], req.region, "vpc")
            cidr = params.get("CidrBlock")
            if not cidr:
                raise AwsError("MissingParameter", "The request must contain the parameter cidrBlock")
            net = _net(cidr, "cidrBlock")
            vnet = ipaddress.IPv4Network(vpc["CidrBlock"])
            if not net.subnet_of(vnet) or not 16 <= net.prefixlen <= 28:
                raise AwsError("InvalidSubnet.Range", f"The CIDR '{cidr}' is invalid.")
            for s in self.subnets.values():
                if s["VpcId"] == vpc["VpcId"] and ipaddress.IPv4Network(s["CidrBlock"]).overlaps(net):
                    raise AwsError("InvalidSubnet.Conflict",
                                   f"The CIDR '{cidr}' conflicts with another subnet")
            zones = self._zones(req.region)
            zone = None
            if params.get("AvailabilityZone"):
                zone = next((z for z in zones if z["ZoneName"] == params["AvailabilityZone"]), None)
                if zone is None:
                    raise AwsError("InvalidParameterValue",
                                   f"Value ({params['AvailabilityZone']}) for parameter availabilityZone "
                                   "is invalid. Subnets can currently only be created in the following "
                                   "availability zones: " + ", ".join(z["ZoneName"] for z in zones) + ".")
            if params.get("AvailabilityZoneId"):
                zid = next((z for z in zones if z["ZoneId"] == params["AvailabilityZoneId"]), None)
                if zid is None or (zone is not None and zid is not zone):
                    raise AwsError("InvalidParameterValue",
                                   f"Value ({params['AvailabilityZoneId']}) for parameter "
                                   "availabilityZoneId is invalid.")
                zone = zid
            if zone is None:
                zone = zones[len([s for s in self.subnets.values() if s["VpcId"] == vpc["VpcId"]])
                             % len(zones)]
            sid = base.hex_id("subnet")
            sub = {"_region": req.region, "_net": net,
                   "AvailabilityZone": zone["ZoneName"], "AvailabilityZoneId": zone["ZoneId"],
                   "CidrBlock": str(net), "DefaultForAz": False, "MapPublicIpOnLaunch": False,
                   "MapCustomerOwnedIpOnLaunch": False, "State": "available", "SubnetId": sid,
                   "VpcId": vpc["VpcId"], "OwnerId": base.ACCOUNT_ID,
                   "AssignIpv6AddressOnCreation": False, "Ipv6CidrBlockAssociationSet": [],
                   "SubnetArn": base.arn("ec2", req.region, f"subnet/{sid}"),
                   "EnableDns64": False, "Ipv6Native": False,
                   "PrivateDnsNameOptionsOnLaunch": {"HostnameType": "ip-name",
                                                     "EnableResourceNameDnsARecord": False,
                                                     "EnableResourceNameDnsAAAARecord": False}}
            self._apply_tag_specs(params, "subnet", sid)
            self.subnets[sid] = sub
            return {"Subnet": self._render_subnet(sub)}

    def _render_subnet(self, sub):
        out = _public(sub)
        used = sum(1 for e in self.enis.values() if e["SubnetId"] == sub["SubnetId"])
        out["AvailableIpAddressCount"] = sub["_net"].num_addresses - 5 - used
        out["Tags"] = self._tag_list(sub["SubnetId"])
        return out

    def DescribeSubnets(self, req, params):
        with self.lock:
            self._advance()
            items = self._select(self.subnets, req.region, params.get("SubnetIds"), "subnet")
            fields = {"subnet-id": lambda s: [s["SubnetId"]], "vpc-id": lambda s: [s["VpcId"]],
                      "availability-zone": lambda s: [s["AvailabilityZone"]],
                      "availability-zone-id": lambda s: [s["AvailabilityZoneId"]],
                      "availabilityZone": lambda s: [s["AvailabilityZone"]],
                      "cidr-block": lambda s: [s["CidrBlock"]], "cidr": lambda s: [s["CidrBlock"]],
                      "cidrBlock": lambda s: [s["CidrBlock"]], "state": lambda s: [s["State"]],
                      "default-for-az": lambda s: [s["DefaultForAz"]],
                      "map-public-ip-on-launch": lambda s: [s["MapPublicIpOnLaunch"]],
                      "owner-id": lambda s: [s["OwnerId"]], "subnet-arn": lambda s: [s["SubnetArn"]]}
            items = self._filter(items, params.get("Filters"), fields, lambda s: s["SubnetId"])
            page, token = self._paginate(items, params, "SubnetIds")
            out = {"Subnets": [self._render_subnet(s) for s in page]}
        if token:
            out["NextToken"] = token
        return out

    def ModifySubnetAttribute(self, req, params):
        given = [k for k in ("AssignIpv6AddressOnCreation", "MapPublicIpOnLaunch",
                             "MapCustomerOwnedIpOnLaunch", "EnableDns64",
                             "PrivateDnsHostnameTypeOnLaunch",
                             "EnableResourceNameDnsARecordOnLaunch",
                             "EnableResourceNameDnsAAAARecordOnLaunch", "EnableLniAtDeviceIndex",
                             "DisableLniAtDeviceIndex", "CustomerOwnedIpv4Pool")
                 if params.get(k) is not None]
        if len(given) != 1:
            raise AwsError("InvalidParameterCombination",
                           "You can only modify one attribute at a time." if given else
                           "The request must contain exactly one attribute.")
        with self.lock:
            sub = self._get(params["SubnetId"], req.region, "subnet")
            name = given[0]
            if name == "MapPublicIpOnLaunch":
                sub["MapPublicIpOnLaunch"] = bool(params[name].get("Value"))
            elif name == "AssignIpv6AddressOnCreation":
                if params[name].get("Value"):
                    raise AwsError("InvalidParameterValue",
                                   f"Invalid value 'true' for assignIpv6AddressOnCreation. "
                                   f"Cannot set assignIpv6AddressOnCreation to true unless the subnet "
                                   f"({sub['SubnetId']}) has an IPv6 CIDR block associated with it.")
            elif name == "EnableDns64":
                sub["EnableDns64"] = bool(params[name].get("Value"))
            elif name == "PrivateDnsHostnameTypeOnLaunch":
                sub["PrivateDnsNameOptionsOnLaunch"]["HostnameType"] = params[name]
            elif name == "EnableResourceNameDnsARecordOnLaunch":
                sub["PrivateDnsNameOptionsOnLaunch"]["EnableResourceNameDnsARecord"] = \
                    bool(params[name].get("Value"))
            elif name == "EnableResourceNameDnsAAAARecordOnLaunch":
                sub["PrivateDnsNameOptionsOnLaunch"]["EnableResourceNameDnsAAAARecord"] = \
                    bool(params[name].get("Value"))
            else:
                raise AwsError("InvalidParameterValue",
                               f"The attribute {name} is not supported for this subnet.")
        return {}

    def DeleteSubnet(self, req, params):
        _dry_run(params)
        with self.lock:
            self._advance()
            sub = self._get(params["SubnetId"], req.region, "subnet")
            sid = sub["SubnetId"]
            if any(e["SubnetId"] == sid for e in self.enis.values()) or any(
                    n["SubnetId"] == sid and n["State"] not in ("deleted", "failed")
                    for n in self.nats.values()):
                raise AwsError("DependencyViolation",
                               f"The subnet '{sid}' has dependencies and cannot be deleted.")
            for rtb in self.rtbs.values():
                rtb["_assocs"] = [a for a in rtb["_assocs"] if a.get("SubnetId") != sid]
            del self.subnets[sid]
            self.tags.pop(sid, None)
        return {}

    # --------------------------------------------------------- internet gateways

    def CreateInternetGateway(self, req, params):
        _dry_run(params)
        with self.lock:
            gid = base.hex_id("igw")
            self._apply_tag_specs(params, "internet-gateway", gid)
            igw = {"_region": req.region, "Attachments": [], "InternetGatewayId": gid,
                   "OwnerId": base.ACCOUNT_ID}
            self.igws[gid] = igw
            return {"InternetGateway": self._render_igw(igw)}

    def _render_igw(self, igw):
        out = _public(igw)
        out["Attachments"] = [dict(a) for a in igw["Attachments"]]
        out["Tags"] = self._tag_list(igw["InternetGatewayId"])
        return out

    def DescribeInternetGateways(self, req, params):
        with self.lock:
            items = self._select(self.igws, req.region, params.get("InternetGatewayIds"), "igw")
            fields = {"internet-gateway-id": lambda g: [g["InternetGatewayId"]],
                      "attachment.vpc-id": lambda g: [a["VpcId"] for a in g["Attachments"]],
                      "attachment.state": lambda g: [
                          "available" if a["State"] == "attached" else a["State"]
                          for a in g["Attachments"]],
                      "owner-id": lambda g: [g["OwnerId"]]}
            items = self._filter(items, params.get("Filters"), fields,
                                 lambda g: g["InternetGatewayId"])
            page, token = self._paginate(items, params, "InternetGatewayIds")
            out = {"InternetGateways": [self._render_igw(g) for g in page]}
        if token:
            out["NextToken"] = token
        return out

    def AttachInternetGateway(self, req, params):
        _dry_run(params)
        with self.lock:
            igw = self._get(params["InternetGatewayId"], req.region, "igw")
            vpc = self._get(params["VpcId"], req.region, "vpc")
            if igw["Attachments"]:
                raise AwsError("Resource.AlreadyAssociated",
                               f"resource {igw['InternetGatewayId']} is already attached to network "
                               f"{igw['Attachments'][0]['VpcId']}")
            for other in self.igws.values():
                if any(a["VpcId"] == vpc["VpcId"] for a in other["Attachments"]):
                    raise AwsError("Resource.AlreadyAssociated",
                                   f"Network {vpc['VpcId']} already has an internet gateway attached")
            igw["Attachments"] = [{"State": "attached", "VpcId": vpc["VpcId"]}]
        return {}

    def DetachInternetGateway(self, req, params):
        _dry_run(params)
        with self.lock:
            self._advance()
            igw = self._get(params["InternetGatewayId"], req.region, "igw")
            vpc_id = params["VpcId"]
            if not any(a["VpcId"] == vpc_id for a in igw["Attachments"]):
                self._get(vpc_id, req.region, "vpc")
                raise AwsError("Gateway.NotAttached",
                               f"resource {igw['InternetGatewayId']} is not attached to network {vpc_id}")
            mapped = any(n["VpcId"] == vpc_id and n["ConnectivityType"] == "public"
                         and n["State"] in ("pending", "available", "deleting")
                         for n in self.nats.values()) or any(
                e["VpcId"] == vpc_id and e.get("Association") for e in self.enis.values())
            if mapped:
                raise AwsError("DependencyViolation",
                               f"Network {vpc_id} has some mapped public address(es). Please unmap "
                               "those public address(es) before detaching the gateway.")
            igw["Attachments"] = []
        return {}

    def DeleteInternetGateway(self, req, params):
        _dry_run(params)
        with self.lock:
            igw = self._get(params["InternetGatewayId"], req.region, "igw")
            if igw["Attachments"]:
                raise AwsError("DependencyViolation",
                               f"The internetGateway '{igw['InternetGatewayId']}' has dependencies "
                               "and cannot be deleted.")
            del self.igws[igw["InternetGatewayId"]]
            self.tags.pop(igw["InternetGatewayId"], None)
        return {}

    # ---------------------------------------------------------------- Elastic IPs

    def _new_public_ip(self):
        used = {a["PublicIp"] for a in self.addresses.values()} | {
            e["Association"]["PublicIp"] for e in self.enis.values() if e.get("Association")}
        for _ in range(100000):
            ip = "3.%d.%d.%d" % (base._rand.randint(80, 239), base._rand.randint(0, 255),
                                  base._rand.randint(1, 254))
            if ip not in used:
                return ip
        raise AwsError("AddressLimitExceeded", "The maximum number of addresses has been reached.")

    def AllocateAddress(self, req, params):
        _dry_run(params)
        if params.get("Domain") not in (None, "vpc"):
            raise AwsError("InvalidParameterValue", "EC2-Classic addresses are no longer supported.")
        if params.get("Address"):
            raise AwsError("InvalidParameterValue",
                           f"The address {params['Address']} is not available for allocation.")
        with self.lock:
            if len([a for a in self.addresses.values() if a["_region"] == req.region]) >= 5:
                raise AwsError("AddressLimitExceeded",
                               "The maximum number of addresses has been reached.")
            alloc = base.hex_id("eipalloc")
            self._apply_tag_specs(params, "elastic-ip", alloc)
            addr = {"_region": req.region, "_nat": None, "PublicIp": self._new_public_ip(),
                    "AllocationId": alloc, "Domain": "vpc", "PublicIpv4Pool": "amazon",
                    "NetworkBorderGroup": req.region}
            self.addresses[alloc] = addr
            return {"PublicIp": addr["PublicIp"], "AllocationId": alloc, "PublicIpv4Pool": "amazon",
                    "NetworkBorderGroup": req.region, "Domain": "vpc"}

    def _render_address(self, addr):
        out = _public(addr)
        out["Tags"] = self._tag_list(addr["AllocationId"])
        return out

    def DescribeAddresses(self, req, params):
        with self.lock:
            self._advance()
            items = self._select(self.addresses, req.region, params.get("AllocationIds"), "eipalloc")
            for ip in params.get("PublicIps") or []:
                if not any(a["PublicIp"] == ip for a in items):
                    raise AwsError("InvalidAddress.NotFound", f"Address '{ip}' not found.")
            if params.get("PublicIps"):
                items = [a for a in items if a["PublicIp"] in params["PublicIps"]]
            fields = {"allocation-id": lambda a: [a["AllocationId"]],
                      "association-id": lambda a: [a.get("AssociationId")],
                      "domain": lambda a: [a["Domain"]], "public-ip": lambda a: [a["PublicIp"]],
                      "network-interface-id": lambda a: [a.get("NetworkInterfaceId")],
                      "network-interface-owner-id": lambda a: [a.get("NetworkInterfaceOwnerId")],
                      "private-ip-address": lambda a: [a.get("PrivateIpAddress")],
                      "network-border-group": lambda a: [a["NetworkBorderGroup"]]}
            items = self._filter(items, params.get("Filters"), fields, lambda a: a["AllocationId"])
            return {"Addresses": [self._render_address(a) for a in items]}

    def ReleaseAddress(self, req, params):
        _dry_run(params)
        with self.lock:
            self._advance()
            if params.get("AllocationId"):
                addr = self._get(params["AllocationId"], req.region, "eipalloc")
            elif params.get("PublicIp"):
                addr = next((a for a in self.addresses.values()
                             if a["PublicIp"] == params["PublicIp"] and a["_region"] == req.region),
                            None)
                if addr is None:
                    raise AwsError("InvalidAddress.NotFound",
                                   f"Address '{params['PublicIp']}' not found.")
            else:
                raise AwsError("MissingParameter",
                               "Either public IP or allocation id must be specified")
            if addr.get("AssociationId") or addr.get("_nat"):
                raise AwsError("InvalidIPAddress.InUse", f"Address {addr['PublicIp']} is in use.")
            del self.addresses[addr["AllocationId"]]
            self.tags.pop(addr["AllocationId"], None)
        return {}

    def _associate_address(self, addr, eni, nat_id=None):
        addr["AssociationId"] = base.hex_id("eipassoc")
        addr["NetworkInterfaceId"] = eni["NetworkInterfaceId"]
        addr["NetworkInterfaceOwnerId"] = base.ACCOUNT_ID
        addr["PrivateIpAddress"] = eni["PrivateIpAddress"]
        addr["_nat"] = nat_id
        eni["Association"] = {"AllocationId": addr["AllocationId"],
                              "AssociationId": addr["AssociationId"],
                              "IpOwnerId": base.ACCOUNT_ID, "PublicIp": addr["PublicIp"],
                              "PublicDnsName": self._public_dns(addr["PublicIp"], eni["_region"])}

    def _disassociate_address(self, addr):
        for k in ("AssociationId", "NetworkInterfaceId", "NetworkInterfaceOwnerId",
                  "PrivateIpAddress"):
            addr.pop(k, None)
        addr["_nat"] = None

    def _public_dns(self, ip, region):
        suffix = "compute-1.amazonaws.com" if region == "us-east-1" else f"{region}.compute.amazonaws.com"
        return "ec2-" + ip.replace(".", "-") + "." + suffix

    # ---------------------------------------------------------------- NAT gateways

    def CreateNatGateway(self, req, params):
        _dry_run(params)
        with self.lock:
            token = params.get("ClientToken")
            if token and (req.region, token) in self.nat_tokens:
                nat = self.nats.get(self.nat_tokens[(req.region, token)])
                if nat is not None:
                    if nat["SubnetId"] != params["SubnetId"] or \
                            nat["_allocation_id"] != params.get("AllocationId"):
                        raise AwsError("IdempotentParameterMismatch",
                                       "The client token you have provided is associated with a "
                                       "resource that is already deleted or has different parameters.")
                    return {"ClientToken": token, "NatGateway": self._render_nat(nat)}
            sub = self._get(params["SubnetId"], req.region, "subnet")
            ctype = params.get("ConnectivityType") or "public"
            alloc = params.get("AllocationId")
            if ctype == "public" and not alloc:
                raise AwsError("MissingParameter",
                               "The request must contain the parameter AllocationId")
            if ctype == "private" and alloc:
                raise AwsError("InvalidParameterCombination",
                               "AllocationId cannot be specified for a private NAT gateway")
            addr = self._get(alloc, req.region, "eipalloc") if alloc else None
            nid = base.hex_id("nat")
            self._apply_tag_specs(params, "natgateway", nid)
            now = self._now()
            eni = self._create_eni(sub, [], f"Interface for NAT Gateway {nid}", False,
                                   interface_type="natGateway")
            nat = {"_region": req.region, "_ready_at": now + self.clock.delay(NAT_PROVISION_SECONDS),
                   "_allocation_id": alloc, "_eni": eni["NetworkInterfaceId"],
                   "CreateTime": self._dt(now), "NatGatewayId": nid, "State": "pending",
                   "SubnetId": sub["SubnetId"], "VpcId": sub["VpcId"], "ConnectivityType": ctype}
            self.nats[nid] = nat
            if addr is not None and not addr.get("AssociationId"):
                self._associate_address(addr, eni, nat_id=nid)
            if token:
                self.nat_tokens[(req.region, token)] = nid
            out = {"NatGateway": self._render_nat(nat)}
            if token:
                out["ClientToken"] = token
            return out

    def _render_nat(self, nat):
        out = _public(nat)
        addrs = []
        eni = self.enis.get(nat.get("_eni"))
        addr = self.addresses.get(nat.get("_allocation_id"))
        if nat["ConnectivityType"] == "public" and nat.get("_allocation_id"):
            entry = {"AllocationId": nat["_allocation_id"]}
            if addr is not None and addr.get("_nat") == nat["NatGatewayId"]:
                entry["PublicIp"] = addr["PublicIp"]
            if eni is not None:
                entry["NetworkInterfaceId"] = eni["NetworkInterfaceId"]
                entry["PrivateIp"] = eni["PrivateIpAddress"]
            addrs.append(entry)
        elif eni is not None:
            addrs.append({"NetworkInterfaceId": eni["NetworkInterfaceId"],
                          "PrivateIp": eni["PrivateIpAddress"]})
        out["NatGatewayAddresses"] = addrs
        out["Tags"] = self._tag_list(nat["NatGatewayId"])
        return out

    def DescribeNatGateways(self, req, params):
        with self.lock:
            self._advance()
            items = self._select(self.nats, req.region, params.get("NatGatewayIds"), "nat")
            fields = {"nat-gateway-id": lambda n: [n["NatGatewayId"]],
                      "state": lambda n: [n["State"]], "subnet-id": lambda n: [n["SubnetId"]],
                      "vpc-id": lambda n: [n["VpcId"]]}
            items = self._filter(items, params.get("Filter"), fields, lambda n: n["NatGatewayId"])
            page, token = self._paginate(items, params, "NatGatewayIds")
            out = {"NatGateways": [self._render_nat(n) for n in page]}
        if token:
            out["NextToken"] = token
        return out

    def DeleteNatGateway(self, req, params):
        _dry_run(params)
        with self.lock:
            self._advance()
            nat = self._get(params["NatGatewayId"], req.region, "nat")
            if nat["State"] in ("pending", "available"):
                nat["State"] = "deleting"
                nat["_deleted_at"] = self._now() + self.clock.delay(NAT_DELETE_SECONDS)
            return {"NatGatewayId": nat["NatGatewayId"]}

    # ---------------------------------------------------------------- route tables

    def _new_route_table(self, region, vpc):
        rid = base.hex_id("rtb")
        rtb = {"_region": region, "_assocs": [], "_routes": [
            {"DestinationCidrBlock": vpc["CidrBlock"], "GatewayId": "local",
             "Origin": "CreateRouteTable", "State": "active"}],
            "PropagatingVgws": [], "RouteTableId": rid, "VpcId": vpc["VpcId"],
            "OwnerId": base.ACCOUNT_ID}
        self.rtbs[rid] = rtb
        return rtb

    def _route_state(self, rtb, route):
        gw = route.get("GatewayId")
        if gw and gw.startswith("igw-"):
            igw = self.igws.get(gw)
            ok = igw is not None and any(a["VpcId"] == rtb["VpcId"] for a in igw["Attachments"])
            return "active" if ok else "blackhole"
        if route.get("NatGatewayId"):
            nat = self.nats.get(route["NatGatewayId"])
            return "active" if nat is not None and nat["State"] in ("pending", "available") \
                else "blackhole"
        if route.get("NetworkInterfaceId"):
            return "active" if route["NetworkInterfaceId"] in self.enis else "blackhole"
        return "active"

    def _render_rtb(self, rtb):
        out = _public(rtb)
        out["Associations"] = [dict(a) for a in rtb["_assocs"]]
        out["Routes"] = [dict(r, State=self._route_state(rtb, r)) for r in rtb["_routes"]]
        out["Tags"] = self._tag_list(rtb["RouteTableId"])
        return out

    def CreateRouteTable(self, req, params):
        _dry_run(params)
        with self.lock:
            vpc = self._get(params["VpcId"], req.region, "vpc")
            rtb = self._new_route_table(req.region, vpc)
            try:
                self._apply_tag_specs(params, "route-table", rtb["RouteTableId"])
            except AwsError:
                del self.rtbs[rtb["RouteTableId"]]
                raise
            return {"RouteTable": self._render_rtb(rtb)}

    def DescribeRouteTables(self, req, params):
        with self.lock:
            self._advance()
            items = self._select(self.rtbs, req.region, params.get("RouteTableIds"), "rtb")
            fields = {
                "route-table-id": lambda r: [r["RouteTableId"]], "vpc-id": lambda r: [r["VpcId"]],
                "owner-id": lambda r: [r["OwnerId"]],
                "association.route-table-association-id":
                    lambda r: [a["RouteTableAssociationId"] for a in r["_assocs"]],
                "association.route-table-id": lambda r: [r["RouteTableId"]] if r["_assocs"] else [],
                "association.subnet-id": lambda r: [a.get("SubnetId") for a in r["_assocs"]],
                "association.gateway-id": lambda r: [a.get("GatewayId") for a in r["_assocs"]],
                "association.main": lambda r: [a["Main"] for a in r["_assocs"]] or [False],
                "route.destination-cidr-block":
                    lambda r: [x.get("DestinationCidrBlock") for x in r["_routes"]],
                "route.gateway-id": lambda r: [x.get("GatewayId") for x in r["_routes"]],
                "route.nat-gateway-id": lambda r: [x.get("NatGatewayId") for x in r["_routes"]],
                "route.origin": lambda r: [x["Origin"] for x in r["_routes"]],
                "route.state": lambda r: [self._route_state(r, x) for x in r["_routes"]]}
            items = self._filter(items, params.get("Filters"), fields, lambda r: r["RouteTableId"])
            page, token = self._paginate(items, params, "RouteTableIds")
            out = {"RouteTables": [self._render_rtb(r) for r in page]}
        if token:
            out["NextToken"] = token
        return out

    def _route_target(self, req, rtb, params):
        targets = {k: params[k] for k in ("GatewayId", "NatGatewayId", "NetworkInterfaceId",
                                          "InstanceId", "VpcPeeringConnectionId",
                                          "TransitGatewayId", "EgressOnlyInternetGatewayId",
                                          "LocalGatewayId", "CarrierGatewayId", "VpcEndpointId",
                                          "CoreNetworkArn") if params.get(k)}
        if len(targets) != 1:
            raise AwsError("InvalidParameterCombination" if targets else "MissingParameter",
                           "The request must contain exactly one of gatewayId, natGatewayId, "
                           "networkInterfaceId, vpcPeeringConnectionId or instanceId")
        key, value = next(iter(targets.items()))
        if key == "GatewayId":
            if not value.startswith("igw-"):
                raise AwsError("InvalidGatewayID.NotFound", f"The gateway ID '{value}' does not exist")
            igw = self.igws.get(value)
            if igw is None or igw["_region"] != req.region:
                raise AwsError("InvalidGatewayID.NotFound", f"The gateway ID '{value}' does not exist")
            if not any(a["VpcId"] == rtb["VpcId"] for a in igw["Attachments"]):
                raise AwsError("InvalidParameterValue",
                               f"route table {rtb['RouteTableId']} and network gateway {value} "
                               "belong to different networks")
        elif key == "NatGatewayId":
            nat = self.nats.get(value)
            if nat is None or nat["_region"] != req.region or nat["State"] in ("deleted", "failed"):
                raise AwsError("InvalidNatGatewayID.NotFound",
                               f"The natGateway ID '{value}' does not exist")
            if nat["VpcId"] != rtb["VpcId"]:
                raise AwsError("InvalidParameterValue",
                               f"route table {rtb['RouteTableId']} and NAT gateway {value} "
                               "belong to different networks")
        elif key == "NetworkInterfaceId":
            eni = self._get(value, req.region, "eni")
            if eni["VpcId"] != rtb["VpcId"]:
                raise AwsError("InvalidParameterValue",
                               f"route table {rtb['RouteTableId']} and interface {value} "
                               "belong to different networks")
        else:
            raise AwsError("InvalidParameterValue", f"Route targets of type {key} are not supported")
        return key, value

    def _destination(self, params):
        dest = params.get("DestinationCidrBlock")
        if not dest:
            raise AwsError("MissingParameter",
                           "The request must contain the parameter destinationCidrBlock")
        return str(_net(dest, "destinationCidrBlock"))

    def CreateRoute(self, req, params):
        _dry_run(params)
        with self.lock:
            rtb = self._get(params["RouteTableId"], req.region, "rtb")
            dest = self._destination(params)
            key, value = self._route_target(req, rtb, params)
            if any(r.get("DestinationCidrBlock") == dest for r in rtb["_routes"]):
                raise AwsError("RouteAlreadyExists",
                               f"The route identified by {dest} already exists.")
            rtb["_routes"].append({"DestinationCidrBlock": dest, key: value,
                                   "Origin": "CreateRoute", "State": "active"})
        return {"Return": True}

    def ReplaceRoute(self, req, params):
        _dry_run(params)
        with self.lock:
            rtb = self._get(params["RouteTableId"], req.region, "rtb")
            dest = self._destination(params)
            route = next((r for r in rtb["_routes"] if r.get("DestinationCidrBlock") == dest), None)
            if route is None:
                raise AwsError("InvalidRoute.NotFound",
                               f"There is no route defined for '{dest}' in the route table. "
                               "Use CreateRoute instead.")
            if route.get("GatewayId") == "local" and not params.get("LocalTarget"):
                raise AwsError("InvalidParameterValue", "cannot replace local route")
            key, value = self._route_target(req, rtb, params)
            idx = rtb["_routes"].index(route)
            rtb["_routes"][idx] = {"DestinationCidrBlock": dest, key: value,
                                   "Origin": "CreateRoute", "State": "active"}
        return {}

    def DeleteRoute(self, req, params):
        _dry_run(params)
        with self.lock:
            rtb = self._get(params["RouteTableId"], req.region, "rtb")
            dest = self._destination(params)
            route = next((r for r in rtb["_routes"] if r.get("DestinationCidrBlock") == dest), None)
            if route is None:
                raise AwsError("InvalidRoute.NotFound",
                               f"no route with destination-cidr-block {dest} in route table "
                               f"{rtb['RouteTableId']}")
            if route.get("GatewayId") == "local":
                raise AwsError("InvalidParameterValue", "cannot remove local route")
            rtb["_routes"].remove(route)
        return {}

    def AssociateRouteTable(self, req, params):
        _dry_run(params)
        with self.lock:
            rtb = self._get(params["RouteTableId"], req.region, "rtb")
            if params.get("GatewayId"):
                raise AwsError("InvalidParameterValue",
                               "Gateway route table associations are not supported")
            if not params.get("SubnetId"):
                raise AwsError("MissingParameter", "The request must contain the parameter subnetId")
            sub = self._get(params["SubnetId"], req.region, "subnet")
            if sub["VpcId"] != rtb["VpcId"]:
                raise AwsError("InvalidParameterValue",
                               f"Route table {rtb['RouteTableId']} and subnet {sub['SubnetId']} "
                               "belong to different networks")
            for other in self.rtbs.values():
                for a in other["_assocs"]:
                    if a.get("SubnetId") == sub["SubnetId"]:
                        raise AwsError("Resource.AlreadyAssociated",
                                       f"the specified association for route table "
                                       f"{other['RouteTableId']} conflicts with an existing "
                                       "association")
            assoc_id = base.hex_id("rtbassoc")
            rtb["_assocs"].append({"Main": False, "RouteTableAssociationId": assoc_id,
                                   "RouteTableId": rtb["RouteTableId"], "SubnetId": sub["SubnetId"],
                                   "AssociationState": {"State": "associated"}})
            return {"AssociationId": assoc_id, "AssociationState": {"State": "associated"}}

    def DisassociateRouteTable(self, req, params):
        _dry_run(params)
        with self.lock:
            aid = params["AssociationId"]
            for rtb in self.rtbs.values():
                if rtb["_region"] != req.region:
                    continue
                for a in rtb["_assocs"]:
                    if a["RouteTableAssociationId"] == aid:
                        if a["Main"]:
                            raise AwsError("InvalidParameterValue",
                                           "cannot disassociate the main route table association "
                                           f"{aid}")
                        rtb["_assocs"].remove(a)
                        return {}
            raise AwsError("InvalidAssociationID.NotFound", f"The association ID '{aid}' does not exist")

    def DeleteRouteTable(self, req, params):
        _dry_run(params)
        with self.lock:
            rtb = self._get(params["RouteTableId"], req.region, "rtb")
            if rtb["_assocs"]:
                raise AwsError("DependencyViolation",
                               f"The routeTable '{rtb['RouteTableId']}' has dependencies and cannot "
                               "be deleted.")
            del self.rtbs[rtb["RouteTableId"]]
            self.tags.pop(rtb["RouteTableId"], None)
        return {}

    # ---------------------------------------------------------------- security groups

    def _new_security_group(self, region, vpc_id, name, description):
        gid = base.hex_id("sg")
        sg = {"_region": region, "_rules": [], "Description": description, "GroupName": name,
              "OwnerId": base.ACCOUNT_ID, "GroupId": gid, "VpcId": vpc_id}
        self.sgs[gid] = sg
        self._add_rule(sg, egress=True, proto="-1", lo=-1, hi=-1, target=("cidr4", "0.0.0.0/0"),
                       desc=None)
        return sg

    def _add_rule(self, sg, egress, proto, lo, hi, target, desc):
        rid = base.hex_id("sgr")
        rule = {"_region": sg["_region"], "id": rid, "group": sg["GroupId"], "egress": egress,
                "proto": proto, "from": lo, "to": hi, "target": target, "desc": desc}
        self.rules[rid] = rule
        sg["_rules"].append(rid)
        return rule

    def _render_rule(self, rule):
        out = {"SecurityGroupRuleId": rule["id"], "GroupId": rule["group"],
               "GroupOwnerId": base.ACCOUNT_ID, "IsEgress": rule["egress"],
               "IpProtocol": rule["proto"], "FromPort": rule["from"], "ToPort": rule["to"],
               "Tags": self._tag_list(rule["id"])}
        kind, value = rule["target"]
        if kind == "cidr4":
            out["CidrIpv4"] = value
        elif kind == "cidr6":
            out["CidrIpv6"] = value
        elif kind == "pl":
            out["PrefixListId"] = value
        else:
            ref = self.sgs.get(value)
            out["ReferencedGroupInfo"] = {"GroupId": value, "UserId": base.ACCOUNT_ID}
            if ref is not None:
                out["ReferencedGroupInfo"]["VpcId"] = ref["VpcId"]
        if rule["desc"] is not None:
            out["Description"] = rule["desc"]
        return out

    def _permissions(self, sg, egress):
        perms = []
        index = {}
        for rid in sg["_rules"]:
            rule = self.rules[rid]
            if rule["egress"] != egress:
                continue
            key = (rule["proto"], rule["from"], rule["to"])
            if key not in index:
                perm = {"IpProtocol": rule["proto"], "IpRanges": [], "Ipv6Ranges": [],
                        "PrefixListIds": [], "UserIdGroupPairs": []}
                if rule["proto"] != "-1":
                    perm["FromPort"], perm["ToPort"] = rule["from"], rule["to"]
                index[key] = perm
                perms.append(perm)
            perm = index[key]
            kind, value = rule["target"]
            extra = {"Description": rule["desc"]} if rule["desc"] is not None else {}
            if kind == "cidr4":
                perm["IpRanges"].append(dict(CidrIp=value, **extra))
            elif kind == "cidr6":
                perm["Ipv6Ranges"].append(dict(CidrIpv6=value, **extra))
            elif kind == "pl":
                perm["PrefixListIds"].append(dict(PrefixListId=value, **extra))
            else:
                perm["UserIdGroupPairs"].append(dict(GroupId=value, UserId=base.ACCOUNT_ID, **extra))
        return perms

    def _render_sg(self, sg):
        out = _public(sg)
        out["IpPermissions"] = self._permissions(sg, False)
        out["IpPermissionsEgress"] = self._permissions(sg, True)
        out["Tags"] = self._tag_list(sg["GroupId"])
        return out

    def CreateSecurityGroup(self, req, params):
        _dry_run(params)
        name = params["GroupName"]
        if name.lower().startswith("sg-"):
            raise AwsError("InvalidParameterValue", "Group names may not be in the format sg-*")
        if len(name) > 255 or len(params["Description"]) > 255:
            raise AwsError("InvalidParameterValue",
                           "Group name and description must be at most 255 characters")
        if name == "default":
            raise AwsError("InvalidGroup.Reserved",
                           "The security group 'default' is reserved")
        with self.lock:
            if not params.get("VpcId"):
                raise AwsError("VPCIdNotSpecified", "No default VPC for this user")
            vpc = self._get(params["VpcId"], req.region, "vpc")
            for g in self.sgs.values():
                if g["VpcId"] == vpc["VpcId"] and g["GroupName"] == name:
                    raise AwsError("InvalidGroup.Duplicate",
                                   f"The security group '{name}' already exists for VPC "
                                   f"'{vpc['VpcId']}'")
            sg = self._new_security_group(req.region, vpc["VpcId"], name, params["Description"])
            try:
                self._apply_tag_specs(params, "security-group", sg["GroupId"])
            except AwsError:
                self._drop_sg(sg)
                raise
            return {"GroupId": sg["GroupId"], "Tags": self._tag_list(sg["GroupId"])}

    def _drop_sg(self, sg):
        for rid in sg["_rules"]:
            self.rules.pop(rid, None)
            self.tags.pop(rid, None)
        self.sgs.pop(sg["GroupId"], None)
        self.tags.pop(sg["GroupId"], None)

    def _find_sg(self, req, params):
        if params.get("GroupId"):
            return self._get(params["GroupId"], req.region, "sg")
        if params.get("GroupName"):
            matches = [g for g in self.sgs.values()
                       if g["GroupName"] == params["GroupName"] and g["_region"] == req.region]
            if not matches:
                raise AwsError("InvalidGroup.NotFound",
                               f"The security group '{params['GroupName']}' does not exist in "
                               "default VPC 'none'")
            return matches[0]
        raise AwsError("MissingParameter", "The request must contain the parameter groupId")

    def DescribeSecurityGroups(self, req, params):
        with self.lock:
            items = self._select(self.sgs, req.region, params.get("GroupIds"), "sg")
            for n in params.get("GroupNames") or []:
                if not any(g["GroupName"] == n for g in items):
                    raise AwsError("InvalidGroup.NotFound",
                                   f"The security group '{n}' does not exist in default VPC 'none'")
            if params.get("GroupNames"):
                items = [g for g in items if g["GroupName"] in params["GroupNames"]]
            fields = {"group-id": lambda g: [g["GroupId"]], "group-name": lambda g: [g["GroupName"]],
                      "vpc-id": lambda g: [g["VpcId"]], "description": lambda g: [g["Description"]],
                      "owner-id": lambda g: [g["OwnerId"]],
                      "ip-permission.group-id": lambda g: [
                          self.rules[r]["target"][1] for r in g["_rules"]
                          if not self.rules[r]["egress"] and self.rules[r]["target"][0] == "ref"],
                      "ip-permission.cidr": lambda g: [
                          self.rules[r]["target"][1] for r in g["_rules"]
                          if not self.rules[r]["egress"] and self.rules[r]["target"][0] == "cidr4"],
                      "ip-permission.from-port": lambda g: [
                          str(self.rules[r]["from"]) for r in g["_rules"]
                          if not self.rules[r]["egress"]],
                      "ip-permission.to-port": lambda g: [
                          str(self.rules[r]["to"]) for r in g["_rules"]
                          if not self.rules[r]["egress"]],
                      "ip-permission.protocol": lambda g: [
                          self.rules[r]["proto"] for r in g["_rules"] if not self.rules[r]["egress"]]}
            items = self._filter(items, params.get("Filters"), fields, lambda g: g["GroupId"])
            ids_param = "GroupIds" if params.get("GroupIds") else (
                "GroupNames" if params.get("GroupNames") else None)
            page, token = self._paginate(items, params, ids_param)
            out = {"SecurityGroups": [self._render_sg(g) for g in page]}
        if token:
            out["NextToken"] = token
        return out

    def DescribeSecurityGroupRules(self, req, params):
        with self.lock:
            if params.get("SecurityGroupRuleIds"):
                items = [self._get(r, req.region, "sgr") for r in params["SecurityGroupRuleIds"]]
            else:
                items = [self.rules[r] for g in self.sgs.values() if g["_region"] == req.region
                         for r in g["_rules"]]
            fields = {"group-id": lambda r: [r["group"]],
                      "security-group-rule-id": lambda r: [r["id"]]}
            items = self._filter(items, params.get("Filters"), fields, lambda r: r["id"])
            page, token = self._paginate(items, params, "SecurityGroupRuleIds")
            out = {"SecurityGroupRules": [self._render_rule(r) for r in page]}
        if token:
            out["NextToken"] = token
        return out

    def _norm_proto(self, proto):
        if proto is None:
            raise AwsError("MissingParameter",
                           "The request must contain the parameter ipPermissions.ipProtocol")
        p = str(proto).lower()
        p = _PROTO_NUMBERS.get(p, p)
        if p in ("-1", "tcp", "udp", "icmp", "icmpv6"):
            return p
        if p.isdigit() and 0 <= int(p) <= 255:
            return p
        raise AwsError("InvalidParameterValue", f"Invalid value '{proto}' for IP protocol. "
                       "Unknown protocol.")

    def _expand(self, req, sg, params, egress):
        """The (proto, from, to, target, desc) rule tuples a request describes."""
        perms = list(params.get("IpPermissions") or [])
        if params.get("CidrIp") or params.get("IpProtocol") or params.get("SourceSecurityGroupName"):
            legacy = {"IpProtocol": params.get("IpProtocol") or "-1",
                      "FromPort": params.get("FromPort"), "ToPort": params.get("ToPort")}
            if params.get("CidrIp"):
                legacy["IpRanges"] = [{"CidrIp": params["CidrIp"]}]
            if params.get("SourceSecurityGroupName"):
                legacy["UserIdGroupPairs"] = [{"GroupName": params["SourceSecurityGroupName"]}]
            perms.append(legacy)
        if not perms:
            raise AwsError("MissingParameter",
                           "The request must contain the parameter ipPermissions")
        out = []
        for perm in perms:
            proto = self._norm_proto(perm.get("IpProtocol"))
            lo, hi = perm.get("FromPort"), perm.get("ToPort")
            if proto == "-1":
                lo, hi = -1, -1
            elif proto in ("tcp", "udp"):
                if lo is None or hi is None:
                    raise AwsError("InvalidParameterValue",
                                   "Invalid value 'null' for portRange. Must specify both from "
                                   "and to ports with TCP/UDP.")
                if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
                    raise AwsError("InvalidParameterValue",
                                   f"Invalid value '{lo}-{hi}' for portRange. The from port must be "
                                   "less than or equal to the to port.")
            elif proto in ("icmp", "icmpv6"):
                lo = -1 if lo is None else lo
                hi = -1 if hi is None else hi
            else:
                lo = -1 if lo is None else lo
                hi = -1 if hi is None else hi
            targets = []
            for r in perm.get("IpRanges") or []:
                cidr = r.get("CidrIp")
                try:
                    net = ipaddress.IPv4Network(cidr or "", strict=True)
                except ValueError:
                    raise AwsError("InvalidParameterValue", f"CIDR block {cidr} is malformed")
                targets.append((("cidr4", str(net)), r.get("Description")))
            for r in perm.get("Ipv6Ranges") or []:
                cidr = r.get("CidrIpv6")
                try:
                    net = ipaddress.IPv6Network(cidr or "", strict=True)
                except ValueError:
                    raise AwsError("InvalidParameterValue", f"CIDR block {cidr} is malformed")
                targets.append((("cidr6", str(net)), r.get("Description")))
            for r in perm.get("PrefixListIds") or []:
                if not r.get("PrefixListId"):
                    raise AwsError("MissingParameter", "The request must contain prefixListId")
                targets.append((("pl", r["PrefixListId"]), r.get("Description")))
            for r in perm.get("UserIdGroupPairs") or []:
                gid = r.get("GroupId")
                if not gid and r.get("GroupName"):
                    match = [g for g in self.sgs.values()
                             if g["GroupName"] == r["GroupName"] and g["VpcId"] == sg["VpcId"]]
                    if not match:
                        raise AwsError("InvalidGroup.NotFound",
                                       f"The security group '{r['GroupName']}' does not exist in "
                                       f"VPC '{sg['VpcId']}'")
                    gid = match[0]["GroupId"]
                ref = self.sgs.get(gid) if gid else None
                if ref is None or ref["_region"] != req.region:
                    raise AwsError("InvalidGroup.NotFound",
                                   f"The security group '{gid}' does not exist")
                if ref["VpcId"] != sg["VpcId"]:
                    raise AwsError("InvalidGroup.NotFound",
                                   "You have specified two resources that belong to different "
                                   "networks.")
                targets.append((("ref", gid), r.get("Description")))
            if not targets:
                raise AwsError("MissingParameter",
                               "The request must contain at least one of ipRanges, ipv6Ranges, "
                               "prefixListIds or groups")
            for target, desc in targets:
                out.append((proto, lo, hi, target, desc))
        return out

    @staticmethod
    def _rule_text(proto, lo, hi, target, egress):
        peer = target[1]
        return (f'the specified rule "peer: {peer}, {proto.upper() if proto != "-1" else "ALL"}, '
                f'from port: {lo}, to port: {hi}, ALLOW" already exists')

    def _authorize(self, req, params, egress):
        _dry_run(params)
        with self.lock:
            sg = self._find_sg(req, params)
            wanted = self._expand(req, sg, params, egress)
            existing = {(r["proto"], r["from"], r["to"], r["target"])
                        for r in (self.rules[x] for x in sg["_rules"]) if r["egress"] == egress}
            seen = set()
            for proto, lo, hi, target, _ in wanted:
                key = (proto, lo, hi, target)
                if key in existing or key in seen:
                    raise AwsError("InvalidPermission.Duplicate",
                                   self._rule_text(proto, lo, hi, target, egress))
                seen.add(key)
            for spec in params.get("TagSpecifications") or []:
                if spec.get("ResourceType") != "security-group-rule":
                    raise AwsError("InvalidParameterValue",
                                   f"'{spec.get('ResourceType')}' is not a valid taggable resource "
                                   "type for this operation.")
                self._check_tags(spec.get("Tags") or [])
            created = []
            for proto, lo, hi, target, desc in wanted:
                rule = self._add_rule(sg, egress, proto, lo, hi, target, desc)
                for spec in params.get("TagSpecifications") or []:
                    self._set_tags(rule["id"], spec.get("Tags") or [])
                created.append(self._render_rule(rule))
            return {"Return": True, "SecurityGroupRules": created}

    def AuthorizeSecurityGroupIngress(self, req, params):
        return self._authorize(req, params, False)

    def AuthorizeSecurityGroupEgress(self, req, params):
        return self._authorize(req, params, True)

    def _revoke(self, req, params, egress):
        _dry_run(params)
        with self.lock:
            sg = self._find_sg(req, params)
            to_remove = []
            unknown = []
            if params.get("SecurityGroupRuleIds"):
                for rid in params["SecurityGroupRuleIds"]:
                    rule = self.rules.get(rid)
                    if rule is None or rule["group"] != sg["GroupId"] or rule["egress"] != egress:
                        raise AwsError("InvalidSecurityGroupRuleId.NotFound",
                                       f"The security group rule ID '{rid}' does not exist")
                    to_remove.append(rid)
            if params.get("IpPermissions") or params.get("CidrIp") or params.get("IpProtocol") \
                    or params.get("SourceSecurityGroupName"):
                for proto, lo, hi, target, _ in self._expand(req, sg, params, egress):
                    match = next((rid for rid in sg["_rules"]
                                  if self.rules[rid]["egress"] == egress
                                  and (self.rules[rid]["proto"], self.rules[rid]["from"],
                                       self.rules[rid]["to"], self.rules[rid]["target"])
                                  == (proto, lo, hi, target)), None)
                    if match is None:
                        perm = {"IpProtocol": proto}
                        if proto != "-1":
                            perm["FromPort"], perm["ToPort"] = lo, hi
                        kind, value = target
                        if kind == "cidr4":
                            perm["IpRanges"] = [{"CidrIp": value}]
                        elif kind == "cidr6":
                            perm["Ipv6Ranges"] = [{"CidrIpv6": value}]
                        elif kind == "pl":
                            perm["PrefixListIds"] = [{"PrefixListId": value}]
                        else:
                            perm["UserIdGroupPairs"] = [{"GroupId": value,
                                                         "UserId": base.ACCOUNT_ID}]
                        unknown.append(perm)
                    elif match not in to_remove:
                        to_remove.append(match)
            if not to_remove and not unknown:
                raise AwsError("MissingParameter",
                               "The request must contain the parameter ipPermissions")
            if not to_remove:
                raise AwsError("InvalidPermission.NotFound",
                               "The specified rule does not exist in this security group.")
            for rid in to_remove:
                sg["_rules"].remove(rid)
                self.rules.pop(rid, None)
                self.tags.pop(rid, None)
            out = {"Return": True}
            if unknown:
                out["UnknownIpPermissions"] = unknown
            return out

    def RevokeSecurityGroupIngress(self, req, params):
        return self._revoke(req, params, False)

    def RevokeSecurityGroupEgress(self, req, params):
        return self._revoke(req, params, True)

    def DeleteSecurityGroup(self, req, params):
        _dry_run(params)
        with self.lock:
            self._advance()
            sg = self._find_sg(req, params)
            gid = sg["GroupId"]
            if sg["GroupName"] == "default":
                raise AwsError("CannotDelete",
                               f'the specified group: "{gid}" name: "default" cannot be deleted by '
                               "a user")
            if any(gid in [g["GroupId"] for g in e["Groups"]] for e in self.enis.values()):
                raise AwsError("DependencyViolation", f"resource {gid} has a dependent object")
            for other in self.sgs.values():
                if other is sg:
                    continue
                for rid in other["_rules"]:
                    if self.rules[rid]["target"] == ("ref", gid):
                        raise AwsError("DependencyViolation",
                                       f"resource {gid} has a dependent object")
            self._drop_sg(sg)
        return {}

    # ---------------------------------------------------------------- network interfaces

    def _allocate_ip(self, sub):
        net = sub["_net"]
        used = {e["PrivateIpAddress"] for e in self.enis.values() if e["SubnetId"] == sub["SubnetId"]}
        first = int(net.network_address) + 4
        last = int(net.broadcast_address) - 1
        for n in range(first, last + 1):
            ip = str(ipaddress.IPv4Address(n))
            if ip not in used:
                return ip
        raise AwsError("InsufficientFreeAddressesInSubnet",
                       f"There are not enough free addresses in subnet '{sub['SubnetId']}' to "
                       "satisfy the requested number of instances.")

    def _private_dns(self, ip, region):
        suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        return "ip-" + ip.replace(".", "-") + "." + suffix

    def _create_eni(self, sub, group_ids, description, public_ip, interface_type="interface"):
        groups = []
        for gid in group_ids or []:
            sg = self.sgs.get(gid)
            if sg is None or sg["_region"] != sub["_region"]:
                raise AwsError("InvalidGroup.NotFound", f"The security group '{gid}' does not exist")
            if sg["VpcId"] != sub["VpcId"]:
                raise AwsError("InvalidParameterValue",
                               f"Security group {gid} and subnet {sub['SubnetId']} belong to "
                               "different networks.")
            groups.append({"GroupName": sg["GroupName"], "GroupId": gid})
        if not groups and interface_type == "interface":
            vpc = self.vpcs.get(sub["VpcId"])
            sg = self.sgs.get(vpc["_default_sg"]) if vpc else None
            if sg is not None:
                groups.append({"GroupName": sg["GroupName"], "GroupId": sg["GroupId"]})
        ip = self._allocate_ip(sub)
        eid = base.hex_id("eni")
        mac = "0e:" + ":".join("%02x" % base._rand.randint(0, 255) for _ in range(5))
        region = sub["_region"]
        eni = {"_region": region, "_delete_at": None,
               "AvailabilityZone": sub["AvailabilityZone"], "Description": description or "",
               "Groups": groups, "InterfaceType": interface_type, "Ipv6Addresses": [],
               "MacAddress": mac, "NetworkInterfaceId": eid, "OwnerId": base.ACCOUNT_ID,
               "PrivateDnsName": self._private_dns(ip, region), "PrivateIpAddress": ip,
               "RequesterId": "amazon-elb" if (description or "").startswith("ELB ") else
               "AROAEMULATORSERVICE00:ecs-service",
               "RequesterManaged": True, "SourceDestCheck": interface_type == "interface",
               "Status": "in-use", "SubnetId": sub["SubnetId"], "VpcId": sub["VpcId"],
               "Ipv4Prefixes": [], "Ipv6Prefixes": [], "DenyAllIgwTraffic": False,
               "Ipv6Native": False}
        if public_ip:
            pub = self._new_public_ip()
            eni["Association"] = {"IpOwnerId": "amazon", "PublicIp": pub,
                                  "PublicDnsName": self._public_dns(pub, region)}
        self.enis[eid] = eni
        return eni

    def _remove_eni(self, eni_id):
        eni = self.enis.pop(eni_id, None)
        self.tags.pop(eni_id, None)
        if eni is None:
            return
        for addr in self.addresses.values():
            if addr.get("NetworkInterfaceId") == eni_id:
                self._disassociate_address(addr)

    def _render_eni(self, eni):
        out = _public(eni)
        out["Groups"] = [dict(g) for g in eni["Groups"]]
        primary = {"Primary": True, "PrivateDnsName": eni["PrivateDnsName"],
                   "PrivateIpAddress": eni["PrivateIpAddress"]}
        if eni.get("Association"):
            out["Association"] = dict(eni["Association"])
            primary["Association"] = dict(eni["Association"])
        out["PrivateIpAddresses"] = [primary]
        out["TagSet"] = self._tag_list(eni["NetworkInterfaceId"])
        return out

    def DescribeNetworkInterfaces(self, req, params):
        with self.lock:
            self._advance()
            items = self._select(self.enis, req.region, params.get("NetworkInterfaceIds"), "eni")
            fields = {"network-interface-id": lambda e: [e["NetworkInterfaceId"]],
                      "subnet-id": lambda e: [e["SubnetId"]], "vpc-id": lambda e: [e["VpcId"]],
                      "group-id": lambda e: [g["GroupId"] for g in e["Groups"]],
                      "group-name": lambda e: [g["GroupName"] for g in e["Groups"]],
                      "description": lambda e: [e["Description"]],
                      "status": lambda e: [e["Status"]],
                      "availability-zone": lambda e: [e["AvailabilityZone"]],
                      "interface-type": lambda e: [e["InterfaceType"]],
                      "requester-managed": lambda e: [e["RequesterManaged"]],
                      "requester-id": lambda e: [e["RequesterId"]],
                      "owner-id": lambda e: [e["OwnerId"]],
                      "private-ip-address": lambda e: [e["PrivateIpAddress"]],
                      "addresses.private-ip-address": lambda e: [e["PrivateIpAddress"]],
                      "association.public-ip": lambda e: [(e.get("Association") or {}).get("PublicIp")],
                      "mac-address": lambda e: [e["MacAddress"]]}
            items = self._filter(items, params.get("Filters"), fields,
                                 lambda e: e["NetworkInterfaceId"])
            page, token = self._paginate(items, params, "NetworkInterfaceIds")
            out = {"NetworkInterfaces": [self._render_eni(e) for e in page]}
        if token:
            out["NextToken"] = token
        return out

    # ------------------------------------------------- cross-service functions

    def get_vpc(self, vpc_id):
        """The VPC record (DescribeVpcs shape plus region) or None."""
        with self.lock:
            self._advance()
            vpc = self.vpcs.get(vpc_id)
            if vpc is None:
                return None
            out = self._render_vpc(vpc)
            out["Region"] = vpc["_region"]
            out["EnableDnsSupport"] = vpc["_dns_support"]
            out["EnableDnsHostnames"] = vpc["_dns_hostnames"]
            out["MainRouteTableId"] = vpc["_main_rtb"]
            out["DefaultSecurityGroupId"] = vpc["_default_sg"]
            out["InternetGatewayIds"] = [g["InternetGatewayId"] for g in self.igws.values()
                                         if any(a["VpcId"] == vpc_id for a in g["Attachments"])]
            return out

    def get_subnet(self, subnet_id):
        """The subnet record (DescribeSubnets shape plus region) or None."""
        with self.lock:
            sub = self.subnets.get(subnet_id)
            if sub is None:
                return None
            out = self._render_subnet(sub)
            out["Region"] = sub["_region"]
            return out

    def get_security_group(self, group_id):
        """The security group record (DescribeSecurityGroups shape) or None."""
        with self.lock:
            sg = self.sgs.get(group_id)
            if sg is None:
                return None
            out = self._render_sg(sg)
            out["Region"] = sg["_region"]
            return out

    def create_network_interface_internal(self, subnet_id, group_ids, description,
                                          public_ip=False):
        """Create a requester-managed ENI in ``subnet_id`` (as ECS or ELB do).
        Returns its DescribeNetworkInterfaces dict. Raises AwsError when the
        subnet or a group does not exist or the subnet has no free address."""
        with self.lock:
            sub = self.subnets.get(subnet_id)
            if sub is None:
                raise AwsError("InvalidSubnetID.NotFound",
                               f"The subnet ID '{subnet_id}' does not exist")
            eni = self._create_eni(sub, group_ids, description, public_ip)
            return self._render_eni(eni)

    def delete_network_interface_internal(self, eni_id, delay_seconds=0.0):
        """Delete an ENI now, or after ``delay_seconds`` (scaled by the clock)
        the way AWS releases service-managed interfaces a little later. A
        missing ENI is ignored."""
        with self.lock:
            eni = self.enis.get(eni_id)
            if eni is None:
                return
            if delay_seconds:
                eni["Status"] = "available"
                eni["_delete_at"] = self._now() + self.clock.delay(delay_seconds)
            else:
                self._remove_eni(eni_id)


def _not_found_for(kind, rid):
    """The NotFound error of ``kind`` for an id that does not exist."""
    if kind == "nat":
        return AwsError("NatGatewayNotFound", f"The Nat Gateway {rid} was not found")
    if kind == "sg":
        return AwsError("InvalidGroup.NotFound", f"The security group '{rid}' does not exist")
    _, code, noun = _KINDS[kind]
    return AwsError(code, f"The {noun} ID '{rid}' does not exist")
