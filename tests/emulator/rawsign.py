"""Test support: send hand-built, SigV4-signed requests (optionally signed
at another time, region or service, or tampered with after signing)."""

import datetime
import http.client
import json
import urllib.parse
from unittest import mock

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from emutest import ACCESS_KEY, REGION, SECRET_KEY


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def text(self):
        return self.body.decode()


def _frozen_datetime(when):
    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when.replace(tzinfo=None)
    return Frozen


def send(url, method="POST", path="/", query="", headers=None, body=b"", service="ecs",
         region=REGION, key=ACCESS_KEY, secret=SECRET_KEY, token=None, when=None,
         sign=True, tamper=None):
    """Sign (unless sign=False) and send one request; ``tamper(dict)`` may
    change method/path/query/headers/body after signing."""
    parsed = urllib.parse.urlsplit(url)
    headers = dict(headers or {})
    full = f"{url}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=full, data=body, headers=headers)
    if sign:
        creds = Credentials(key, secret, token)
        signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, region)
        if when is not None:
            with mock.patch("botocore.auth.datetime.datetime", _frozen_datetime(when)):
                signer.add_auth(req)
        else:
            signer.add_auth(req)
    parts = {"method": method, "path": path, "query": query,
             "headers": {k: v for k, v in req.headers.items()}, "body": body}
    if tamper:
        tamper(parts)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    try:
        target = parts["path"] + (f"?{parts['query']}" if parts["query"] else "")
        conn.request(parts["method"], target, body=parts["body"], headers=parts["headers"])
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def ecs_call(url, op, payload, **kw):
    headers = {"X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{op}",
               "Content-Type": "application/x-amz-json-1.1"}
    return send(url, headers=headers, body=json.dumps(payload).encode(), service="ecs", **kw)


def query_call(url, params, service, **kw):
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = urllib.parse.urlencode(params).encode()
    return send(url, headers=headers, body=body, service=service, **kw)
