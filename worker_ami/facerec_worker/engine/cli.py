"""`facerec-engine`: enroll people into a gallery file and recognize photos, without any AWS."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from . import photo_files, verification
from .config import DETECTORS, MODELS, EngineConfig
from .errors import EngineError
from .gallery import Gallery
from .recognizer import Recognizer


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (EngineError, OSError) as exc:
        print(f"facerec-engine: {exc}", file=sys.stderr)
        return 2


def _enroll(args: argparse.Namespace) -> int:
    people = photo_files.people(args.folder)
    if not people:
        raise EngineError(f"{args.folder} has no <person>/<photo> folders to enroll")
    with Recognizer.from_config(_config(args)) as engine:
        gallery = (
            _open_gallery(args.gallery, engine) if args.gallery.exists() else engine.new_gallery()
        )
        for name, paths in tqdm(people.items(), desc="enrolling", unit="person", file=sys.stderr):
            count = engine.enroll(gallery, name, photo_files.read(paths))
            tqdm.write(f"{name}: {count} photo(s)", file=sys.stderr)
    gallery.save(args.gallery)
    print(
        json.dumps(
            {"gallery": str(args.gallery), "model": gallery.model, "people": gallery.names()}
        )
    )
    return 0


def _recognize(args: argparse.Namespace) -> int:
    paths = photo_files.expand(args.photos)
    with Recognizer.from_config(_config(args)) as engine:
        gallery = _open_gallery(args.gallery, engine) if args.gallery else engine.new_gallery()
        with tqdm(total=len(paths), desc="recognizing", unit="photo", file=sys.stderr) as progress:
            for start in range(0, len(paths), args.batch_size):
                batch = photo_files.read(paths[start : start + args.batch_size])
                for result in engine.recognize(batch, gallery):
                    print(json.dumps(result.to_dict()), flush=True)
                progress.update(len(batch))
    return 0


def _verify(args: argparse.Namespace) -> int:
    pairs = verification.read_pairs(args.pairs)
    with Recognizer.from_config(_config(args)) as engine:
        report = verification.verify(engine, pairs)
    print(json.dumps(report, indent=2))
    print(
        f"{report['model']} at {report['threshold']}, {report['detector']} detector: "
        f"accuracy {report['accuracy']} on {report['pairs_judged']}/{report['pairs']} pairs, "
        f"{report['false_accepts']} false accepts, {report['false_rejects']} false rejects, "
        f"{len(report['unusable_photos'])} unusable photos",
        file=sys.stderr,
    )
    return 0


def _people(args: argparse.Namespace) -> int:
    gallery = Gallery.load(args.gallery)
    print(json.dumps({"model": gallery.model, "people": gallery.names()}))
    return 0


def _remove(args: argparse.Namespace) -> int:
    gallery = Gallery.load(args.gallery)
    if not gallery.remove(args.name):
        raise EngineError(f"{args.name!r} is not enrolled in {args.gallery}")
    gallery.save(args.gallery)
    return 0


def _config(args: argparse.Namespace) -> EngineConfig:
    """The environment's configuration with the command line's --model and --detector on top."""
    config = EngineConfig.from_env()
    chosen = {name: getattr(args, name) for name in ("model", "detector") if getattr(args, name)}
    return dataclasses.replace(config, **chosen)


def _open_gallery(path: Path, engine: Recognizer) -> Gallery:
    gallery = Gallery.load(path)
    gallery.require_model(engine.model)
    return gallery


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facerec-engine",
        description="Face recognition on local photos. The model is facenet when FACENET_WEIGHTS "
        "names its weights file, dlib otherwise (FACEREC_MODEL or --model overrides); the detector "
        "is yunet (FACEREC_DETECTOR or --detector overrides).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    # Options of every command that runs the engine; unset, the environment decides.
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument(
        "--model",
        choices=["auto", *MODELS],
        help="embedding model (default: FACEREC_MODEL, else auto)",
    )
    engine.add_argument(
        "--detector",
        choices=list(DETECTORS),
        help="face detector (default: FACEREC_DETECTOR, else yunet)",
    )

    enroll = commands.add_parser(
        "enroll", parents=[engine], help="enroll every <person>/<photo> under FOLDER"
    )
    enroll.add_argument("folder", type=Path)
    enroll.add_argument(
        "--gallery", type=Path, required=True, help="gallery file to create or extend"
    )
    enroll.set_defaults(command=_enroll)

    recognize = commands.add_parser(
        "recognize", parents=[engine], help="name the faces in photos; JSON lines on stdout"
    )
    recognize.add_argument("photos", type=Path, nargs="+", help="photos or folders of photos")
    recognize.add_argument("--gallery", type=Path, help="without one, every face is unknown")
    recognize.add_argument("--batch-size", type=int, default=10)
    recognize.set_defaults(command=_recognize)

    verify = commands.add_parser(
        "verify",
        parents=[engine],
        help="accuracy on labelled pairs: a CSV with columns a,b,same (paths relative to it)",
    )
    verify.add_argument("pairs", type=Path)
    verify.set_defaults(command=_verify)

    people = commands.add_parser("people", help="list the people in a gallery")
    people.add_argument("--gallery", type=Path, required=True)
    people.set_defaults(command=_people)

    remove = commands.add_parser("remove", help="remove a person from a gallery")
    remove.add_argument("name")
    remove.add_argument("--gallery", type=Path, required=True)
    remove.set_defaults(command=_remove)
    return parser


if __name__ == "__main__":
    sys.exit(main())
