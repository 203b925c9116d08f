#!/usr/bin/python3
"""Builds the response-parsing golden files in tests/golden/parse/.

Each case is a realistic HTTP response (status, headers, body) for a real
operation, written after the responses AWS documents. botocore's own parser
(botocore.parsers.create_parser(protocol).parse) reads it with the official
output shape, and the result, converted to aviary's data model, is stored as
the expected value. tests/unit/test_parse.c feeds the same response to
aws_protocol_parse_response / aws_protocol_parse_error and compares.

Conversion to aviary's data model (aws/protocol.h): datetimes become unix
seconds, blobs base64 text, ResponseMetadata is dropped, a streaming payload
(S3 GetObject Body) moves to "expected_payload". For errors, code, message and
request id come from botocore's error dict and retryable/throttling from
botocore's standard retry checkers. One documented difference: where botocore
reports a bare HTTP status as the code ("404" for a bodiless S3 HEAD error),
aviary uses a name (aws/protocol.h: 404 -> "NotFound", 403 -> "Forbidden",
... and "Http<status>" otherwise).

Besides the hand-written cases, every operation in aws/api/operations.txt
gets a "model" case: an example value for its whole output shape (every
member, nested lists of one and two items, maps, entities, timestamps with
and without milliseconds) serialized to the wire by the test emulator's
serializer (tests/emulator/awsemu/protocols), then parsed by botocore as
above. botocore stays the oracle; the emulator only supplies bytes.

Usage: /usr/bin/python3 tools/gen_parse_golden.py [--check] [outdir]
--check compares with the files on disk instead of writing them.
"""

import base64
import datetime
import json
import os
import sys

import botocore.session
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.retries import standard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTDIR = os.path.join(ROOT, "tests", "golden", "parse")

# Names aviary gives bodiless errors (aws/protocol.h); botocore uses str(status).
STATUS_CODES = {301: "PermanentRedirect", 302: "Found", 304: "NotModified",
                307: "TemporaryRedirect", 400: "BadRequest", 401: "Unauthorized",
                403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                409: "Conflict", 412: "PreconditionFailed"}

ELB_NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
CW_NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def query_ok(op, inner, ns, request_id="6581c0ac-f39f-11e5-bb98-57c8b8e4d9f0"):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{op}Response xmlns="{ns}">\n'
            f"  <{op}Result>{inner}</{op}Result>\n"
            f"  <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\n"
            f"</{op}Response>\n")


def ec2_ok(op, inner, request_id="7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{op}Response xmlns="{EC2_NS}">\n'
            f"  <requestId>{request_id}</requestId>{inner}\n</{op}Response>\n")


def query_error(ns, code, message, request_id, kind="Sender"):
    return (f'<ErrorResponse xmlns="{ns}">\n  <Error>\n    <Type>{kind}</Type>\n'
            f"    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n"
            f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n")


def ec2_error(code, message, request_id):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>")


def s3_error(code, message, request_id, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{code}</Code><Message>{message}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId>"
            "<HostId>eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran</HostId>"
            "</Error>")


def js(doc):
    return json.dumps(doc, indent=1)


JSON_HEADERS = {"content-type": "application/x-amz-json-1.1",
                "x-amzn-requestid": "0d2b4c8e-1f3a-4b5c-9d6e-7f8a9b0c1d2e"}
XML_HEADERS = {"content-type": "text/xml"}
S3_HEADERS = {"x-amz-request-id": "4442587FB7D0A2F9",
              "x-amz-id-2": "eftixk72aD6Ap51TnqcoF8eFidJG9Z/2mkiDFu8yU9AS1ed4OpIszj7UDNEHGran",
              "server": "AmazonS3"}

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/aviary"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-stable/73e2d6bc24d8a067"
TG2 = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-canary/09e8c1a2f4b5d6e7"
LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"
LISTENER = ("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/"
            "50dc6c495c0c9188/f2f7dc8efc522ab2")


def deployment(dep_id, status, td, desired, running, created, rollout):
    return {"id": dep_id, "status": status, "taskDefinition": td, "desiredCount": desired,
            "pendingCount": 0, "runningCount": running, "failedTasks": 0,
            "createdAt": created, "updatedAt": created + 61.25, "launchType": "FARGATE",
            "platformVersion": "1.4.0", "platformFamily": "Linux",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
                "securityGroups": ["sg-0123456789abcdef0"], "assignPublicIp": "DISABLED"}},
            "rolloutState": rollout, "rolloutStateReason": "ECS deployment " + dep_id +
            " completed."}


ECS_SERVICE = {
    "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/aviary/web-stable",
    "serviceName": "web-stable", "clusterArn": CLUSTER,
    "loadBalancers": [{"targetGroupArn": TG, "containerName": "web", "containerPort": 8080}],
    "serviceRegistries": [], "status": "ACTIVE", "desiredCount": 3, "runningCount": 3,
    "pendingCount": 0, "launchType": "FARGATE", "platformVersion": "LATEST",
    "platformFamily": "Linux",
    "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
    "deploymentConfiguration": {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200, "minimumHealthyPercent": 100},
    "deployments": [
        deployment("ecs-svc/9223370524386395547", "PRIMARY",
                   "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7", 3, 2,
                   1699999000.123, "IN_PROGRESS"),
        deployment("ecs-svc/9223370524386395000", "ACTIVE",
                   "arn:aws:ecs:us-east-1:123456789012:task-definition/web:6", 3, 1,
                   1699990000, "COMPLETED")],
    "roleArn": "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/"
               "AWSServiceRoleForECS",
    "events": [
        {"id": "8f0d3e5a-1b2c-4d3e-9f8a-7b6c5d4e3f2a", "createdAt": 1700000100.456,
         "message": "(service web-stable) has reached a steady state."},
        {"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "createdAt": 1700000000,
         "message": "(service web-stable) registered 1 targets in (target-group " + TG +
                    ") <\"quoted\" & \u00e9>"}],
    "createdAt": 1690000000.5, "placementConstraints": [], "placementStrategy": [],
    "networkConfiguration": {"awsvpcConfiguration": {
        "subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0123456789abcdef0"],
        "assignPublicIp": "DISABLED"}},
    "healthCheckGracePeriodSeconds": 30, "schedulingStrategy": "REPLICA",
    "deploymentController": {"type": "ECS"},
    "createdBy": "arn:aws:iam::123456789012:role/aviary",
    "enableECSManagedTags": True, "propagateTags": "SERVICE", "enableExecuteCommand": False,
    "tags": [{"key": "aviary:app", "value": "web"}, {"key": "aviary:slot", "value": "stable"}],
    "someFutureMember": {"ignored": True},
}

