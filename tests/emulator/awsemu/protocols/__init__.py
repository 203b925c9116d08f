"""Wire formats: request parsing and response/error serialization for the
four protocols of the services aviary uses (json, query, ec2, rest-xml)."""

from . import json_proto, query, restxml

_BY_PROTOCOL = {"json": json_proto, "query": query, "ec2": query, "rest-xml": restxml}


def for_model(model):
    """The protocol module (parse_request, serialize_response,
    serialize_error) of a botocore ServiceModel."""
    return _BY_PROTOCOL[model.metadata["protocol"]]
