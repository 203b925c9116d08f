"""Loading the official service models (botocore's service-2.json) and the
signing-name -> service mapping. Loaded once at start-up, read-only after."""

import botocore.session

# The botocore service names the emulator serves (every service aviary uses).
SERVICES = ("ec2", "ecs", "ecr", "elbv2", "application-autoscaling", "cloudwatch",
            "logs", "sns", "iam", "sts", "s3", "sagemaker")

# Operations AWS accepts without a signature although this botocore's model
# does not mark them "authtype": "none" (botocore disables signing for them
# with a handler, botocore/handlers.py).
UNSIGNED_OPERATIONS = {("sts", "AssumeRoleWithWebIdentity"), ("sts", "AssumeRoleWithSAML")}


def signing_name(model):
    md = model.metadata
    return md.get("signingName") or md.get("endpointPrefix")


class Models:
    """The service models, indexed the ways the router needs them."""

    def __init__(self, services=SERVICES):
        session = botocore.session.get_session()
        self.by_name = {name: session.get_service_model(name) for name in services}
        self.by_signing_name = {signing_name(m): m for m in self.by_name.values()}
        self.by_target_prefix = {m.metadata["targetPrefix"]: m for m in self.by_name.values()
                                 if m.metadata.get("targetPrefix")}
        self.by_api_version = {}
        for m in self.by_name.values():
            if m.metadata["protocol"] in ("query", "ec2"):
                self.by_api_version[m.metadata["apiVersion"]] = m

    _shared = None

    @classmethod
    def shared(cls):
        """One process-wide instance (models are read-only once loaded)."""
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def get(self, name):
        return self.by_name[name]

    def allows_unsigned(self, model, op_name):
        op = model.operation_model(op_name)
        if op.auth_type == "none":
            return True
        return (model.service_name, op_name) in UNSIGNED_OPERATIONS


def is_mutating(op_name):
    return not op_name.startswith(("Describe", "List", "Get", "Head"))
