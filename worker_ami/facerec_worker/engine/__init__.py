"""facerec's recognition engine: photos in, every face with a box, landmarks and a name out.

Usable on its own (`facerec-engine --help`) and by the worker:

    with Recognizer.from_config() as engine:
        gallery = Gallery.load("gallery.json")
        for result in engine.recognize([PhotoInput("a.jpg", data)], gallery):
            print(result.to_dict())
"""

from . import photo_files
from .config import DETECTORS, MODELS, EngineConfig, ModelSpec
from .errors import (
    EmptyPhotoError,
    EngineError,
    EnrollmentError,
    GalleryError,
    GalleryModelMismatchError,
    ModelError,
    NotAnImageError,
    PhotoError,
    PhotoTooLargeError,
    PhotoTooSmallError,
    TruncatedPhotoError,
    UnsupportedFormatError,
    WeightsChecksumError,
)
from .face_index import Candidate, FaceIndex, Owner
from .gallery import Gallery, Match
from .recognizer import Analysis, PhotoInput, Recognizer
from .result import SCHEMA_VERSION, FaceResult, PhotoFailure, PhotoResult

__all__ = [
    "DETECTORS",
    "MODELS",
    "SCHEMA_VERSION",
    "Analysis",
    "Candidate",
    "EmptyPhotoError",
    "EngineConfig",
    "EngineError",
    "EnrollmentError",
    "FaceIndex",
    "FaceResult",
    "Gallery",
    "GalleryError",
    "GalleryModelMismatchError",
    "Match",
    "ModelError",
    "ModelSpec",
    "NotAnImageError",
    "Owner",
    "PhotoError",
    "PhotoFailure",
    "PhotoInput",
    "PhotoResult",
    "PhotoTooLargeError",
    "PhotoTooSmallError",
    "Recognizer",
    "TruncatedPhotoError",
    "UnsupportedFormatError",
    "WeightsChecksumError",
    "photo_files",
]