TASK_DEF = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8",
    "containerDefinitions": [{
        "name": "web", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v8",
        "cpu": 0, "memory": 512, "memoryReservation": 256,
        "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
        "essential": True,
        "environment": [{"name": "MODEL_PATH", "value": "s3://models/web/v8/model.tar.gz"},
                        {"name": "GREETING", "value": "a=b&c=d"}],
        "mountPoints": [], "volumesFrom": [],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/aviary/web", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "web"}},
        "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
                        "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 10}}],
    "family": "web",
    "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "networkMode": "awsvpc", "revision": 8, "volumes": [], "status": "ACTIVE",
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"},
                           {"name": "ecs.capability.execution-role-awslogs"}],
    "placementConstraints": [], "compatibilities": ["EC2", "FARGATE"],
    "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
    "registeredAt": 1700000200.789, "registeredBy": "arn:aws:sts::123456789012:assumed-role/aviary/x",
}


def lb_member(name, azs, sgs):
    az = "".join(f"<member><SubnetId>{s}</SubnetId><ZoneName>{z}</ZoneName>"
                 "<LoadBalancerAddresses/></member>" for s, z in azs)
    sg = "".join(f"<member>{g}</member>" for g in sgs)
    return (f"<member><LoadBalancerArn>{LB}</LoadBalancerArn><Scheme>internet-facing</Scheme>"
            f"<LoadBalancerName>{name}</LoadBalancerName><VpcId>vpc-3ac0fb5f</VpcId>"
            "<CanonicalHostedZoneId>Z35SXDOTRQ7X7K</CanonicalHostedZoneId>"
            "<CreatedTime>2016-03-25T21:26:12.920Z</CreatedTime>"
            f"<AvailabilityZones>{az}</AvailabilityZones><SecurityGroups>{sg}</SecurityGroups>"
            f"<DNSName>{name}-424835706.us-east-1.elb.amazonaws.com</DNSName>"
            "<State><Code>active</Code></State><Type>application</Type>"
            "<IpAddressType>ipv4</IpAddressType></member>")


TAGSET = ("<tagSet><item><key>Name</key><value>aviary &amp; friends &lt;prod&gt;</value></item>"
          "<item><key>aviary:app</key><value>web</value></item></tagSet>")


def s3_object(key, modified, etag, size):
    return (f"<Key>{key}</Key><LastModified>{modified}</LastModified>"
            f"<ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size>")


OWNER = ("<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>"
         "<DisplayName>mtd@amazon.com</DisplayName></Owner>")

