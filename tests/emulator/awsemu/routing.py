"""Which service and operation a request is for. The request's content
(X-Amz-Target prefix, Query Action+Version, else S3's REST paths) names the
service it was sent to; sigv4verify then insists that the signature was
scoped to that service's signing name, as AWS's per-service endpoints do."""

from . import codes
from .base import AwsError
from .protocols import for_model, json_proto


class RouteError(Exception):
    def __init__(self, model, error):
        super().__init__(error.message)
        self.model = model
        self.error = error


def _content_model(models, raw, signed_model):
    if raw.header("x-amz-target"):
        prefix = json_proto.target_prefix(raw)
        return models.by_target_prefix.get(prefix) or signed_model
    ctype = (raw.header("content-type") or "").lower()
    if "x-www-form-urlencoded" in ctype or (raw.method == "GET" and "Action" in raw.query_dict()):
        form = raw.form()
        if "Action" in form:
            return models.by_api_version.get(form.get("Version")) or signed_model
    if signed_model is not None and signed_model.metadata["protocol"] != "rest-xml":
        return signed_model  # no target/action: the operation lookup reports it
    return models.get("s3")


def route(models, raw, auth):
    """(model, operation name, None) of a request, or (model, None, error)
    when the service is known but not the operation (reported after the
    signature is checked, as AWS does); raises RouteError."""
    signed_model = models.by_signing_name.get(auth.service) if auth else None
    if auth and signed_model is None:
        model = _content_model(models, raw, None) or models.get("s3")
        raise RouteError(model, codes.bad_signature(
            model, f"Credential should be scoped to correct service: '{auth.service}'. "))
    model = _content_model(models, raw, signed_model) or models.get("s3")
    op = for_model(model).operation_name(model, raw)
    if op is None or op not in model.operation_names:
        proto = model.metadata["protocol"]
        if proto == "json":
            err = AwsError("UnknownOperationException", "The operation is not recognized: "
                           f"{raw.header('x-amz-target')}")
        elif proto in ("query", "ec2"):
            form = raw.form()
            err = AwsError("InvalidAction", f"The action {form.get('Action')} is not valid "
                           f"for this web service (version {form.get('Version')}).")
        else:
            err = AwsError("NotImplemented", "A header or query you provided implies "
                           "functionality that is not implemented", status=501)
        return model, None, err
    return model, op, None

