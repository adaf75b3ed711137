"""`make run`: the whole service on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from chalicelib.callers import seed_route_access
from chalicelib.config import Settings

from .service import LocalOptions, LocalService


def main() -> int:
    if os.environ.get(
        "FACEREC_COUNT_AWS_CALLS"
    ):  # make bench-cost: count this process's AWS calls (bench/aws_calls.py)
        importlib.import_module("bench.aws_calls").install("service")
    defaults = LocalOptions()
    parser = argparse.ArgumentParser(prog="python -m local_service", description=__doc__)
    parser.add_argument("--port", type=int, default=defaults.api_port, help="the API and web page")
    parser.add_argument(
        "--moto-port", type=int, default=defaults.moto_port, help="moto's server (0: any free port)"
    )
    parser.add_argument("--max-workers", type=int, default=defaults.max_workers)
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=defaults.idle_seconds,
        help="a worker idle this long with an empty queue ends its instance",
    )
    parser.add_argument(
        "--warm-pool-size",
        type=int,
        default=defaults.warm_pool_size,
        help="leaving workers stop into a pool of this many, started again before new launches",
    )
    parser.add_argument(
        "--hibernate",
        action="store_true",
        help="a pooled worker's process is paused, models loaded, rather than ended",
    )
    parser.add_argument(
        "--api-key", default=defaults.api_key, help="the API key (X-Api-Key) recognition needs"
    )
    parser.add_argument(
        "--close-seed-route",
        action="store_true",
        help="the seed's POST / needs the API key too, as on a deployed stage by default",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "transitions", "botocore", "chalice", "moto"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    options = LocalOptions(
        api_port=args.port,
        moto_port=args.moto_port,
        max_workers=args.max_workers,
        idle_seconds=args.idle_seconds,
        warm_pool_size=args.warm_pool_size,
        hibernate=args.hibernate,
        api_key=args.api_key,
        open_seed_route=not args.close_seed_route,
    )
    service = LocalService(options)
    stopped = threading.Event()

    # Ctrl-C and SIGTERM both stop it, even where SIGINT was inherited as ignored (a script's
    # `make run &`): Python then installs no KeyboardInterrupt of its own. The first signal
    # interrupts start-up or the wait; later ones must not interrupt the shutdown they caused.
    def stop(signum: int, frame: object) -> None:
        if not stopped.is_set():
            stopped.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            service.start()
        except OSError as exc:
            print(
                f"make run: could not start the service: {exc}. Is another one running? "
                f"Choose other ports: make run PORT=8001",
                file=sys.stderr,
            )
            return 2
        print(
            f"\nfacerec is running.\n"
            f"  web page:    {service.api_url}/app\n"
            f"  API:         {service.api_url}  (admin token for enrollment: "
            f"{options.admin_token})\n"
            f"  API key:     {options.api_key}  (X-Api-Key; {_limits(service)})\n"
            f"  seed route:  {seed_route_access(Settings.from_env())}\n"
            f"  AWS (moto):  {service.moto.endpoint_url}\n"
            f"  worker logs: {options.log_dir / 'workers'}\n"
            f"Ctrl-C stops everything.\n",
            flush=True,
        )
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping: workers, API, moto …", file=sys.stderr, flush=True)
        service.stop()
    return 0


def _limits(service: LocalService) -> str:
    limits = service.usage_plan.limits
    return (
        f"{limits.rate_per_second:g} requests/s, bursts of {limits.burst}, "
        f"{limits.daily_quota} a day"
    )


if __name__ == "__main__":
    sys.exit(main())
