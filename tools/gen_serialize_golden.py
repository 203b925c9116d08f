#!/usr/bin/python3
"""Writes tests/golden/serialize/<service>.<Operation>.<case>.json: requests
serialized by botocore's own serializer, for tests/unit/test_serialize.c to
compare aviary's serializer with.

Each case's input is in aviary's data model (aws/protocol.h: timestamps as unix
seconds, non-streaming blobs base64). It is converted for botocore (blobs
decoded), its structures are put in model member order (botocore writes members
in input order; aviary writes them in model order), validated by botocore's
ParamValidator, serialized with botocore.serialize.create_serializer(protocol),
then prepared exactly as botocore prepares a request for the wire
(prepare_request_dict, the httpChecksumRequired Content-MD5 handling,
AWSRequest.prepare()). The few botocore customizations that change the
request and that aviary mirrors (MIRRORED_HANDLERS: S3 CopySource quoting,
Content-MD5 on PutObject/UploadPart, bucket name and metadata checks) run at
their botocore events. The golden file keeps the method, the URL path, the
query string, the headers the serializer produced (Content-Length excluded:
the HTTP layer sets it) and the body.

Usage: /usr/bin/python3 tools/gen_serialize_golden.py [--check]
  --check  fail when a committed golden file differs from a regenerated one.
"""

import argparse
import base64
import collections
import json
import os
import sys
import urllib.parse

import botocore
import botocore.awsrequest
import botocore.handlers
import botocore.httpchecksum
import botocore.loaders
import botocore.model
import botocore.serialize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "golden", "serialize")
ENDPOINT = "https://aws.example"

ACCT = "123456789012"
REGION = "eu-central-1"
VPC = "vpc-0a1b2c3d4e5f60718"
SUBNETS = ["subnet-0aa11bb22cc33dd44", "subnet-0ee55ff66aa77bb88"]
SG = "sg-0123456789abcdef0"
TG_A = "arn:aws:elasticloadbalancing:%s:%s:targetgroup/fraud-a/0123456789abcdef" % (REGION, ACCT)
TG_B = "arn:aws:elasticloadbalancing:%s:%s:targetgroup/fraud-b/fedcba9876543210" % (REGION, ACCT)
LISTENER = (
    "arn:aws:elasticloadbalancing:%s:%s:listener/app/fraud/50dc6c495c0c9188/f2f7dc8efc522ab2"
    % (REGION, ACCT)
)
ROLE = "arn:aws:iam::%s:role/aviary-fraud-task" % ACCT
TOPIC = "arn:aws:sns:%s:%s:aviary-fraud" % (REGION, ACCT)
TAGS_KV = [
    {"Key": "aviary.io/managed-by", "Value": "aviary"},
    {"Key": "aviary.io/application", "Value": "fraud-model"},
]
TAGS_kv = [{"key": t["Key"], "value": t["Value"]} for t in TAGS_KV]
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)

