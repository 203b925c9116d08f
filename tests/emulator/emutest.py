"""Test support shared by the emulator self-tests: an in-process emulator
on a free loopback port with boto3 clients and awscli environment."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from awsemu.server import App, Server  # noqa: E402

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


class Running:
    """An emulator serving on a background thread."""

    def __init__(self, **kwargs):
        self.app = App(region=REGION, delay_scale=0.01, **kwargs)
        self.server = Server(self.app)
        self.server.start_background()
        self.url = self.server.url
        self.emulator = self.app.emulator

    def client(self, service, **kw):
        """A boto3 client for ``service`` (cached when called without options)."""
        if not kw:
            cache = self.__dict__.setdefault("_clients", {})
            if service not in cache:
                cache[service] = self._new_client(service)
            return cache[service]
        return self._new_client(service, **kw)

    def _new_client(self, service, **kw):
        import boto3
        from botocore.config import Config
        session = boto3.session.Session(aws_access_key_id=kw.pop("key", ACCESS_KEY),
                                        aws_secret_access_key=kw.pop("secret", SECRET_KEY),
                                        aws_session_token=kw.pop("token", None),
                                        region_name=kw.pop("region", REGION))
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                        read_timeout=kw.pop("read_timeout", 10),
                        s3={"addressing_style": "path"})
        if "config" in kw:
            config = config.merge(kw.pop("config"))
        return session.client(service, endpoint_url=self.url, config=config, **kw)

    def cli_env(self):
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_PAGER": "",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard"})
        env.pop("AWS_PROFILE", None)
        return env

    def stop(self):
        self.server.stop()
