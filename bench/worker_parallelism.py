"""How a worker should use its cores: one engine with every core, or one engine per core?

Runs the same photos through P processes of T threads each (P x T = the cores) and reports
aggregate photos/s per model; the worker's default is whichever wins here.

    python -m bench.worker_parallelism --datasets ../shared/datasets --out out/bench-worker.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from multiprocessing import get_context
from pathlib import Path

BATCH = 10
PHOTOS = 200
REPEATS = 3


def _run(model: str, threads: int, files: list[str], start, results) -> None:
    """One engine process: load, wait for the starting gun, recognize its share in batches."""
    from dataclasses import replace

    from bench.engine import engine_config
    from facerec_worker.engine import EngineConfig, PhotoInput, Recognizer

    photos = [PhotoInput(f, Path(f).read_bytes()) for f in files]
    # The default detector: the layout question is the embedder's.
    config, _ = engine_config(model, EngineConfig().detector)
    with Recognizer.from_config(replace(config, threads=threads)) as engine:
        gallery = engine.new_gallery()
        engine.recognize(photos[:BATCH], gallery)  # warm-up
        start.wait()
        for i in range(0, len(photos), BATCH):
            engine.recognize(photos[i : i + BATCH], gallery)
    results.put(time.perf_counter())


def measure(model: str, processes: int, files: list[str]) -> float:
    """Aggregate photos/s of `processes` engines sharing the machine's cores."""
    cores = os.cpu_count() or 1
    threads = max(1, cores // processes)
    context = get_context("spawn")
    start, results = context.Barrier(processes + 1), context.Queue()
    shares = [files[i::processes] for i in range(processes)]
    workers = [
        context.Process(target=_run, args=(model, threads, share, start, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    finished = max(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return len(files) / (finished - began)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("out/bench-worker.json"))
    parser.add_argument("--models", default="dlib")
    args = parser.parse_args()
    folder = args.datasets / "cse546-1000" / "face_images_1000"
    if not folder.is_dir():
        print(f"bench-worker: {folder} not found: pass --datasets", file=sys.stderr)
        return 2
    files = sorted(str(p) for p in folder.iterdir())[:PHOTOS]
    cores = os.cpu_count() or 1
    layouts = sorted({1, cores})
    report: dict = {
        "cores": cores,
        "photos": len(files),
        "batch": BATCH,
        "repeats": REPEATS,
        "models": {},
    }
    for model in args.models.split(","):
        figures = {}
        for processes in layouts:
            label = f"{processes} process(es) x {max(1, cores // processes)} thread(s)"
            print(f"bench-worker: {model}, {label} …", file=sys.stderr, flush=True)
            rates = [measure(model, processes, files) for _ in range(REPEATS)]
            figures[label] = round(statistics.median(rates), 2)
        report["models"][model] = {
            "photos_per_second": figures,
            "fastest": max(figures, key=figures.get),
        }
        print(f"{model}: {figures}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
