"""Merge each benchmark's figures into one file, out/bench.json, keyed by part.

Each part writes its own file (so each can run alone); a part that has not run is recorded as
null, with the file it was looked for under. The local stack's end-to-end benchmark writes
out/local-stack.json; until it exists its key stays null.

    python -m bench.merge --out-dir out
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Part -> (file under the out dir, key inside it; None for the whole document). The cost model
# is part of the simulator's output; it gets its own key because it is read on its own.
PARTS = {
    "detection": ("bench-detection.json", None),
    "engine": ("bench-engine.json", None),
    "worker": ("bench-worker.json", None),
    "sim": ("sim.json", None),
    "cost": ("sim.json", "cost"),
    "local_stack": ("local-stack.json", None),
    "course": ("bench-course.json", None),
    "gallery": ("bench-gallery.json", None),
    "boot": ("bench-boot.json", None),
    "calls": ("bench-cost.json", None),
}


def merge(out_dir: Path) -> dict:
    merged: dict = {"sources": {}}
    for part, (name, key) in PARTS.items():
        path = out_dir / name
        merged["sources"][part] = str(path)
        document = json.loads(path.read_text()) if path.is_file() else None
        merged[part] = document.get(key) if document is not None and key is not None else document
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("out"))
    args = parser.parse_args()
    merged = merge(args.out_dir)
    target = args.out_dir / "bench.json"
    target.write_text(json.dumps(merged, indent=2))
    missing = [part for part in PARTS if merged[part] is None]
    print(f"bench: {target}" + (f" (not run yet: {', '.join(missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
