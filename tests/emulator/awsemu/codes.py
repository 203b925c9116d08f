"""Which error code, status and message AWS answers, per protocol and
service: validation failures, throttling, internal errors, authentication."""

import datetime

from .base import AwsError
from .protocols.common import lower_first

# JSON services: the code their validation layer answers with.
JSON_VALIDATION_CODES = {
    "ecs": "InvalidParameterException",
    "ecr": "InvalidParameterException",
    "logs": "InvalidParameterException",
    "application-autoscaling": "ValidationException",
    "sagemaker": "ValidationException",
}


def _proto(model):
    return model.metadata["protocol"]


def _coral_path(path):
    parts = []
    for p in path:
        if isinstance(p, int):
            parts.append(f"{p}.member")
        else:
            parts.append(lower_first(str(p)))
    return ".".join(parts)


def _wire_path(path):
    return ".".join(str(p) for p in path)


def _coral_message(problems):
    msgs = []
    for p in problems:
        where = _coral_path(p.path)
        if p.kind == "missing":
            msgs.append(f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
        elif p.kind == "unknown":
            msgs.append(f"Unknown parameter '{_wire_path(p.path)}' is not a member of the input")
        elif p.kind == "type":
            msgs.append(f"Value '{p.value}' at '{where}' failed to satisfy constraint: "
                        f"Member must be of type {p.detail}")
        else:
            msgs.append(f"Value '{p.value}' at '{where}' failed to satisfy constraint: {p.detail}")
    n = len(msgs)
    return f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(msgs)


def validation_error(model, problems):
    """The AwsError for a non-empty list of validate.Problem."""
    first = problems[0]
    wire = _wire_path(first.path)
    proto, svc = _proto(model), model.service_name
    if proto == "ec2":
        if first.kind == "missing":
            return AwsError("MissingParameter", f"The request must contain the parameter {wire}")
        if first.kind == "unknown":
            return AwsError("UnknownParameter", f"The parameter {wire} is not recognized")
        detail = f"Expected a {first.detail}." if first.kind == "type" else first.detail
        return AwsError("InvalidParameterValue",
                        f"Value ({first.value}) for parameter {wire} is invalid. {detail}")
    if svc == "cloudwatch":
        if first.kind == "missing":
            return AwsError("MissingParameter", f"The parameter {wire} is required.")
        if first.kind == "unknown":
            return AwsError("InvalidParameterValue", f"The parameter {wire} is not recognized.")
        return AwsError("InvalidParameterValue", _coral_message(problems))
    if svc == "sns":
        reason = "cannot be empty" if first.kind == "missing" else (
            "not recognized" if first.kind == "unknown" else first.detail or "invalid")
        return AwsError("InvalidParameter", f"Invalid parameter: {wire} Reason: {reason}")
    if proto == "query":
        return AwsError("ValidationError", _coral_message(problems))
    if proto == "json":
        if first.kind == "type":
            return AwsError("SerializationException",
                            f"Value '{first.value}' at '{wire}' cannot be converted to {first.detail}")
        code = JSON_VALIDATION_CODES.get(svc, "ValidationException")
        return AwsError(code, _coral_message(problems))
    # rest-xml (S3)
    if first.kind == "unknown":
        return AwsError("MalformedXML", "The XML you provided was not well-formed or did not "
                        "validate against our published schema")
    if first.kind == "missing":
        return AwsError("InvalidRequest", f"Missing required parameter: {wire}")
    return AwsError("InvalidArgument", f"Invalid argument {wire}: {first.detail or first.value}")


def throttling_error(model):
    proto = _proto(model)
    if proto == "json":
        return AwsError("ThrottlingException", "Rate exceeded")
    if proto == "ec2":
        return AwsError("RequestLimitExceeded", "Request limit exceeded.", status=503)
    if proto == "rest-xml":
        return AwsError("SlowDown", "Please reduce your request rate.", status=503)
    return AwsError("Throttling", "Rate exceeded")


def internal_error(model, message="We encountered an internal error. Please try again."):
    proto = _proto(model)
    if proto == "json":
        code = "ServerException" if "ServerException" in {s.name for s in model.error_shapes} \
            else "InternalFailure"
        return AwsError(code, message, status=500, sender_fault=False)
    if proto in ("ec2", "rest-xml"):
        return AwsError("InternalError", message, status=500, sender_fault=False)
    return AwsError("InternalFailure", message, status=500, sender_fault=False)


def not_implemented(model, op_name):
    return AwsError("NotImplemented",
                    f"The emulator does not implement {model.service_name} {op_name}",
                    status=501, sender_fault=False)


# --- authentication ---------------------------------------------------------

def unknown_key(model, key_id):
    proto = _proto(model)
    if proto == "json":
        return AwsError("UnrecognizedClientException",
                        "The security token included in the request is invalid.", status=400)
    if proto == "ec2":
        return AwsError("AuthFailure", "AWS was not able to validate the provided access "
                        "credentials", status=401)
    if proto == "rest-xml":
        return AwsError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not "
                        "exist in our records.", status=403)
    return AwsError("InvalidClientTokenId", "The security token included in the request is "
                    "invalid.", status=403)


def bad_token(model, expired=False):
    proto = _proto(model)
    if expired:
        code = {"json": "ExpiredTokenException", "ec2": "RequestExpired"}.get(proto, "ExpiredToken")
        return AwsError(code, "The security token included in the request is expired",
                        status=403 if proto == "query" else 400)
    if proto == "rest-xml":
        return AwsError("InvalidToken", "The provided token is malformed or otherwise invalid.",
                        status=400)
    return unknown_key(model, None)


def bad_signature(model, message=None):
    proto = _proto(model)
    message = message or ("The request signature we calculated does not match the signature "
                          "you provided. Check your AWS Secret Access Key and signing method. "
                          "Consult the service documentation for details.")
    if proto == "json":
        return AwsError("InvalidSignatureException", message, status=403)
    if proto == "ec2":
        return AwsError("AuthFailure", message, status=401)
    return AwsError("SignatureDoesNotMatch", message, status=403)


def skewed(model, amz_date, now):
    proto = _proto(model)
    server = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if proto == "rest-xml":
        return AwsError("RequestTimeTooSkewed", "The difference between the request time and "
                        "the current time is too large.", status=403)
    if proto == "ec2":
        return AwsError("RequestExpired", f"Request has expired. Timestamp date is {amz_date}",
                        status=400)
    return bad_signature(model, f"Signature expired: {amz_date} is now earlier than "
                         f"{server} ({server} - 5 min.)")


def missing_auth(model):
    proto = _proto(model)
    if proto == "rest-xml":
        return AwsError("AccessDenied", "Access Denied", status=403)
    if proto == "json":
        return AwsError("MissingAuthenticationTokenException", "Missing Authentication Token",
                        status=400)
    if proto == "ec2":
        return AwsError("AuthFailure", "AWS was not able to validate the provided access "
                        "credentials", status=401)
    return AwsError("MissingAuthenticationToken", "Request is missing Authentication Token",
                    status=403)


def incomplete_signature(model, message):
    proto = _proto(model)
    if proto == "rest-xml":
        return AwsError("AuthorizationHeaderMalformed", message, status=400)
    if proto == "ec2":
        return AwsError("AuthFailure", message, status=401)
    return AwsError("IncompleteSignatureException" if proto == "json" else "IncompleteSignature",
                    message, status=400)