# (service, operation, case, input, raw payload bytes or None)
CASES = [
    # ---- awsJson 1.1 ----
    ("ecs", "CreateService", "canary-slot", {
        "cluster": "aviary",
        "serviceName": "fraud-model-b",
        "taskDefinition": "fraud-model:7",
        "loadBalancers": [
            {"targetGroupArn": TG_B, "containerName": "app", "containerPort": 8080}
        ],
        "desiredCount": 1,
        "launchType": "FARGATE",
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": SUBNETS,
                "securityGroups": [SG],
                "assignPublicIp": "DISABLED",
            }
        },
        "healthCheckGracePeriodSeconds": 30,
        "tags": TAGS_kv + [{"key": "aviary.io/slot", "value": "b"}],
        "enableECSManagedTags": True,
        "propagateTags": "SERVICE",
    }, None),
    ("ecs", "RegisterTaskDefinition", "fargate", {
        "family": "fraud-model",
        "taskRoleArn": ROLE,
        "executionRoleArn": "arn:aws:iam::%s:role/aviary-exec" % ACCT,
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "%s.dkr.ecr.%s.amazonaws.com/fraud:1.4.2" % (ACCT, REGION),
                "cpu": 0,
                "essential": True,
                "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                "environment": [
                    {"name": "MODEL_VERSION", "value": "1.4.2"},
                    {"name": "GREETING", "value": "gr\u00fc\u00dfe \"quoted\" \\ \u2603\n"},
                ],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/aviary/fraud-model",
                        "awslogs-region": REGION,
                        "awslogs-stream-prefix": "app",
                    },
                },
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -fsS http://localhost:8080/health || exit 1"],
                    "interval": 10,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 15,
                },
            }
        ],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "tags": TAGS_kv,
    }, None),
    ("ecs", "DescribeServices", "no-optional", {
        "services": ["fraud-model-a", "fraud-model-b"], "cluster": "aviary", "include": [],
    }, None),
    ("ecs", "ListServices", "empty-input", {}, None),
    ("logs", "CreateLogGroup", "tags-map", {
        "logGroupName": "/aviary/fraud-model",
        "tags": {"aviary.io/managed-by": "aviary", "aviary.io/application": "fraud-model"},
    }, None),
    ("application-autoscaling", "PutScalingPolicy", "target-tracking", {
        "PolicyName": "fraud-model-cpu",
        "ServiceNamespace": "ecs",
        "ResourceId": "service/aviary/fraud-model-a",
        "ScalableDimension": "ecs:service:DesiredCount",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
            },
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 120,
            "DisableScaleIn": False,
        },
    }, None),
    ("application-autoscaling", "DescribeScalingActivities", "times", {
        "ServiceNamespace": "ecs", "ResourceId": "service/aviary/fraud-model-a", "MaxResults": 5,
    }, None),
    ("sagemaker", "CreateNotebookInstance", "private", {
        "NotebookInstanceName": "churn-training",
        "InstanceType": "ml.t3.medium",
        "SubnetId": SUBNETS[0],
        "SecurityGroupIds": [SG],
        "RoleArn": "arn:aws:iam::%s:role/aviary-notebook" % ACCT,
        "Tags": [{"Key": "aviary.io/training", "Value": "churn-training"}],
        "DirectInternetAccess": "Disabled",
        "VolumeSizeInGB": 20,
        "RootAccess": "Enabled",
    }, None),
    ("ecr", "PutLifecyclePolicy", "text", {
        "repositoryName": "fraud",
        "lifecyclePolicyText": json.dumps({"rules": [{"rulePriority": 1, "selection": {
            "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 10},
            "action": {"type": "expire"}}]}),
    }, None),
    # ---- Query ----
    ("elbv2", "CreateTargetGroup", "ip-http", {
        "Name": "fraud-model-a",
        "Protocol": "HTTP",
        "Port": 8080,
        "VpcId": VPC,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPath": "/health",
        "HealthCheckIntervalSeconds": 10,
        "HealthyThresholdCount": 2,
        "Matcher": {"HttpCode": "200-399"},
        "TargetType": "ip",
        "Tags": TAGS_KV,
    }, None),
    ("elbv2", "ModifyListener", "weighted-forward", {
        "ListenerArn": LISTENER,
        "DefaultActions": [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": TG_A, "Weight": 90},
                        {"TargetGroupArn": TG_B, "Weight": 10},
                    ],
                    "TargetGroupStickinessConfig": {"Enabled": False},
                },
            }
        ],
    }, None),
    ("elbv2", "AddTags", "two-resources", {
        "ResourceArns": [TG_A, TG_B],
        "Tags": TAGS_KV + [{"Key": "aviary.io/revision", "Value": "r 1+2=3&x"}],
    }, None),
    ("elbv2", "DescribeTargetGroups", "empty-list", {"Names": [], "PageSize": 400}, None),
    ("elbv2", "ModifyTargetGroupAttributes", "attributes", {
        "TargetGroupArn": TG_A,
        "Attributes": [
            {"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
            {"Key": "stickiness.enabled", "Value": "false"},
        ],
    }, None),
    ("cloudwatch", "GetMetricData", "error-rate", {
        "MetricDataQueries": [
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApplicationELB",
                        "MetricName": "HTTPCode_Target_5XX_Count",
                        "Dimensions": [
                            {"Name": "LoadBalancer", "Value": "app/fraud/50dc6c495c0c9188"},
                            {"Name": "TargetGroup", "Value": "targetgroup/fraud-b/fedcba9876543210"},
                        ],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {"Id": "rate", "Expression": "errors / requests", "Label": "error rate"},
        ],
        "StartTime": 1700000000,
        "EndTime": 1700000300.25,
        "ScanBy": "TimestampDescending",
        "MaxDatapoints": 1000,
    }, None),
    ("cloudwatch", "PutMetricData", "values", {
        "Namespace": "Aviary/Rollouts",
        "MetricData": [
            {
                "MetricName": "CanaryWeight",
                "Dimensions": [{"Name": "Application", "Value": "fraud-model"}],
                "Timestamp": 1700000123,
                "Value": 12.5,
                "Unit": "Percent",
                "StorageResolution": 60,
            },
            {
                "MetricName": "Latency",
                "Values": [0.1, 0.25, 1e-05, 3.0, 12345678901234567.0],
                "Counts": [1.0, 2, 3.5, 1.0, 1.0],
                "Unit": "Seconds",
            },
        ],
    }, None),
    ("cloudwatch", "PutMetricAlarm", "cpu-high", {
        "AlarmName": "fraud-model-cpu-high",
        "AlarmDescription": "CPU > 80% for 3 minutes",
        "ActionsEnabled": True,
        "AlarmActions": [TOPIC],
        "MetricName": "CPUUtilization",
        "Namespace": "AWS/ECS",
        "Statistic": "Average",
        "Dimensions": [
            {"Name": "ClusterName", "Value": "aviary"},
            {"Name": "ServiceName", "Value": "fraud-model-a"},
        ],
        "Period": 60,
        "EvaluationPeriods": 3,
        "Threshold": 80.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "Tags": TAGS_KV,
    }, None),
    ("cloudwatch", "PutDashboard", "body", {
        "DashboardName": "fraud-model",
        "DashboardBody": json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6,
                                                  "height": 3, "properties": {"markdown": "# hi"}}]}),
    }, None),
    ("sns", "Subscribe", "email-filter", {
        "TopicArn": TOPIC,
        "Protocol": "email",
        "Endpoint": "ml-team@example.com",
        "Attributes": {"FilterPolicy": json.dumps({"severity": ["critical"]})},
        "ReturnSubscriptionArn": True,
    }, None),
    ("sns", "SetTopicAttributes", "policy", {
        "TopicArn": TOPIC,
        "AttributeName": "Policy",
        "AttributeValue": json.dumps({"Statement": [{"Effect": "Allow", "Action": "SNS:Publish",
                                                     "Principal": {"Service": "events.amazonaws.com"},
                                                     "Resource": TOPIC}]}),
    }, None),
    ("sns", "CreateTopic", "attributes-tags", {
        "Name": "aviary-fraud",
        "Attributes": {"DisplayName": "aviary fraud-model", "FifoTopic": "false"},
        "Tags": TAGS_KV,
    }, None),
    ("sns", "Publish", "unicode", {
        "TopicArn": TOPIC,
        "Subject": "Rollback: fraud-model",
        "Message": "error-rate 0.05 > 0.02 \u2014 rolled back to r7 (\u00e9t\u00e9 ~ ok)",
    }, None),
    ("iam", "CreateRole", "tags", {
        "Path": "/aviary/",
        "RoleName": "aviary-fraud-task",
        "AssumeRolePolicyDocument": POLICY,
        "Description": "task role of fraud-model",
        "MaxSessionDuration": 3600,
        "Tags": TAGS_KV,
    }, None),
    ("iam", "PutRolePolicy", "inline", {
        "RoleName": "aviary-fraud-task",
        "PolicyName": "s3-read",
        "PolicyDocument": POLICY,
    }, None),
    ("sts", "AssumeRole", "session", {
        "RoleArn": "arn:aws:iam::%s:role/deployer" % ACCT,
        "RoleSessionName": "aviary-1700000000",
        "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
        "DurationSeconds": 900,
        "Tags": [{"Key": "project", "Value": "aviary"}],
        "TransitiveTagKeys": ["project"],
    }, None),
    ("sts", "GetCallerIdentity", "no-input", {}, None),
    # ---- EC2 ----
    ("ec2", "CreateVpc", "tag-specifications", {
        "CidrBlock": "10.40.0.0/16",
        "AmazonProvidedIpv6CidrBlock": False,
        "TagSpecifications": [
            {"ResourceType": "vpc", "Tags": TAGS_KV + [{"Key": "Name", "Value": "fraud model"}]}
        ],
    }, None),
    ("ec2", "DescribeSubnets", "filters", {
        "Filters": [
            {"Name": "vpc-id", "Values": [VPC]},
            {"Name": "tag:aviary.io/managed-by", "Values": ["aviary"]},
        ],
        "MaxResults": 50,
    }, None),
    ("ec2", "DescribeVpcs", "empty-lists", {"VpcIds": [], "Filters": []}, None),
    ("ec2", "AuthorizeSecurityGroupIngress", "ip-permissions", {
        "GroupId": SG,
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 8080,
                "ToPort": 8080,
                "UserIdGroupPairs": [
                    {"GroupId": "sg-0fedcba9876543210", "Description": "from the load balancer"}
                ],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "https"}],
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            },
        ],
        "TagSpecifications": [{"ResourceType": "security-group-rule", "Tags": TAGS_KV}],
    }, None),
    ("ec2", "CreateTags", "resources", {"Resources": [VPC, SUBNETS[0]], "Tags": TAGS_KV}, None),
    ("ec2", "CreateNatGateway", "client-token", {
        "SubnetId": SUBNETS[0],
        "AllocationId": "eipalloc-0123456789abcdef0",
        "ClientToken": "5a0e8a1b-3b7e-4c43-9d1b-7f3d2a7b6c10",
        "TagSpecifications": [{"ResourceType": "natgateway", "Tags": TAGS_KV}],
    }, None),
    ("ec2", "ModifyVpcAttribute", "bool-value", {
        "VpcId": VPC, "EnableDnsHostnames": {"Value": True},
    }, None),
    # ---- REST-XML ----
    ("s3", "PutObject", "metadata", {
        "Bucket": "aviary-churn-training",
        "Key": "data/train set/2023-01-01.csv",
        "ContentType": "text/csv",
        "Metadata": {"sha256": "9f86d081884c7d65", "source": "data/train.csv"},
        "ServerSideEncryption": "AES256",
        "Tagging": "aviary.io/managed-by=aviary&kind=data",
    }, b"a,b\n1,2\n"),
    ("s3", "ListObjectsV2", "query-params", {
        "Bucket": "aviary-churn-training",
        "Prefix": "data/train set/",
        "Delimiter": "/",
        "MaxKeys": 100,
        "ContinuationToken": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
        "StartAfter": "data/a+b",
    }, None),
    ("s3", "ListObjectVersions", "prefix", {"Bucket": "aviary-churn-training", "Prefix": "data/"}, None),
    ("s3", "PutBucketVersioning", "enabled", {
        "Bucket": "aviary-churn-training",
        "VersioningConfiguration": {"Status": "Enabled"},
    }, None),
    ("s3", "PutPublicAccessBlock", "all", {
        "Bucket": "aviary-churn-training",
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    }, None),
    ("s3", "PutBucketEncryption", "kms", {
        "Bucket": "aviary-churn-training",
        "ServerSideEncryptionConfiguration": {
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "alias/aviary",
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    }, None),
    ("s3", "PutBucketTagging", "tags", {
        "Bucket": "aviary-churn-training",
        "Tagging": {"TagSet": TAGS_KV + [{"Key": "a&b", "Value": "<x>"}]},
    }, None),
    ("s3", "CreateBucket", "location", {
        "Bucket": "aviary-churn-training",
        "CreateBucketConfiguration": {"LocationConstraint": REGION},
    }, None),
    ("s3", "CreateMultipartUpload", "uploads", {
        "Bucket": "aviary-churn-training", "Key": "data/big.bin", "ContentType": "application/octet-stream",
    }, None),
    ("s3", "UploadPart", "part", {
        "Bucket": "aviary-churn-training", "Key": "data/big.bin", "PartNumber": 2,
        "UploadId": "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA",
    }, b"\x00\x01\x02binary\xff"),
    ("s3", "CompleteMultipartUpload", "parts", {
        "Bucket": "aviary-churn-training",
        "Key": "data/big.bin",
        "UploadId": "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA",
        "MultipartUpload": {
            "Parts": [
                {"ETag": "\"a54357aff0632cce46d942af68356b38\"", "PartNumber": 1},
                {"ETag": "\"0c78aef83f66abc1fa1e8477f296d394\"", "PartNumber": 2},
            ]
        },
    }, None),
    ("s3", "CopyObject", "key-with-spaces", {
        "Bucket": "aviary-churn-training",
        "Key": "data/archive 2023/q1 results/train set.csv",
        "CopySource": "aviary-source/data/train set+1.csv",
        "MetadataDirective": "REPLACE",
        "Metadata": {"sha256": "9f86d081884c7d65"},
    }, None),
    ("s3", "CopyObject", "source-version", {
        "Bucket": "aviary-churn-training",
        "Key": "data/train.csv",
        "CopySource": "aviary-source/data/\u00fcber set.csv?versionId=3HL4kqtJ+lcpX",
    }, None),
    ("s3", "HeadObject", "if-modified-since", {
        "Bucket": "aviary-churn-training",
        "Key": "data/train.csv",
        "IfModifiedSince": 1700000000,
        "Range": "bytes=0-99",
    }, None),
    ("s3", "GetObject", "version", {
        "Bucket": "aviary-churn-training",
        "Key": "data/\u00fcber file~1.csv",
        "VersionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo",
    }, None),
    ("s3", "DeleteObject", "version", {
        "Bucket": "aviary-churn-training", "Key": "a/b/../c", "VersionId": "null",
    }, None),
    ("s3", "HeadBucket", "bucket", {"Bucket": "aviary-churn-training"}, None),
]


