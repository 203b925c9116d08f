"""Command line entry point: python3 -m awsemu --port 0 --port-file F ..."""

import argparse
import os
import signal
import sys
import threading

from .server import App, Server


def main(argv=None):
    p = argparse.ArgumentParser(prog="run-emulator", description="local AWS API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--delay-scale", type=float, default=1.0,
                   help="factor applied to every simulated AWS delay")
    p.add_argument("--seed", type=int, default=0, help="seed of fault-injection randomness")
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        p.error("the emulator only listens on loopback")

    app = App(region=args.region, delay_scale=args.delay_scale, seed=args.seed,
              verbose=args.verbose)
    server = Server(app, args.host, args.port)

    def on_signal(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{server.server_address[1]}\n")
        os.replace(tmp, args.port_file)
    print(f"awsemu listening on {server.url} region={args.region} "
          f"services={','.join(sorted(app.emulator.services)) or '-'}", flush=True)
    try:
        server.run()
    finally:
        server._stop.set()
        server.server_close()
        if args.port_file:
            try:
                os.unlink(args.port_file)
            except OSError:
                pass
    print("awsemu stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
