#!/usr/bin/python3
"""Generates deploy/iam-policy.json: the least-privilege policy for the AWS calls aviary makes.

The actions come from tools/aws_calls.py (every operation the C code can call,
mapped to IAM actions); this file only decides where each action goes: which
statement, so which resources and which tag conditions. An action the code
needs but that has no place here is an error, so a new AWS call cannot reach
the policy without someone deciding how to scope it.

Scoping, strongest first:
  * tag conditions: creating requires the request to carry
    aviary.io/managed-by=aviary (aws:RequestTag), changing or deleting
    requires the resource to carry it (aws:ResourceTag); tag-on-create
    permissions are limited to the creating actions (ec2:CreateAction,
    ecs:CreateAction, elasticloadbalancing:CreateAction);
  * names: where aviary's names have a fixed prefix (ECS cluster "aviary-*",
    log groups "/aviary/*", SNS topics, alarms and dashboards "aviary-*",
    IAM roles, S3 buckets) the ARN pattern says so as well; where a service
    has no tag conditions for an action (S3 buckets, CloudWatch dashboards,
    Application Auto Scaling targets aviary does not tag) the name is the
    only scope;
  * Resource "*": read-only Describe/List/Get calls. Reads stay unscoped on
    purpose: aviary must see resources it does not own to report a name
    clash ("exists without the aviary tags") instead of failing on
    AccessDenied, and a read changes nothing.

Usage:
  tools/gen_iam_policy.py                 print the policy
  tools/gen_iam_policy.py --write         write deploy/iam-policy.json
  tools/gen_iam_policy.py --check         exit 1 when deploy/iam-policy.json is stale
  tools/gen_iam_policy.py --manifest-bucket NAME [--manifest-prefix P] [--partition aws-cn]
                                          a policy for one deployment (S3 source bucket filled in)
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_calls  # noqa: E402

ROOT = aws_calls.ROOT
POLICY_PATH = os.path.join(ROOT, "deploy", "iam-policy.json")
TAG = "aviary.io/managed-by"
TAG_VALUE = "aviary"
# Placeholders in the checked-in policy: replace them, or generate a policy
# for your deployment with --manifest-bucket.
MANIFEST_BUCKET = "MANIFEST-BUCKET"
MANIFEST_PREFIX = ""

# Each application's execution and task roles (reconcilers/roles.c), the
# execution role earlier versions shared between applications (only read and
# cleared of old grants now) and the notebook roles of training environments.
APPLICATION_ROLES = ["aviary-*-execution", "aviary-*-task"]
SHARED_EXECUTION_ROLE = "aviary-ecs-task-execution"
NOTEBOOK_ROLES = "aviary-*-notebook"


def request_tag():
    return {"StringEquals": {f"aws:RequestTag/{TAG}": TAG_VALUE}}


def resource_tag():
    return {"StringEquals": {f"aws:ResourceTag/{TAG}": TAG_VALUE}}


EC2_TYPES = ["vpc", "subnet", "internet-gateway", "route-table", "security-group", "natgateway",
             "elastic-ip"]
EC2_CREATES = ["CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateRouteTable",
               "CreateSecurityGroup", "CreateNatGateway", "AllocateAddress"]


def statements(p, manifest_bucket, manifest_prefix):
    """Sid -> (Resource, Condition or None). p is the partition."""
    ec2 = lambda t: f"arn:{p}:ec2:*:*:{t}/*"  # noqa: E731
    app_roles = [f"arn:{p}:iam::*:role/{r}" for r in APPLICATION_ROLES]
    roles_created = app_roles + [f"arn:{p}:iam::*:role/{NOTEBOOK_ROLES}"]
    roles_all = [f"arn:{p}:iam::*:role/{SHARED_EXECUTION_ROLE}"] + roles_created
    src = manifest_prefix.lstrip("/")
    return {
        # ---- reads
        "ReadOnly": ("*", None),
        "IamReadAviaryRoles": (roles_all, None),
        # ---- EC2 networks (applications and training environments)
        "Ec2CreateTagged": ([ec2(t) for t in EC2_TYPES], request_tag()),
        "Ec2TagOnCreate": (f"arn:{p}:ec2:*:*:*/*", {"StringEquals": {"ec2:CreateAction": EC2_CREATES}}),
        # New subnets, route tables and NAT gateways go into aviary's own VPC,
        # subnets and addresses only.
        "Ec2CreateInOwnedParents": ([ec2("vpc"), ec2("subnet"), ec2("elastic-ip")], resource_tag()),
        # Security groups are also created in a VPC the manifest names
        # (spec.network.vpcId); creating a group does not change that VPC.
        "Ec2SecurityGroupInAnyVpc": (ec2("vpc"), None),
        "Ec2ChangeOwned": ([ec2(t) for t in EC2_TYPES], resource_tag()),
        # Rules are created and revoked with their group (owned, above); a
        # new rule carries no tags of its own.
        "Ec2SecurityGroupRules": (ec2("security-group-rule"), None),
        # ---- ECR
        "EcrCreateTagged": (f"arn:{p}:ecr:*:*:repository/*", request_tag()),
        "EcrChangeOwned": (f"arn:{p}:ecr:*:*:repository/*", resource_tag()),
        # ---- ECS
        "EcsCreateTagged": ([f"arn:{p}:ecs:*:*:cluster/aviary-*", f"arn:{p}:ecs:*:*:service/aviary-*/*"],
                            request_tag()),
        "EcsTaskDefinitionsTagged": ("*", request_tag()),
        "EcsTagOnCreate": ("*", {"StringEquals": {"ecs:CreateAction": [
            "CreateCluster", "CreateService", "RegisterTaskDefinition"]}}),
        "EcsChangeOwned": ([f"arn:{p}:ecs:*:*:cluster/aviary-*", f"arn:{p}:ecs:*:*:service/aviary-*/*",
                            f"arn:{p}:ecs:*:*:task-definition/aviary-*:*"], resource_tag()),
        # DeregisterTaskDefinition authorizes on no resource type: the family
        # prefix is checked by aviary (it deregisters only tagged revisions).
        "EcsDeregisterTaskDefinitions": ("*", None),
        # ---- Elastic Load Balancing v2
        "ElbCreateTagged": ([f"arn:{p}:elasticloadbalancing:*:*:loadbalancer/app/*/*",
                             f"arn:{p}:elasticloadbalancing:*:*:targetgroup/*/*"], request_tag()),
        "ElbTagOnCreate": ("*", {"StringEquals": {"elasticloadbalancing:CreateAction": [
            "CreateLoadBalancer", "CreateTargetGroup", "CreateListener"]}}),
        "ElbChangeOwned": ([f"arn:{p}:elasticloadbalancing:*:*:loadbalancer/app/*/*",
                            f"arn:{p}:elasticloadbalancing:*:*:listener/app/*/*/*",
                            f"arn:{p}:elasticloadbalancing:*:*:targetgroup/*/*"], resource_tag()),
        # ---- IAM: the applications' roles and the notebook roles (the
        # shared execution role of earlier versions is never created)
        "IamCreateAviaryRoles": (roles_created, request_tag()),
        "IamChangeAviaryRoles": (roles_all, resource_tag()),
        "IamManagedPoliciesOnAviaryRoles": (roles_created, None),  # condition filled in by policy()
        "IamPassApplicationRoles": (app_roles,
                                    {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
        "IamPassNotebookRoles": (f"arn:{p}:iam::*:role/{NOTEBOOK_ROLES}",
                                 {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        "IamServiceLinkedRoles": (f"arn:{p}:iam::*:role/aws-service-role/*", None),  # condition by policy()
        # ---- CloudWatch Logs: /aviary/<name>
        "LogsCreateTagged": (f"arn:{p}:logs:*:*:log-group:/aviary/*", request_tag()),
        "LogsChangeOwned": (f"arn:{p}:logs:*:*:log-group:/aviary/*", resource_tag()),
        # ---- CloudWatch alarms, dashboards, metrics
        "CloudWatchAlarmsTagged": (f"arn:{p}:cloudwatch:*:*:alarm:aviary-*", request_tag()),
        "CloudWatchAlarmsOwned": (f"arn:{p}:cloudwatch:*:*:alarm:aviary-*", resource_tag()),
        # Target tracking policies make Application Auto Scaling create and
        # delete their alarms with the caller's permissions (untagged).
        "CloudWatchTargetTrackingAlarms": (f"arn:{p}:cloudwatch:*:*:alarm:TargetTracking-service/aviary-*",
                                           None),
        # Dashboards have no tags: the "aviary-" name is the scope.
        "CloudWatchDashboards": (f"arn:{p}:cloudwatch::*:dashboard/aviary-*", None),
        "CloudWatchPutMetricData": ("*", {"StringLike": {"cloudwatch:namespace": "Aviary*"}}),
        # ---- SNS topics aviary-<name>
        "SnsCreateTagged": (f"arn:{p}:sns:*:*:aviary-*", request_tag()),
        "SnsChangeOwned": (f"arn:{p}:sns:*:*:aviary-*", resource_tag()),
        # Unsubscribe names a subscription ARN, which has no tags; aviary only
        # unsubscribes subscriptions it listed on its own topic.
        "SnsUnsubscribe": ("*", None),
        # ---- Application Auto Scaling: the ECS services' desired count.
        # aviary does not tag scalable targets; the resource id
        # "service/aviary-<name>/<name>-<slot>" carries the cluster prefix.
        "AutoScalingEcsServices": (f"arn:{p}:application-autoscaling:*:*:scalable-target/*",
                                   {"StringEquals": {
                                       "application-autoscaling:service-namespace": "ecs",
                                       "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount"}}),
        # ---- S3: training buckets aviary-<name>-<suffix> (no bucket tag conditions in S3)
        "S3TrainingBuckets": (f"arn:{p}:s3:::aviary-*", None),
        "S3TrainingObjects": (f"arn:{p}:s3:::aviary-*/*", None),
        # The manifest source (--source s3://BUCKET/PREFIX) and any s3:// training
        # data source: read only.
        "S3ListSources": (f"arn:{p}:s3:::{manifest_bucket}",
                          {"StringLike": {"s3:prefix": [f"{src}*"]}} if src else None),
        "S3ReadSources": (f"arn:{p}:s3:::{manifest_bucket}/{src}*", None),
        # ---- SageMaker notebook instances (named <name>: tags are the scope)
        "SageMakerCreateTagged": (f"arn:{p}:sagemaker:*:*:notebook-instance/*", request_tag()),
        "SageMakerChangeOwned": (f"arn:{p}:sagemaker:*:*:notebook-instance/*", resource_tag()),
    }


# IAM action -> statements it belongs to (an action in several statements is
# allowed by any of them).
PLACEMENT = {}


def _place(sids, *actions):
    for a in actions:
        PLACEMENT.setdefault(a, []).extend([sids] if isinstance(sids, str) else sids)


_place("ReadOnly",
       "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
       "application-autoscaling:DescribeScalingActivities",
       "cloudwatch:DescribeAlarms", "cloudwatch:GetDashboard", "cloudwatch:GetMetricData",
       "cloudwatch:ListDashboards", "cloudwatch:ListTagsForResource",
       "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
       "ec2:DescribeNatGateways", "ec2:DescribeNetworkInterfaces", "ec2:DescribeRouteTables",
       "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
       "ec2:DescribeTags", "ec2:DescribeVpcAttribute", "ec2:DescribeVpcs",
       "ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:ListTagsForResource",
       "ecs:DescribeClusters", "ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:DescribeTasks",
       "ecs:ListServices", "ecs:ListTagsForResource", "ecs:ListTaskDefinitions", "ecs:ListTasks",
       "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancers",
       "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTargetGroupAttributes",
       "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
       "logs:DescribeLogGroups", "logs:ListTagsLogGroup", "logs:ListTagsForResource",
       "sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource",
       "sagemaker:DescribeNotebookInstance", "sagemaker:ListTags")
_place("IamReadAviaryRoles", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
       "iam:ListAttachedRolePolicies", "iam:ListRoleTags")
_place("Ec2CreateTagged", *[f"ec2:{a}" for a in EC2_CREATES])
_place("Ec2TagOnCreate", "ec2:CreateTags")
_place("Ec2CreateInOwnedParents", "ec2:CreateSubnet", "ec2:CreateRouteTable", "ec2:CreateNatGateway",
       "ec2:CreateSecurityGroup")
_place("Ec2SecurityGroupInAnyVpc", "ec2:CreateSecurityGroup")
_place("Ec2ChangeOwned", "ec2:AssociateRouteTable", "ec2:AttachInternetGateway",
       "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateRoute",
       "ec2:DeleteInternetGateway", "ec2:DeleteNatGateway", "ec2:DeleteRoute", "ec2:DeleteRouteTable",
       "ec2:DeleteSecurityGroup", "ec2:DeleteSubnet", "ec2:DeleteVpc", "ec2:DetachInternetGateway",
       "ec2:DisassociateRouteTable", "ec2:ModifySubnetAttribute", "ec2:ModifyVpcAttribute",
       "ec2:ReleaseAddress", "ec2:ReplaceRoute", "ec2:RevokeSecurityGroupEgress",
       "ec2:RevokeSecurityGroupIngress", "ec2:DeleteTags")
_place("Ec2SecurityGroupRules", "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
       "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress")
_place("EcrCreateTagged", "ecr:CreateRepository", "ecr:TagResource")
_place("EcrChangeOwned", "ecr:DeleteRepository", "ecr:PutImageScanningConfiguration", "ecr:PutLifecyclePolicy")
_place("EcsCreateTagged", "ecs:CreateCluster", "ecs:CreateService")
_place("EcsTaskDefinitionsTagged", "ecs:RegisterTaskDefinition")
_place("EcsTagOnCreate", "ecs:TagResource")
_place("EcsChangeOwned", "ecs:DeleteCluster", "ecs:DeleteService", "ecs:UpdateService", "ecs:TagResource",
       "ecs:UpdateClusterSettings",
       "ecs:UntagResource")
_place("EcsDeregisterTaskDefinitions", "ecs:DeregisterTaskDefinition")
_place("ElbCreateTagged", "elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup")
_place("ElbTagOnCreate", "elasticloadbalancing:AddTags")
_place("ElbChangeOwned", "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
       "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup",
       "elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyTargetGroup",
       "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:RemoveTags",
       "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets")
_place("IamCreateAviaryRoles", "iam:CreateRole", "iam:TagRole")
# Detaching takes a permission away (a policy attached by hand is drift, and
# a role is emptied before deletion): any policy, on owned roles only.
_place("IamChangeAviaryRoles", "iam:DetachRolePolicy")
_place("IamChangeAviaryRoles", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy",
       "iam:UpdateAssumeRolePolicy")
_place("IamManagedPoliciesOnAviaryRoles", "iam:AttachRolePolicy")
_place([], "iam:PassRole")  # by operation, see BY_OPERATION
_place("IamServiceLinkedRoles", "iam:CreateServiceLinkedRole")
_place("LogsCreateTagged", "logs:CreateLogGroup", "logs:TagResource", "logs:TagLogGroup")
_place("LogsChangeOwned", "logs:DeleteLogGroup", "logs:PutRetentionPolicy")
_place("CloudWatchAlarmsTagged", "cloudwatch:PutMetricAlarm")
_place("CloudWatchAlarmsTagged", "cloudwatch:TagResource")
_place("CloudWatchAlarmsOwned", "cloudwatch:DeleteAlarms")
_place("CloudWatchDashboards", "cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards")
_place("CloudWatchPutMetricData", "cloudwatch:PutMetricData")
_place("SnsCreateTagged", "sns:CreateTopic", "sns:TagResource")
_place("SnsChangeOwned", "sns:DeleteTopic", "sns:Publish", "sns:SetTopicAttributes", "sns:Subscribe")
_place("SnsUnsubscribe", "sns:Unsubscribe")
_place("AutoScalingEcsServices", "application-autoscaling:RegisterScalableTarget",
       "application-autoscaling:DeregisterScalableTarget", "application-autoscaling:PutScalingPolicy",
       "application-autoscaling:DeleteScalingPolicy")
_place("S3TrainingBuckets", "s3:CreateBucket", "s3:DeleteBucket", "s3:GetBucketTagging", "s3:PutBucketTagging",
       "s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:GetEncryptionConfiguration",
       "s3:PutEncryptionConfiguration", "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
       "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads",
       "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration")
_place("S3TrainingObjects", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
       "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
_place("S3ListSources", "s3:ListBucket")
_place("S3ReadSources", "s3:GetObject", "s3:GetObjectVersion")
_place("SageMakerCreateTagged", "sagemaker:CreateNotebookInstance", "sagemaker:AddTags")
_place("SageMakerChangeOwned", "sagemaker:StartNotebookInstance", "sagemaker:StopNotebookInstance",
       "sagemaker:UpdateNotebookInstance", "sagemaker:DeleteNotebookInstance",
       "sagemaker:CreatePresignedNotebookInstanceUrl")

# Where an action goes depends on the operation that needs it: (action,
# "service Operation") -> statements, used instead of PLACEMENT for that
# reason only.
BY_OPERATION = {
    ("iam:PassRole", "ecs RegisterTaskDefinition"): ["IamPassApplicationRoles"],
    ("iam:PassRole", "sagemaker CreateNotebookInstance"): ["IamPassNotebookRoles"],
    ("iam:PassRole", "sagemaker UpdateNotebookInstance"): ["IamPassNotebookRoles"],
    ("cloudwatch:PutMetricAlarm", "application-autoscaling PutScalingPolicy (dependent)"):
        ["CloudWatchTargetTrackingAlarms"],
    ("cloudwatch:DeleteAlarms", "application-autoscaling PutScalingPolicy (dependent)"):
        ["CloudWatchTargetTrackingAlarms"],
    ("cloudwatch:DeleteAlarms", "application-autoscaling DeleteScalingPolicy (dependent)"):
        ["CloudWatchTargetTrackingAlarms"],
    ("cloudwatch:DescribeAlarms", "application-autoscaling PutScalingPolicy (dependent)"): ["ReadOnly"],
    ("ecs:DescribeServices", "application-autoscaling RegisterScalableTarget (dependent)"): ["ReadOnly"],
    ("ecs:UpdateService", "application-autoscaling RegisterScalableTarget (dependent)"): ["EcsChangeOwned"],
}

# The service-linked role each operation may create on first use.
SERVICE_LINKED = {
    "ecs CreateCluster": "ecs.amazonaws.com",
    "elbv2 CreateLoadBalancer": "elasticloadbalancing.amazonaws.com",
    "application-autoscaling RegisterScalableTarget": "ecs.application-autoscaling.amazonaws.com",
}

# Actions that AWS authorizes in addition to the operations aviary calls
# (dependent actions), keyed by the operation that triggers them. Kept here,
# not in aws_calls.IAM_ACTIONS, because they are about how AWS evaluates a
# call, not about the name of the call's own action.
DEPENDENT = {
    # A service-linked role is created on first use in an account.
    "ecs CreateCluster": ["iam:CreateServiceLinkedRole"],
    "elbv2 CreateLoadBalancer": ["iam:CreateServiceLinkedRole"],
    "application-autoscaling RegisterScalableTarget": ["iam:CreateServiceLinkedRole",
                                                       "ecs:DescribeServices", "ecs:UpdateService"],
    # Target tracking creates and deletes CloudWatch alarms as the caller.
    "application-autoscaling PutScalingPolicy": ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms",
                                                 "cloudwatch:DeleteAlarms"],
    "application-autoscaling DeleteScalingPolicy": ["cloudwatch:DeleteAlarms"],
}

# AWS managed policies the code attaches: found as literals in the sources.
MANAGED_POLICY_RE = re.compile(r'"arn:aws:iam::aws:policy/[A-Za-z0-9+=,.@_/-]+"')


def managed_policy_arns(root=ROOT):
    found = set()
    for d in ("reconcilers", "controller"):
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                        found.update(m.strip('"') for m in MANAGED_POLICY_RE.findall(fh.read()))
    return sorted(found)


def needed_actions(ops, root=ROOT):
    """{action: [reasons]} for the extracted operations (dict of call sites),
    dependent actions included."""
    need = aws_calls.required_iam_actions(ops, aws_calls.version_files(root))
    for (svc, op) in sorted(ops):
        for a in DEPENDENT.get(f"{svc} {op}", []):
            need.setdefault(a, [])
            if f"{svc} {op} (dependent)" not in need[a]:
                need[a].append(f"{svc} {op} (dependent)")
    return dict(sorted(need.items()))


def policy(ops, root=ROOT, partition="aws", manifest_bucket=MANIFEST_BUCKET, manifest_prefix=MANIFEST_PREFIX):
    """The policy document for a set of operations. Raises KeyError for an
    action without a statement."""
    stmts = statements(partition, manifest_bucket, manifest_prefix)
    by_sid = {}
    for action, reasons in needed_actions(ops, root).items():
        for why in reasons:
            sids = BY_OPERATION.get((action, why))
            if sids is None:
                sids = PLACEMENT.get(action)
            if not sids:
                raise KeyError(f"{action} (for {why}) has no statement in tools/gen_iam_policy.py "
                               "(PLACEMENT or BY_OPERATION)")
            for sid in sids:
                by_sid.setdefault(sid, set()).add(action)
    out = []
    for sid, (resource, condition) in stmts.items():
        if sid not in by_sid:
            continue
        if sid == "IamServiceLinkedRoles":
            names = sorted({SERVICE_LINKED[f"{s} {o}"] for s, o in ops if f"{s} {o}" in SERVICE_LINKED})
            condition = {"StringEquals": {"iam:AWSServiceName": names if len(names) > 1 else names[0]}}
        if sid == "IamManagedPoliciesOnAviaryRoles":
            arns = [a.replace("arn:aws:", f"arn:{partition}:", 1) for a in managed_policy_arns(root)]
            condition = {"ArnEquals": {"iam:PolicyARN": arns}}
        s = {"Sid": sid, "Effect": "Allow", "Action": sorted(by_sid[sid]), "Resource": resource}
        if condition:
            s["Condition"] = condition
        out.append(s)
    return {"Version": "2012-10-17", "Statement": out}


def render(doc):
    return json.dumps(doc, indent=2) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--write", action="store_true", help="write deploy/iam-policy.json")
    ap.add_argument("--check", action="store_true", help="fail when deploy/iam-policy.json is stale")
    ap.add_argument("--partition", default="aws")
    ap.add_argument("--manifest-bucket", default=MANIFEST_BUCKET)
    ap.add_argument("--manifest-prefix", default=MANIFEST_PREFIX)
    args = ap.parse_args(argv)
    ops, unresolved, _ = aws_calls.extract(args.root)
    if unresolved:
        for u in unresolved:
            print(f"gen_iam_policy: unresolved AWS call: {u}", file=sys.stderr)
        return 1
    try:
        text = render(policy(ops, args.root, args.partition, args.manifest_bucket, args.manifest_prefix))
    except KeyError as e:
        print(f"gen_iam_policy: {e.args[0]}", file=sys.stderr)
        return 1
    path = os.path.join(args.root, "deploy", "iam-policy.json")
    if args.check:
        with open(path, encoding="utf-8") as fh:
            if fh.read() != text:
                print("gen_iam_policy: deploy/iam-policy.json is stale: run tools/gen_iam_policy.py --write",
                      file=sys.stderr)
                return 1
        return 0
    if args.write:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
