"""Test support: small Service subclasses so that the core's tests do not
depend on the real service modules."""

from awsemu.base import AwsError, Service


class TinyEcs(Service):
    SERVICE = "ecs"

    def ListClusters(self, req, params):
        return {"clusterArns": ["arn:aws:ecs:us-east-1:123456789012:cluster/tiny"]}

    def CreateService(self, req, params):
        return {"service": {"serviceName": params["serviceName"], "desiredCount":
                            params.get("desiredCount", 0)}}

    def DescribeClusters(self, req, params):
        raise AwsError("ClusterNotFoundException", "Cluster not found.")


class TinyEc2(Service):
    SERVICE = "ec2"

    def DescribeVpcs(self, req, params):
        return {"Vpcs": [{"VpcId": "vpc-0123456789abcdef0", "CidrBlock": "10.0.0.0/16",
                          "State": "available",
                          "Tags": [{"Key": "Name", "Value": "tiny"}]}]}

    def CreateSubnet(self, req, params):
        return {"Subnet": {"SubnetId": "subnet-0123456789abcdef0", "VpcId": params["VpcId"]}}


class TinyIam(Service):
    SERVICE = "iam"

    def GetRole(self, req, params):
        raise AwsError("NoSuchEntity", f"The role with name {params['RoleName']} cannot be found.",
                       status=404)

    def CreateRole(self, req, params):
        return {"Role": {"Path": "/", "RoleName": params["RoleName"], "RoleId": "AROATINY",
                         "Arn": f"arn:aws:iam::123456789012:role/{params['RoleName']}",
                         "CreateDate": req.emulator.clock.utcnow()}}


class TinySts(Service):
    SERVICE = "sts"

    def GetCallerIdentity(self, req, params):
        return {"Account": "123456789012", "UserId": req.access_key,
                "Arn": "arn:aws:iam::123456789012:user/tiny"}

    def AssumeRoleWithWebIdentity(self, req, params):
        return {"Credentials": {"AccessKeyId": "ASIATINY", "SecretAccessKey": "s",
                                "SessionToken": "t", "Expiration": req.emulator.clock.utcnow()}}


class TinySns(Service):
    SERVICE = "sns"

    def CreateTopic(self, req, params):
        return {"TopicArn": f"arn:aws:sns:us-east-1:123456789012:{params['Name']}"}


class TinyS3(Service):
    SERVICE = "s3"

    def __init__(self, emulator):
        super().__init__(emulator)
        self.objects = {}

    def ListBuckets(self, req, params):
        return {"Buckets": [{"Name": "tiny"}], "Owner": {"ID": "owner"}}

    def PutObject(self, req, params):
        self.objects[(params["Bucket"], params["Key"])] = params.get("Body", b"")
        return {"ETag": "abc"}

    def GetObject(self, req, params):
        body = self.objects.get((params["Bucket"], params["Key"]))
        if body is None:
            raise AwsError("NoSuchKey", "The specified key does not exist.", status=404)
        return {"Body": body, "ContentLength": len(body), "ETag": "abc"}

    def PutBucketVersioning(self, req, params):
        return {}


TINY = [TinyEcs, TinyEc2, TinyIam, TinySts, TinySns, TinyS3]