CASES = [
    # ---------------- awsJson ----------------
    dict(service="ecs", operation="DescribeServices", case="deployments",
         headers=JSON_HEADERS, body=js({"services": [ECS_SERVICE], "failures": []})),
    dict(service="ecs", operation="DescribeServices", case="failures",
         headers=JSON_HEADERS, body=js({"services": [], "failures": [
             {"arn": "arn:aws:ecs:us-east-1:123456789012:service/aviary/missing",
              "reason": "MISSING"}]})),
    dict(service="ecs", operation="RegisterTaskDefinition", case="basic",
         headers=JSON_HEADERS, body=js({"taskDefinition": TASK_DEF, "tags": [
             {"key": "aviary:app", "value": "web"}]})),
    dict(service="ecs", operation="DescribeServices", case="error_not_found", status=400,
         headers=JSON_HEADERS, body=js({"__type": "ClusterNotFoundException",
                                         "message": "Cluster not found."})),
    dict(service="ecs", operation="DescribeServices", case="error_throttling", status=400,
         headers=JSON_HEADERS,
         body=js({"__type": "com.amazonaws.ecs.v20141113#ThrottlingException",
                  "message": "Rate exceeded"})),
    dict(service="ecs", operation="DescribeServices", case="error_server", status=500,
         headers=JSON_HEADERS, body=js({"__type": "ServerException",
                                         "message": "Service Unavailable. Please try again later."})),
    dict(service="sagemaker", operation="DescribeNotebookInstance", case="basic",
         headers=JSON_HEADERS, body=js({
             "NotebookInstanceArn": "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/lab",
             "NotebookInstanceName": "lab", "NotebookInstanceStatus": "InService",
             "Url": "lab.notebook.us-east-1.sagemaker.aws", "InstanceType": "ml.t3.medium",
             "SubnetId": "subnet-0a1b2c3d", "SecurityGroups": ["sg-0123456789abcdef0"],
             "RoleArn": "arn:aws:iam::123456789012:role/sagemaker-lab",
             "NetworkInterfaceId": "eni-0abc123def4567890",
             "LastModifiedTime": 1700000300.0, "CreationTime": 1699000000.25,
             "NotebookInstanceLifecycleConfigName": "aviary-lab",
             "DirectInternetAccess": "Disabled", "VolumeSizeInGB": 20,
             "AcceleratorTypes": [], "AdditionalCodeRepositories": [],
             "RootAccess": "Disabled", "PlatformIdentifier": "notebook-al2-v2",
             "InstanceMetadataServiceConfiguration": {
                 "MinimumInstanceMetadataServiceVersion": "2"}})),
    # Timestamps as strings (ISO 8601 with and without fractions, offsets,
    # epoch text): botocore accepts them, so aviary must too.
    dict(service="sagemaker", operation="DescribeNotebookInstance", case="string_timestamps",
         headers=JSON_HEADERS, body=js({
             "NotebookInstanceName": "lab", "NotebookInstanceStatus": "Pending",
             "LastModifiedTime": "2023-11-14T22:13:20.5+01:00",
             "CreationTime": "2023-11-03T08:26:40Z"})),
    dict(service="sagemaker", operation="DescribeNotebookInstance", case="error_validation",
         status=400, headers=JSON_HEADERS,
         body=js({"__type": "ValidationException",
                  "Message": "RecordNotFound: notebook instance 'lab' does not exist"})),
    dict(service="logs", operation="DescribeLogGroups", case="basic", headers=JSON_HEADERS,
         body=js({"logGroups": [
             {"logGroupName": "/aviary/web", "creationTime": 1699000000123,
              "retentionInDays": 30, "metricFilterCount": 0,
              "arn": "arn:aws:logs:us-east-1:123456789012:log-group:/aviary/web:*",
              "storedBytes": 10737418240},
             {"logGroupName": "/aviary/train", "creationTime": 1699000500000,
              "metricFilterCount": 2,
              "arn": "arn:aws:logs:us-east-1:123456789012:log-group:/aviary/train:*",
              "storedBytes": 0}],
             "nextToken": "/aviary/train/1699000500000"})),
    dict(service="logs", operation="DescribeLogGroups", case="empty", headers=JSON_HEADERS,
         body=js({"logGroups": []})),
    dict(service="logs", operation="DescribeLogGroups", case="error_not_found", status=400,
         headers=JSON_HEADERS, body=js({"__type": "ResourceNotFoundException",
                                         "message": "The specified log group does not exist."})),
    dict(service="application-autoscaling", operation="DescribeScalableTargets", case="basic",
         headers=JSON_HEADERS, body=js({"ScalableTargets": [{
             "ServiceNamespace": "ecs", "ResourceId": "service/aviary/web-stable",
             "ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 2,
             "MaxCapacity": 10,
             "RoleARN": "arn:aws:iam::123456789012:role/aws-service-role/ecs.application-"
                        "autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_"
                        "ECSService",
             "CreationTime": 1.699000000951E9,
             "SuspendedState": {"DynamicScalingInSuspended": False,
                                "DynamicScalingOutSuspended": False,
                                "ScheduledScalingSuspended": True}}]})),
    dict(service="application-autoscaling", operation="DescribeScalableTargets",
         case="error_concurrent", status=400, headers=JSON_HEADERS,
         body=js({"__type": "ConcurrentUpdateException", "Message": "Concurrent update"})),

    # ---------------- Query (elbv2, cloudwatch, sns, iam, sts) ----------------
    dict(service="elbv2", operation="DescribeLoadBalancers", case="single",
         headers=XML_HEADERS, body=query_ok("DescribeLoadBalancers", "<LoadBalancers>" + lb_member(
             "web", [("subnet-8360a9e7", "us-east-1a")], ["sg-5943793c"]) + "</LoadBalancers>",
             ELB_NS)),
    dict(service="elbv2", operation="DescribeLoadBalancers", case="multiple",
         headers=XML_HEADERS, body=query_ok("DescribeLoadBalancers", "<LoadBalancers>" + lb_member(
             "web", [("subnet-8360a9e7", "us-east-1a"), ("subnet-b7d581c0", "us-east-1b")],
             ["sg-5943793c", "sg-0123456789abcdef0"]) + lb_member("api", [], []) +
             "</LoadBalancers><NextMarker>bWFya2VyLTI=</NextMarker>", ELB_NS)),
    dict(service="elbv2", operation="DescribeLoadBalancers", case="empty",
         headers=XML_HEADERS, body=query_ok("DescribeLoadBalancers", "<LoadBalancers/>", ELB_NS)),
    dict(service="elbv2", operation="DescribeTargetGroups", case="basic",
         headers=XML_HEADERS, body=query_ok("DescribeTargetGroups", (
             "<TargetGroups><member>"
             f"<TargetGroupArn>{TG}</TargetGroupArn><TargetGroupName>web-stable</TargetGroupName>"
             "<Protocol>HTTP</Protocol><Port>8080</Port><VpcId>vpc-3ac0fb5f</VpcId>"
             "<HealthCheckProtocol>HTTP</HealthCheckProtocol><HealthCheckPort>traffic-port"
             "</HealthCheckPort><HealthCheckEnabled>true</HealthCheckEnabled>"
             "<HealthCheckIntervalSeconds>15</HealthCheckIntervalSeconds>"
             "<HealthCheckTimeoutSeconds>5</HealthCheckTimeoutSeconds>"
             "<HealthyThresholdCount>2</HealthyThresholdCount>"
             "<UnhealthyThresholdCount>3</UnhealthyThresholdCount>"
             "<HealthCheckPath>/health?deep=1&amp;fast=0</HealthCheckPath>"
             "<Matcher><HttpCode>200-299</HttpCode></Matcher>"
             f"<LoadBalancerArns><member>{LB}</member></LoadBalancerArns>"
             "<TargetType>ip</TargetType><ProtocolVersion>HTTP1</ProtocolVersion>"
             "<IpAddressType>ipv4</IpAddressType></member></TargetGroups>"), ELB_NS)),
    dict(service="elbv2", operation="DescribeListeners", case="forward_config",
         headers=XML_HEADERS, body=query_ok("DescribeListeners", (
             "<Listeners><member>"
             f"<ListenerArn>{LISTENER}</ListenerArn><LoadBalancerArn>{LB}</LoadBalancerArn>"
             "<Port>443</Port><Protocol>HTTPS</Protocol>"
             "<Certificates><member><CertificateArn>arn:aws:acm:us-east-1:123456789012:"
             "certificate/12345678-1234-1234-1234-123456789012</CertificateArn></member>"
             "</Certificates><SslPolicy>ELBSecurityPolicy-TLS13-1-2-2021-06</SslPolicy>"
             "<DefaultActions><member><Type>forward</Type><Order>1</Order>"
             "<ForwardConfig><TargetGroups>"
             f"<member><TargetGroupArn>{TG}</TargetGroupArn><Weight>90</Weight></member>"
             f"<member><TargetGroupArn>{TG2}</TargetGroupArn><Weight>10</Weight></member>"
             "</TargetGroups><TargetGroupStickinessConfig><Enabled>false</Enabled>"
             "<DurationSeconds>3600</DurationSeconds></TargetGroupStickinessConfig>"
             "</ForwardConfig></member></DefaultActions>"
             "<AlpnPolicy/></member></Listeners>"), ELB_NS)),
    dict(service="elbv2", operation="DescribeTargetHealth", case="basic",
         headers=XML_HEADERS, body=query_ok("DescribeTargetHealth", (
             "<TargetHealthDescriptions>"
             "<member><Target><Id>10.0.1.17</Id><Port>8080</Port>"
             "<AvailabilityZone>us-east-1a</AvailabilityZone></Target>"
             "<HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>healthy</State>"
             "</TargetHealth></member>"
             "<member><Target><Id>10.0.2.33</Id><Port>8080</Port></Target>"
             "<HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unhealthy</State>"
             "<Reason>Target.ResponseCodeMismatch</Reason><Description>Health checks failed "
             "with these codes: [502]</Description></TargetHealth></member>"
             "</TargetHealthDescriptions>"), ELB_NS)),
    dict(service="elbv2", operation="DescribeTags", case="basic",
         headers=XML_HEADERS, body=query_ok("DescribeTags", (
             "<TagDescriptions>"
             f"<member><ResourceArn>{LB}</ResourceArn><Tags>"
             "<member><Key>aviary:app</Key><Value>web</Value></member>"
             "<member><Key>note</Key><Value>&lt;b&gt;A &amp; B&lt;/b&gt; &#233;t&#xE9;</Value>"
             "</member></Tags></member>"
             f"<member><ResourceArn>{TG}</ResourceArn><Tags/></member>"
             "</TagDescriptions>"), ELB_NS)),
    dict(service="elbv2", operation="DescribeLoadBalancers", case="error_not_found",
         status=400, headers=XML_HEADERS,
         body=query_error(ELB_NS, "LoadBalancerNotFound",
                          "One or more load balancers not found",
                          "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b")),
    dict(service="cloudwatch", operation="GetMetricData", case="basic",
         headers=XML_HEADERS, body=query_ok("GetMetricData", (
             "<MetricDataResults>"
             "<member><Id>m1</Id><Label>RequestCount</Label>"
             "<Timestamps><member>2023-11-14T22:15:00Z</member>"
             "<member>2023-11-14T22:14:00Z</member><member>2023-11-14T22:13:00Z</member>"
             "</Timestamps><Values><member>125.0</member><member>3</member>"
             "<member>1.5E2</member></Values><StatusCode>Complete</StatusCode></member>"
             "<member><Id>m2</Id><Label>HTTPCode_Target_5XX_Count</Label>"
             "<Timestamps><member>2023-11-14T22:15:00.000Z</member></Timestamps>"
             "<Values><member>0.25</member></Values><StatusCode>PartialData</StatusCode>"
             "</member>"
             "<member><Id>m3</Id><Label>TargetResponseTime</Label><Timestamps/><Values/>"
             "<StatusCode>Complete</StatusCode></member>"
             "</MetricDataResults><NextToken>eyJuZXh0IjoiMiJ9</NextToken><Messages/>"), CW_NS)),
    dict(service="cloudwatch", operation="DescribeAlarms", case="basic",
         headers=XML_HEADERS, body=query_ok("DescribeAlarms", (
             "<MetricAlarms><member>"
             "<AlarmName>web-5xx</AlarmName>"
             "<AlarmArn>arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-5xx</AlarmArn>"
             "<AlarmDescription>5xx rate &gt; 1%</AlarmDescription>"
             "<AlarmConfigurationUpdatedTimestamp>2023-11-14T22:13:20.123Z"
             "</AlarmConfigurationUpdatedTimestamp><ActionsEnabled>true</ActionsEnabled>"
             "<OKActions/><AlarmActions><member>arn:aws:sns:us-east-1:123456789012:aviary-alerts"
             "</member></AlarmActions><InsufficientDataActions/>"
             "<StateValue>OK</StateValue><StateReason>Threshold Crossed: 1 datapoint [0.0 "
             "(14/11/23 22:10:00)] was not greater than the threshold (1.0).</StateReason>"
             "<StateReasonData>{&quot;version&quot;:&quot;1.0&quot;}</StateReasonData>"
             "<StateUpdatedTimestamp>2023-11-14T22:13:20Z</StateUpdatedTimestamp>"
             "<MetricName>HTTPCode_Target_5XX_Count</MetricName>"
             "<Namespace>AWS/ApplicationELB</Namespace><Statistic>Sum</Statistic>"
             "<Dimensions><member><Name>LoadBalancer</Name><Value>app/web/50dc6c495c0c9188"
             "</Value></member><member><Name>TargetGroup</Name><Value>targetgroup/web-stable/"
             "73e2d6bc24d8a067</Value></member></Dimensions>"
             "<Period>60</Period><EvaluationPeriods>3</EvaluationPeriods>"
             "<DatapointsToAlarm>2</DatapointsToAlarm><Threshold>1.0</Threshold>"
             "<ComparisonOperator>GreaterThanThreshold</ComparisonOperator>"
             "<TreatMissingData>notBreaching</TreatMissingData>"
             "<StateTransitionedTimestamp>2023-11-14T22:13:20Z</StateTransitionedTimestamp>"
             "</member></MetricAlarms><CompositeAlarms/>"), CW_NS)),
    dict(service="cloudwatch", operation="GetMetricData", case="error_throttling",
         status=400, headers=XML_HEADERS,
         body=query_error(CW_NS, "Throttling", "Rate exceeded",
                          "b2c3d4e5-1111-4e5f-8a9b-0c1d2e3f4a5b")),
    dict(service="sns", operation="ListSubscriptionsByTopic", case="basic",
         headers=XML_HEADERS, body=query_ok("ListSubscriptionsByTopic", (
             "<Subscriptions>"
             "<member><TopicArn>arn:aws:sns:us-east-1:123456789012:aviary-alerts</TopicArn>"
             "<Protocol>email</Protocol><SubscriptionArn>arn:aws:sns:us-east-1:123456789012:"
             "aviary-alerts:80289ba6-0fd4-4079-afb4-ce8c8260f0ca</SubscriptionArn>"
             "<Owner>123456789012</Owner><Endpoint>ops+alerts@example.com</Endpoint></member>"
             "<member><TopicArn>arn:aws:sns:us-east-1:123456789012:aviary-alerts</TopicArn>"
             "<Protocol>https</Protocol><SubscriptionArn>PendingConfirmation</SubscriptionArn>"
             "<Owner>123456789012</Owner><Endpoint>https://hooks.example.com/x?a=1&amp;b=2"
             "</Endpoint></member></Subscriptions>"
             "<NextToken>AAEDtVS8I3fLl2Fk9e6gCqpBI7hYTBl7mR5ev64cb+YMZo=</NextToken>"), SNS_NS)),
    dict(service="sns", operation="GetTopicAttributes", case="map",
         headers=XML_HEADERS, body=query_ok("GetTopicAttributes", (
             "<Attributes>"
             "<entry><key>Owner</key><value>123456789012</value></entry>"
             "<entry><key>Policy</key><value>{&quot;Version&quot;:&quot;2008-10-17&quot;,"
             "&quot;Statement&quot;:[{&quot;Effect&quot;:&quot;Allow&quot;}]}</value></entry>"
             "<entry><key>TopicArn</key><value>arn:aws:sns:us-east-1:123456789012:"
             "aviary-alerts</value></entry>"
             "<entry><key>DisplayName</key><value></value></entry>"
             "<entry><key>SubscriptionsConfirmed</key><value>1</value></entry>"
             "</Attributes>"), SNS_NS)),
    dict(service="sns", operation="GetTopicAttributes", case="error_not_found", status=404,
         headers=XML_HEADERS, body=query_error(SNS_NS, "NotFound", "Topic does not exist",
                                               "c3d4e5f6-2222-4e5f-8a9b-0c1d2e3f4a5b")),
    dict(service="iam", operation="GetRole", case="basic",
         headers=XML_HEADERS, body=query_ok("GetRole", (
             "<Role><Path>/aviary/</Path><RoleName>web-task</RoleName>"
             "<RoleId>AROAJ52OTH4H7LEXAMPLE</RoleId>"
             "<Arn>arn:aws:iam::123456789012:role/aviary/web-task</Arn>"
             "<CreateDate>2023-11-14T22:13:20Z</CreateDate>"
             "<AssumeRolePolicyDocument>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22"
             "%3A%5B%7B%22Effect%22%3A%22Allow%22%7D%5D%7D</AssumeRolePolicyDocument>"
             "<Description>Task role for web</Description>"
             "<MaxSessionDuration>3600</MaxSessionDuration>"
             "<Tags><member><Key>aviary:app</Key><Value>web</Value></member></Tags>"
             "<RoleLastUsed><LastUsedDate>2023-11-15T01:02:03Z</LastUsedDate>"
             "<Region>us-east-1</Region></RoleLastUsed></Role>"), IAM_NS)),
    dict(service="iam", operation="ListAttachedRolePolicies", case="basic",
         headers=XML_HEADERS, body=query_ok("ListAttachedRolePolicies", (
             "<AttachedPolicies>"
             "<member><PolicyName>AmazonECSTaskExecutionRolePolicy</PolicyName>"
             "<PolicyArn>arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
             "</PolicyArn></member></AttachedPolicies><IsTruncated>true</IsTruncated>"
             "<Marker>AAIxYWJj</Marker>"), IAM_NS)),
    dict(service="iam", operation="GetRole", case="error_no_such_entity", status=404,
         headers=XML_HEADERS, body=query_error(IAM_NS, "NoSuchEntity",
                                               "The role with name web-task cannot be found.",
                                               "d4e5f6a7-3333-4e5f-8a9b-0c1d2e3f4a5b")),
    dict(service="sts", operation="AssumeRole", case="basic",
         headers=XML_HEADERS, body=query_ok("AssumeRole", (
             "<Credentials><AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
             "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>"
             "<SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW"
             "LWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGd</SessionToken>"
             "<Expiration>2023-11-14T23:13:20Z</Expiration></Credentials>"
             "<AssumedRoleUser><AssumedRoleId>AROA3XFRBF535PLBIFPI4:aviary</AssumedRoleId>"
             "<Arn>arn:aws:sts::123456789012:assumed-role/deploy/aviary</Arn></AssumedRoleUser>"
             "<PackedPolicySize>6</PackedPolicySize><SourceIdentity>aviary</SourceIdentity>"),
             STS_NS)),
    dict(service="sts", operation="GetCallerIdentity", case="basic",
         headers=XML_HEADERS, body=query_ok("GetCallerIdentity", (
             "<Arn>arn:aws:sts::123456789012:assumed-role/deploy/aviary</Arn>"
             "<UserId>AROA3XFRBF535PLBIFPI4:aviary</UserId><Account>123456789012</Account>"),
             STS_NS)),
    dict(service="sts", operation="AssumeRole", case="error_access_denied", status=403,
         headers=XML_HEADERS, body=query_error(
             STS_NS, "AccessDenied", "User: arn:aws:iam::123456789012:user/x is not authorized"
             " to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/deploy",
             "e5f6a7b8-4444-4e5f-8a9b-0c1d2e3f4a5b")),

    # ---------------- EC2 ----------------
    dict(service="ec2", operation="DescribeVpcs", case="tags",
         headers=XML_HEADERS, body=ec2_ok("DescribeVpcs", (
             "<vpcSet><item><vpcId>vpc-0a60eb65b4EXAMPLE</vpcId><ownerId>123456789012</ownerId>"
             "<state>available</state><cidrBlock>10.0.0.0/16</cidrBlock>"
             "<cidrBlockAssociationSet><item><cidrBlock>10.0.0.0/16</cidrBlock>"
             "<associationId>vpc-cidr-assoc-0abcd1234EXAMPLE</associationId>"
             "<cidrBlockState><state>associated</state></cidrBlockState></item>"
             "</cidrBlockAssociationSet><dhcpOptionsId>dopt-19edf471</dhcpOptionsId>"
             f"{TAGSET}<instanceTenancy>default</instanceTenancy><isDefault>false</isDefault>"
             "</item></vpcSet>"))),
    dict(service="ec2", operation="DescribeVpcs", case="empty",
         headers=XML_HEADERS, body=ec2_ok("DescribeVpcs", "<vpcSet/>")),
    dict(service="ec2", operation="DescribeSubnets", case="tags",
         headers=XML_HEADERS, body=ec2_ok("DescribeSubnets", "<subnetSet>" + "".join(
             f"<item><subnetId>subnet-{i}a1b2c3d</subnetId><subnetArn>arn:aws:ec2:us-east-1:"
             f"123456789012:subnet/subnet-{i}a1b2c3d</subnetArn><state>available</state>"
             f"<vpcId>vpc-0a60eb65b4EXAMPLE</vpcId><cidrBlock>10.0.{i}.0/24</cidrBlock>"
             f"<ipv6CidrBlockAssociationSet/><availableIpAddressCount>{250 - i}"
             f"</availableIpAddressCount><availabilityZone>us-east-1{'ab'[i]}"
             f"</availabilityZone><availabilityZoneId>use1-az{i + 1}</availabilityZoneId>"
             "<defaultForAz>false</defaultForAz><mapPublicIpOnLaunch>" +
             ("true" if i == 0 else "false") + "</mapPublicIpOnLaunch>"
             "<assignIpv6AddressOnCreation>false</assignIpv6AddressOnCreation>"
             "<ownerId>123456789012</ownerId>" + (TAGSET if i == 0 else "") +
             "<privateDnsNameOptionsOnLaunch><hostnameType>ip-name</hostnameType>"
             "<enableResourceNameDnsARecord>false</enableResourceNameDnsARecord>"
             "<enableResourceNameDnsAAAARecord>false</enableResourceNameDnsAAAARecord>"
             "</privateDnsNameOptionsOnLaunch></item>" for i in range(2)) +
             "</subnetSet><nextToken>eyJ2IjoiMiJ9</nextToken>")),
    dict(service="ec2", operation="DescribeSecurityGroups", case="ip_permissions",
         headers=XML_HEADERS, body=ec2_ok("DescribeSecurityGroups", (
             "<securityGroupInfo><item><ownerId>123456789012</ownerId>"
             "<groupId>sg-0123456789abcdef0</groupId><groupName>web-alb</groupName>"
             "<groupDescription>ALB for web: 80 &amp; 443</groupDescription>"
             "<vpcId>vpc-0a60eb65b4EXAMPLE</vpcId>"
             "<ipPermissions>"
             "<item><ipProtocol>tcp</ipProtocol><fromPort>443</fromPort><toPort>443</toPort>"
             "<groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp><description>HTTPS from "
             "anywhere</description></item></ipRanges><ipv6Ranges><item><cidrIpv6>::/0"
             "</cidrIpv6></item></ipv6Ranges><prefixListIds/></item>"
             "<item><ipProtocol>tcp</ipProtocol><fromPort>8080</fromPort><toPort>8080</toPort>"
             "<groups><item><userId>123456789012</userId><groupId>sg-0fedcba9876543210"
             "</groupId></item></groups><ipRanges/><ipv6Ranges/><prefixListIds/></item>"
             "</ipPermissions>"
             "<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item>"
             "<cidrIp>0.0.0.0/0</cidrIp></item></ipRanges><ipv6Ranges/><prefixListIds/></item>"
             f"</ipPermissionsEgress>{TAGSET}</item></securityGroupInfo>"))),
    dict(service="ec2", operation="DescribeNatGateways", case="basic",
         headers=XML_HEADERS, body=ec2_ok("DescribeNatGateways", (
             "<natGatewaySet><item><createTime>2023-11-14T22:13:20.000Z</createTime>"
             "<natGatewayAddressSet><item><allocationId>eipalloc-0abc1234</allocationId>"
             "<networkInterfaceId>eni-0abc1234def567890</networkInterfaceId>"
             "<privateIp>10.0.0.57</privateIp><publicIp>203.0.113.25</publicIp>"
             "<associationId>eipassoc-0abc1234</associationId><isPrimary>true</isPrimary>"
             "<status>succeeded</status></item></natGatewayAddressSet>"
             "<natGatewayId>nat-05dba92075d71c408</natGatewayId><state>available</state>"
             "<subnetId>subnet-0a1b2c3d</subnetId><vpcId>vpc-0a60eb65b4EXAMPLE</vpcId>"
             "<connectivityType>public</connectivityType>"
             "<tagSet><item><key>aviary:app</key><value>net</value></item></tagSet></item>"
             "<item><createTime>2023-11-10T08:00:00+00:00</createTime>"
             "<deleteTime>2023-11-11T09:30:00.5-05:00</deleteTime>"
             "<failureCode>Gateway.NotAttached</failureCode><failureMessage>Network "
             "vpc-0a60eb65b4EXAMPLE has no Internet gateway attached</failureMessage>"
             "<natGatewayAddressSet/><natGatewayId>nat-0f1e2d3c4b5a69788</natGatewayId>"
             "<state>failed</state><subnetId>subnet-0a1b2c3d</subnetId>"
             "<vpcId>vpc-0a60eb65b4EXAMPLE</vpcId><connectivityType>public</connectivityType>"
             "<tagSet/></item></natGatewaySet>"))),
    dict(service="ec2", operation="CreateVpc", case="basic",
         headers=XML_HEADERS, body=ec2_ok("CreateVpc", (
             "<vpc><vpcId>vpc-1a2b3c4d</vpcId><state>pending</state>"
             "<cidrBlock>10.32.0.0/16</cidrBlock><cidrBlockAssociationSet><item>"
             "<cidrBlock>10.32.0.0/16</cidrBlock><associationId>vpc-cidr-assoc-0123</associationId>"
             "<cidrBlockState><state>associated</state></cidrBlockState></item>"
             "</cidrBlockAssociationSet><ipv6CidrBlockAssociationSet/>"
             "<dhcpOptionsId>dopt-1a2b3c4d2</dhcpOptionsId><instanceTenancy>default"
             "</instanceTenancy><ownerId>123456789012</ownerId><isDefault>false</isDefault>"
             "<tagSet><item><key>Name</key><value>aviary</value></item></tagSet></vpc>"))),
    dict(service="ec2", operation="DescribeVpcs", case="error_not_found", status=400,
         headers=XML_HEADERS, body=ec2_error("InvalidVpcID.NotFound",
                                             "The vpc ID 'vpc-1234' does not exist",
                                             "f6a7b8c9-5555-4e5f-8a9b-0c1d2e3f4a5b")),
    dict(service="ec2", operation="CreateVpc", case="error_request_limit", status=503,
         headers=XML_HEADERS, body=ec2_error("RequestLimitExceeded", "Request limit exceeded.",
                                             "a7b8c9d0-6666-4e5f-8a9b-0c1d2e3f4a5b")),

    # ---------------- REST-XML (S3) ----------------
    dict(service="s3", operation="ListObjectsV2", case="single",
         headers=S3_HEADERS, body=(
             f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_NS}">'
             "<Name>aviary-manifests</Name><Prefix>apps/</Prefix><KeyCount>1</KeyCount>"
             "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
             "<Contents>" + s3_object("apps/web.yaml", "2023-11-14T22:13:20.000Z",
                                      "599bab3ed2c697f1d26842727561fd94", 1423) +
             "<StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>")),
    dict(service="s3", operation="ListObjectsV2", case="multiple_prefixes",
         headers=S3_HEADERS, body=(
             f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_NS}">'
             "<Name>aviary-manifests</Name><Prefix></Prefix><Delimiter>/</Delimiter>"
             "<KeyCount>4</KeyCount><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>"
             "<ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>"
             "<NextContinuationToken>1w41l63U0xa8q7smH50vCxyTQqdxo69O3EmK28Bi5PcROI4wI/EyIJg=="
             "</NextContinuationToken><StartAfter>a</StartAfter>"
             "<Contents>" + s3_object("README &amp; notes.txt", "2023-11-14T22:13:20.000Z",
                                      "d41d8cd98f00b204e9800998ecf8427e", 0) +
             "<StorageClass>STANDARD</StorageClass></Contents>"
             "<CommonPrefixes><Prefix>apps/</Prefix></CommonPrefixes>"
             "<Contents>" + s3_object("web.yaml", "2023-11-13T10:00:00Z",
                                      "3858f62230ac3c915f300c664312c11f-9", 83886080) +
             "<ChecksumAlgorithm>SHA256</ChecksumAlgorithm>"
             "<StorageClass>STANDARD_IA</StorageClass>"
             f"{OWNER}</Contents>"
             "<CommonPrefixes><Prefix>models/</Prefix></CommonPrefixes>"
             "</ListBucketResult>")),
    dict(service="s3", operation="ListObjectsV2", case="empty",
         headers=S3_HEADERS, body=(
             f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_NS}">'
             "<Name>aviary-manifests</Name><Prefix>none/</Prefix><KeyCount>0</KeyCount>"
             "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>")),
    dict(service="s3", operation="ListObjectVersions", case="versions_and_markers",
         headers=S3_HEADERS, body=(
             f'<?xml version="1.0" encoding="UTF-8"?>\n<ListVersionsResult xmlns="{S3_NS}">'
             "<Name>aviary-state</Name><Prefix>web</Prefix><KeyMarker></KeyMarker>"
             "<VersionIdMarker></VersionIdMarker><MaxKeys>5</MaxKeys>"
             "<IsTruncated>true</IsTruncated><NextKeyMarker>web.json</NextKeyMarker>"
             "<NextVersionIdMarker>3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"
             "</NextVersionIdMarker>"
             "<DeleteMarker>" + OWNER + "<Key>web.json</Key>"
             "<VersionId>QUpfdndhfd8438MNFDN93jdnJFkdmqnh893</VersionId><IsLatest>true</IsLatest>"
             "<LastModified>2023-11-14T22:13:20.000Z</LastModified></DeleteMarker>"
             "<Version>" + s3_object("web.json", "2023-11-13T22:13:20.000Z",
                                     "fba9dede5f27731c9771645a39863328", 434234) +
             "<VersionId>3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo</VersionId>"
             "<IsLatest>false</IsLatest><StorageClass>STANDARD</StorageClass>" + OWNER +
             "</Version>"
             "<Version>" + s3_object("web.json", "2023-11-12T22:13:20.000Z",
                                     "9b2cf535f27731c974343645a3985328", 166434) +
             "<VersionId>UIORUnfndfhnw89493jJFJ</VersionId><IsLatest>false</IsLatest>"
             "<StorageClass>STANDARD</StorageClass>" + OWNER + "</Version>"
             "<DeleteMarker>" + OWNER + "<Key>web.old.json</Key>"
             "<VersionId>null</VersionId><IsLatest>true</IsLatest>"
             "<LastModified>2023-11-11T22:13:20.000Z</LastModified></DeleteMarker>"
             "</ListVersionsResult>")),
    dict(service="s3", operation="GetObject", case="metadata",
         headers=dict(S3_HEADERS, **{
             "last-modified": "Tue, 14 Nov 2023 22:13:20 GMT", "content-length": "27",
             "etag": '"e5b8b7d2b1a2f4c6d8e0f1a2b3c4d5e6"', "content-type": "application/yaml",
             "accept-ranges": "bytes", "x-amz-version-id": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
             "x-amz-server-side-encryption": "AES256", "cache-control": "no-cache",
             "x-amz-meta-aviary-revision": "7", "x-amz-meta-owner": "team ml",
             "x-amz-tagging-count": "2", "x-amz-mp-parts-count": "3",
             "x-amz-delete-marker": "false",
             "expires": "Wed, 15 Nov 2023 00:00:00 GMT"}),
         body="kind: App\nname: web & api\n"),
    dict(service="s3", operation="HeadObject", case="basic",
         headers=dict(S3_HEADERS, **{
             "last-modified": "Mon, 13 Nov 2023 10:00:00 GMT", "content-length": "83886080",
             "etag": '"3858f62230ac3c915f300c664312c11f-9"', "content-type": "binary/octet-stream",
             "accept-ranges": "bytes", "x-amz-storage-class": "STANDARD_IA",
             "x-amz-meta-sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
             "x-amz-restore": 'ongoing-request="false", expiry-date="Fri, 21 Dec 2023 00:00:00 GMT"',
             "x-amz-object-lock-retain-until-date": "2024-01-01T00:00:00.000Z",
             "x-amz-bucket-key-enabled": "true"}),
         body=""),
    dict(service="s3", operation="GetBucketVersioning", case="enabled",
         headers=S3_HEADERS, body=(
             f'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="{S3_NS}">'
             "<Status>Enabled</Status><MfaDelete>Disabled</MfaDelete></VersioningConfiguration>")),
    dict(service="s3", operation="GetBucketVersioning", case="never_enabled",
         headers=S3_HEADERS, body=(
             f'<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="{S3_NS}"/>')),
    dict(service="s3", operation="CompleteMultipartUpload", case="basic",
         headers=dict(S3_HEADERS, **{"x-amz-version-id": "Zm9vYmFy",
                                     "x-amz-server-side-encryption": "aws:kms",
                                     "x-amz-server-side-encryption-aws-kms-key-id":
                                         "arn:aws:kms:us-east-1:123456789012:key/abcd",
                                     "x-amz-server-side-encryption-bucket-key-enabled": "true"}),
         body=(f'<?xml version="1.0" encoding="UTF-8"?>\n'
               f'<CompleteMultipartUploadResult xmlns="{S3_NS}">'
               "<Location>https://aviary-models.s3.amazonaws.com/models/web/v8/model.tar.gz"
               "</Location><Bucket>aviary-models</Bucket><Key>models/web/v8/model.tar.gz</Key>"
               "<ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
               "</CompleteMultipartUploadResult>")),
    dict(service="s3", operation="GetObject", case="error_no_such_key", status=404,
         headers=dict(S3_HEADERS, **{"content-type": "application/xml"}),
         body=s3_error("NoSuchKey", "The specified key does not exist.", "4442587FB7D0A2F9",
                       "<Key>apps/missing.yaml</Key>")),
    dict(service="s3", operation="PutObject", case="error_slow_down", status=503,
         headers=dict(S3_HEADERS, **{"content-type": "application/xml"}),
         body=s3_error("SlowDown", "Please reduce your request rate.", "4442587FB7D0A2F9")),
    dict(service="s3", operation="ListObjectsV2", case="error_internal", status=500,
         headers=dict(S3_HEADERS, **{"content-type": "application/xml"}),
         body=s3_error("InternalError", "We encountered an internal error. Please try again.",
                       "4442587FB7D0A2F9")),
    dict(service="s3", operation="HeadObject", case="error_bodiless_404", status=404,
         headers=S3_HEADERS, body=""),
    dict(service="s3", operation="HeadObject", case="error_bodiless_403", status=403,
         headers=S3_HEADERS, body=""),
    dict(service="s3", operation="HeadObject", case="error_bodiless_301", status=301,
         headers=dict(S3_HEADERS, **{"x-amz-bucket-region": "eu-west-1"}), body=""),
    dict(service="s3", operation="GetObject", case="error_not_modified", status=304,
         headers=S3_HEADERS, body=""),
]


