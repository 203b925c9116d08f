"""The HTTP server: one ThreadingHTTPServer on loopback serving every
emulated service and the control API; a background thread ticks services.
Request threads run handlers under the emulator's single lock."""

import importlib
import inspect
import pkgutil
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import codes
from .base import AwsError, Emulator, RequestContext, Service, new_request_id
from .control import Control
from .faults import Faults
from .models import Models, is_mutating
from .protocols import for_model
from .protocols.common import RawRequest
from .routing import RouteError, route
from .sigv4verify import scope_of, verify
from .validate import validate

MAX_BODY = 64 * 1024 * 1024
DROP = object()


def service_classes(package="awsemu.services"):
    """(classes, load errors) of the Service subclasses in awsemu/services/."""
    pkg = importlib.import_module(package)
    found, errors = [], {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        try:
            mod = importlib.import_module(f"{package}.{info.name}")
        except Exception as exc:  # a broken module must not hide the others
            errors[info.name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            continue
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, Service) and obj is not Service and obj.SERVICE \
                    and obj.__module__ == mod.__name__:
                found.append(obj)
    return found, errors


class App:
    """Everything a request needs: emulator state, models, faults."""

    def __init__(self, region="us-east-1", delay_scale=1.0, seed=0, load_services=True,
                 extra_services=(), check_patterns=True, verbose=False):
        self.emulator = Emulator(region=region, delay_scale=delay_scale, seed=seed)
        self.models = Models.shared()
        self.faults = Faults(seed)
        self.check_patterns = check_patterns
        self.verbose = verbose
        self.load_errors = {}
        self.output_warnings = []
        classes = []
        if load_services:
            classes, self.load_errors = service_classes()
        for cls in list(classes) + list(extra_services):
            self.emulator.register(cls)
        self.control = Control(self)

    # --- ticking -------------------------------------------------------------
    def tick_all(self):
        for name, svc in list(self.emulator.services.items()):
            try:
                with self.emulator.lock:
                    svc.tick()
            except Exception:
                print(f"awsemu: tick of {name} failed", file=sys.stderr)
                traceback.print_exc()

    def log_call(self, service, operation, status, code):
        entry = {"time": self.emulator.clock.now(), "service": service,
                 "operation": operation, "status": status, "code": code,
                 "mutating": is_mutating(operation or "")}
        with self.emulator.lock:
            self.emulator.calls.append(entry)

    # --- AWS requests --------------------------------------------------------
    def handle_aws(self, raw):
        """(status, headers, body) of an AWS call, or DROP."""
        model, op = self.models.get("s3"), None
        request_id = new_request_id()
        try:
            try:
                auth = scope_of(raw)
            except ValueError as exc:
                model, op, _ = route(self.models, raw, None)
                raise codes.incomplete_signature(model, str(exc))
            model, op, op_error = route(self.models, raw, auth)
            if auth is None:
                if op is None or not self.models.allows_unsigned(model, op):
                    raise codes.missing_auth(model)
                access_key = None
            else:
                access_key = verify(self.emulator, model, raw, auth)
            if op_error is not None:
                raise op_error
            latency, action = self.faults.decide(model, op)
            if latency:
                time.sleep(latency)
            if action is DROP or action == "drop":
                self.log_call(model.service_name, op, 0, "ConnectionDropped")
                return DROP
            if action is not None:
                raise action
            self.tick_all()
            status, headers, body, request_id = self._dispatch(model, op, raw, access_key)
            self.log_call(model.service_name, op, status, None)
            return status, headers, body
        except RouteError as exc:
            model, err = exc.model, exc.error
        except AwsError as exc:
            err = exc
        except Exception as exc:
            traceback.print_exc()
            err = codes.internal_error(model, f"emulator failure: {type(exc).__name__}: {exc}")
        self.log_call(model.service_name, op, err.status, err.code)
        return for_model(model).serialize_error(model, err, request_id, raw.method)

    def _dispatch(self, model, op, raw, access_key):
        op_model = model.operation_model(op)
        proto = for_model(model)
        params, unknown = proto.parse_request(model, op_model, raw)
        check_patterns = self.check_patterns and model.metadata["protocol"] in ("json", "query")
        problems = validate(params, op_model.input_shape, unknown, check_patterns)
        if problems:
            raise codes.validation_error(model, problems)
        svc = self.emulator.services.get(model.service_name)
        handler = getattr(svc, op, None) if svc is not None else None
        if not callable(handler):
            raise codes.not_implemented(model, op)
        ctx = RequestContext(self.emulator, model.service_name, op, self.emulator.region,
                             access_key, headers={k: ",".join(v) for k, v in raw.headers.items()},
                             body=raw.body, path=raw.path, query=raw.query_dict())
        try:
            with self.emulator.lock:
                result = handler(ctx, params)
        except AwsError:
            raise
        self._check_output(model, op_model, result)
        status, headers, body = proto.serialize_response(model, op_model, result, ctx)
        return status, headers, body, ctx.request_id

    def _check_output(self, model, op_model, result):
        """Record (once) top-level result keys the output shape does not
        have: a module bug that serialization would otherwise hide."""
        if result is None:
            return
        if not isinstance(result, dict):
            raise TypeError(f"{model.service_name} {op_model.name} returned "
                            f"{type(result).__name__}, not a dict")
        members = op_model.output_shape.members if op_model.output_shape is not None else {}
        for key in result:
            if key not in members:
                warning = f"{model.service_name} {op_model.name}: output has no member {key!r}"
                with self.emulator.lock:
                    if warning not in self.output_warnings:
                        self.output_warnings.append(warning)
                        print("awsemu: warning: " + warning, file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awsemu"
    sys_version = ""

    def setup(self):
        super().setup()
        # Responses are one write each (see _serve), and without Nagle a
        # reused connection does not wait ~40 ms for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _serve(self):
        app = self.server.app
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(413)
            return
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        raw = RawRequest(self.command, self.path, headers, body)
        if raw.path.startswith("/_emulator/") or raw.path == "/_emulator":
            status, out_headers, out_body = app.control.handle(raw)
        else:
            result = app.handle_aws(raw)
            if result is DROP:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            status, out_headers, out_body = result
        self.send_response(status)
        has_length = False
        for name, value in out_headers.items():
            if name.lower() == "content-length":
                if self.command != "HEAD":
                    continue
                has_length = True
            self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(len(out_body)))
        # Headers and body leave in one write: end_headers() would flush
        # the headers as a segment of their own.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD" and out_body:
            self._headers_buffer.append(out_body)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("awsemu: " + (fmt % args) + "\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app, host="127.0.0.1", port=0):
        self.app = app
        super().__init__((host, port), Handler)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="awsemu-ticker", daemon=True)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def _tick_loop(self):
        while not self._stop.wait(0.1):
            self.app.tick_all()

    def start_background(self):
        """Serve on a thread (for in-process tests); returns the thread."""
        self._ticker.start()
        thread = threading.Thread(target=self.serve_forever, name="awsemu-http", daemon=True)
        thread.start()
        return thread

    def run(self):
        self._ticker.start()
        self.serve_forever()

    def stop(self):
        self._stop.set()
        self.shutdown()
        self.server_close()
