"""`python -m localazure [--scenario FILE|NAME] [--print-env]`: start the stand-in, print one JSON line with its
addresses (or, with --print-env, the TRIAGE_* settings that point the service at it), serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from localazure.standin import LocalAzure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localazure", description=__doc__)
    parser.add_argument("--scenario", help="scenario JSON file, or a bundled name such as 'basic'")
    parser.add_argument("--propagation-seconds", type=float, default=None)
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--tick-every", type=float, default=0.0,
                        help="generate one round of scenario traffic every N real seconds (0: never)")
    parser.add_argument("--arm-throttling", action="store_true", default=None,
                        help="throttle ARM with its documented token buckets (and Resource Graph with its quota)")
    parser.add_argument("--print-env", dest="print_env", action="store_true",
                        help="print KEY=value lines of the TRIAGE_* settings that point the service at the stand-in "
                        "instead of the JSON line (source them: set -a; . ./localazure.env; set +a)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    az = LocalAzure.start(args.scenario, propagation_seconds=args.propagation_seconds, page_size=args.page_size,
                          arm_throttling=args.arm_throttling)
    try:
        if args.print_env:
            from localazure.settings_env import env_lines, settings_env

            sys.stdout.write(env_lines(settings_env(az, args.scenario)))
        else:
            sys.stdout.write(json.dumps(az.info()) + "\n")
        sys.stdout.flush()
        while not stop.wait(args.tick_every or None):
            az.tick()
    finally:
        az.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