def fail(msg):
    sys.stderr.write("gen_serialize_golden: %s\n" % msg)
    sys.exit(2)


def to_botocore(value, shape, path):
    """aviary data model -> botocore params, structures in model member order."""
    t = shape.type_name
    if t == "structure":
        out = collections.OrderedDict()
        for name, mshape in shape.members.items():
            if name in value:
                out[name] = to_botocore(value[name], mshape, path + "." + name)
            elif mshape.metadata.get("idempotencyToken"):
                fail("%s.%s: give idempotency tokens explicitly (botocore's handler would "
                     "make a random one)" % (path, name))
        for name in value:
            if name not in shape.members:
                fail("%s: unknown member %s" % (path, name))
        return out
    if t == "list":
        return [to_botocore(v, shape.member, path + "[]") for v in value]
    if t == "map":
        return collections.OrderedDict(
            (k, to_botocore(v, shape.value, path + "." + k)) for k, v in value.items()
        )
    if t == "blob" and not shape.serialization.get("streaming"):
        return base64.b64decode(value, validate=True)
    return value


# botocore customizations (botocore/handlers.py) that change what is sent and
# that aviary's serializer mirrors; they run at the events botocore runs them.
MIRRORED_HANDLERS = (
    botocore.handlers.validate_bucket_name,
    botocore.handlers.handle_copy_source_param,
    botocore.handlers.validate_ascii_metadata,
    botocore.handlers.conditionally_calculate_md5,
)


