"""`make demo`: start the service, enroll two people, recognize photos of them and of a stranger,
print what came back, and stop everything. What a newcomer runs to see it work end to end."""

from __future__ import annotations

import logging
import sys
import time

from facerec_client import FacerecClient

from .service import ROOT, LocalOptions, LocalService

FACES = ROOT / "tests" / "data" / "faces"
PEOPLE = {"obama": "obama.jpg", "biden": "biden.jpg"}
PHOTOS = ["obama2.jpg", "obama_and_biden.jpg", "rose_leslie.jpg"]


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("facerec").setLevel(logging.WARNING)  # the Chalice app's own log
    options = LocalOptions(api_port=0, idle_seconds=5)
    service = LocalService(options)
    started = time.monotonic()
    print("demo: starting the service (moto, the stack, the API) …", flush=True)
    try:
        service.start()
        client = FacerecClient(service.api_url, admin_token=options.admin_token)
        for person, photo in PEOPLE.items():
            client.create_person(person)
            job = client.enroll(person, FACES / photo)
            client.wait(
                job["job_id"],
                on_status=lambda j, p=person: print(f"demo: enroll {p}: {j['status']}", flush=True),
            )
        jobs = {name: client.submit(FACES / name)["job_id"] for name in PHOTOS}
        for name, job_id in jobs.items():
            result = client.wait(job_id)["result"]
            faces = ", ".join(
                f"{face['identity'] or 'unknown'} (distance {face['distance']:.2f})"
                for face in result["faces"]
            )
            print(f"demo: {name}: {faces or 'no face'}", flush=True)
        print(
            "demo: waiting for the fleet to scale back to zero "
            f"({options.idle_seconds:.0f} s idle) …",
            flush=True,
        )
        deadline = time.monotonic() + 120
        while service.fleet.live_processes and time.monotonic() < deadline:
            time.sleep(1)
        print(
            f"demo: peak workers {service.fleet.history.peak}, now {service.fleet.live_processes}; "
            f"{time.monotonic() - started:.0f} s in all",
            flush=True,
        )
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