class _HttpResponse:
    def __init__(self, status):
        self.status_code = status


def to_model(value):
    """botocore's parsed value -> aviary's data model (JSON-compatible)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return round(value.timestamp(), 6)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: to_model(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_model(v) for v in value]
    return value


def aviary_code(code, status, body):
    """botocore's code, except that bare statuses get aviary's names."""
    if code == str(status):
        if not body and status in STATUS_CODES:
            return STATUS_CODES[status]
        return f"Http{status}"
    return code


def build(session, case):
    model = session.get_service_model(case["service"])
    op = model.operation_model(case["operation"])
    status = case.get("status", 200)
    headers = case.get("headers", {})
    body = case["body"].encode("utf-8")
    parser = create_parser(model.metadata["protocol"])
    parsed = parser.parse({"body": body, "headers": HeadersDict(headers), "status_code": status},
                          op.output_shape)
    out = {"service": case["service"], "operation": case["operation"], "case": case["case"],
           "protocol": model.metadata["protocol"], "status": status, "headers": headers,
           "body": case["body"]}
    if status >= 300:
        err = parsed["Error"]
        ctx = standard.RetryContext(attempt_number=1, operation_model=op, parsed_response=parsed,
                                    http_response=_HttpResponse(status))
        out["expected_error"] = {
            "code": aviary_code(err.get("Code", ""), status, body),
            "message": err.get("Message", ""),
            "request_id": parsed.get("ResponseMetadata", {}).get("RequestId", ""),
            "retryable": bool(standard.StandardRetryConditions().is_retryable(ctx)),
            "throttling": bool(standard.ThrottledRetryableChecker().is_retryable(ctx)),
        }
        return out
    parsed.pop("ResponseMetadata", None)
    shape = op.output_shape
    payload = shape.serialization.get("payload") if shape is not None else None
    if payload and shape.members[payload].type_name == "blob":
        out["expected_payload"] = parsed.pop(payload, "")
    out["expected"] = to_model(parsed)
    return out


class _Counter:
    def __init__(self):
        self.n = 0

    def next(self):
        self.n += 1
        return self.n


def example(shape, counter, path=(), in_header=False):
    """A deterministic example value for shape (None when it cannot have
    one). Recursive shapes stop at their second appearance on the path."""
    t = shape.type_name
    n = counter.next()
    if t == "structure":
        if path.count(shape.name) >= 1 or len(path) > 8:
            return None
        out = {}
        for key, member in shape.members.items():
            loc = member.serialization.get("location")
            if loc in ("uri", "querystring", "statusCode") or member.serialization.get(
                    "eventstream"):
                continue
            v = example(member, counter, path + (shape.name,), loc in ("header", "headers"))
            if v is not None:
                out[key] = v
        return out
    if t == "list":
        count = 1 + n % 2  # alternate single- and two-item lists
        items = [example(shape.member, counter, path, in_header) for _ in range(count)]
        return [i for i in items if i is not None] or None
    if t == "map":
        out = {}
        for i in range(2):
            k = f"key-{n}-{i}" if not in_header else f"k{n}{i}"
            v = example(shape.value, counter, path, in_header)
            if v is not None:
                out[k] = v
        return out or None
    if t == "string":
        if shape.enum:
            return shape.enum[n % len(shape.enum)]
        if in_header:
            return f"hv-{n}"
        return f"s-{n}" + (" & <b> \"q\" \u00e9" if n % 3 == 0 else "")
    if t in ("integer", "long"):
        return (10 ** 10 + n) if t == "long" else 1000 + n
    if t in ("float", "double"):
        return n + 0.25
    if t == "boolean":
        return n % 2 == 0
    if t == "timestamp":
        ms = 0 if in_header else (n % 2) * 123000
        return datetime.datetime(2023, 11, 14, 22, 13, n % 60, ms, tzinfo=datetime.timezone.utc)
    if t == "blob":
        return f"blob-{n}?>".encode()  # text: botocore decodes payloads as UTF-8
    return None


class _Ctx:
    request_id = "11111111-2222-4333-8444-555555555555"


def model_cases(session):
    """One emulator-serialized case per operation in aws/api/operations.txt."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
    from awsemu.protocols import for_model

    cases = []
    with open(os.path.join(ROOT, "aws", "api", "operations.txt"), encoding="utf-8") as f:
        ops = [line.split() for line in f if line.strip() and not line.startswith("#")]
    for service, operation in ops:
        model = session.get_service_model(service)
        op = model.operation_model(operation)
        value = example(op.output_shape, _Counter()) if op.output_shape is not None else {}
        status, headers, body = for_model(model).serialize_response(model, op, value, _Ctx())
        headers = {k.lower(): str(v) for k, v in headers.items()}
        if isinstance(body, str):
            body = body.encode("utf-8")
        cases.append(dict(service=service, operation=operation, case="model", status=status,
                          headers=headers, body=body.decode("utf-8")))
    return cases


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if not a.startswith("--")]
    outdir = args[0] if args else OUTDIR
    os.environ["TZ"] = "UTC"
    session = botocore.session.get_session()
    os.makedirs(outdir, exist_ok=True)
    stale = 0
    seen = set()
    cases = CASES + model_cases(session)
    for case in cases:
        doc = build(session, case)
        name = f"{case['service']}.{case['operation']}.{case['case']}.json"
        if name in seen:
            raise SystemExit(f"duplicate case {name}")
        seen.add(name)
        text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        path = os.path.join(outdir, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        print(f"stale: {name}")
                        stale += 1
            except FileNotFoundError:
                print(f"missing: {name}")
                stale += 1
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    print(f"{len(cases)} cases{' checked' if check else ' written to ' + outdir}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