def run_handlers(stage, service, operation, **kwargs):
    for entry in botocore.handlers.BUILTIN_HANDLERS:
        event, handler = entry[0], entry[1]
        if handler not in MIRRORED_HANDLERS:
            continue
        if event in ("%s.%s" % (stage, service), "%s.%s.%s" % (stage, service, operation)):
            handler(**kwargs)


def serialize(loader, service, operation, params, payload):
    model = botocore.model.ServiceModel(loader.load_service_model(service, "service-2"), service)
    op = model.operation_model(operation)
    bparams = to_botocore(params, op.input_shape, operation) if op.input_shape else {}
    if payload is not None:
        bparams[op.input_shape.serialization["payload"]] = payload
    run_handlers("before-parameter-build", service, operation, params=bparams, model=op)
    serializer = botocore.serialize.create_serializer(model.metadata["protocol"], True)
    req = serializer.serialize_to_request(bparams, op)
    botocore.awsrequest.prepare_request_dict(req, ENDPOINT)
    botocore.httpchecksum.resolve_request_checksum_algorithm(req, op, bparams)
    run_handlers("before-call", service, operation, params=req, model=op)
    botocore.httpchecksum.apply_request_checksum(req)
    prepared = botocore.awsrequest.create_request_object(req).prepare()
    url = urllib.parse.urlsplit(prepared.url)
    body = prepared.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    headers = collections.OrderedDict(
        (k.lower(), v if isinstance(v, str) else v.decode("utf-8"))
        for k, v in prepared.headers.items()
        if k.lower() not in ("content-length", "user-agent")
    )
    expected = collections.OrderedDict()
    expected["method"] = prepared.method
    expected["path"] = url.path
    expected["query"] = url.query
    expected["headers"] = headers
    if payload is not None:
        expected["payload_base64"] = base64.b64encode(body).decode("ascii")
    else:
        expected["body"] = body.decode("utf-8")
    return model.metadata["protocol"], expected


def build(loader):
    files = collections.OrderedDict()
    for service, operation, case, params, payload in CASES:
        protocol, expected = serialize(loader, service, operation, params, payload)
        doc = collections.OrderedDict()
        doc["generator"] = "tools/gen_serialize_golden.py (botocore %s)" % botocore.__version__
        doc["service"] = service
        doc["operation"] = operation
        doc["case"] = case
        doc["protocol"] = protocol
        doc["input"] = params
        if payload is not None:
            doc["payload_base64"] = base64.b64encode(payload).decode("ascii")
        doc["expected"] = expected
        name = "%s.%s.%s.json" % (service, operation, case)
        if name in files:
            fail("duplicate case %s" % name)
        files[name] = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if a golden file is stale")
    args = ap.parse_args()
    files = build(botocore.loaders.create_loader())
    stale = []
    if not args.check:
        os.makedirs(OUT_DIR, exist_ok=True)
    for name, text in files.items():
        path = os.path.join(OUT_DIR, name)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name)
            except OSError:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    extra = sorted(set(os.listdir(OUT_DIR)) - set(files)) if os.path.isdir(OUT_DIR) else []
    if args.check:
        if stale or extra:
            fail("stale golden files: %s" % ", ".join(stale + extra))
        print("gen_serialize_golden: %d golden files up to date" % len(files))
    else:
        for name in extra:
            os.unlink(os.path.join(OUT_DIR, name))
        print("gen_serialize_golden: wrote %d files to %s" % (len(files), os.path.relpath(OUT_DIR, ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
