"""Errors the engine raises, each naming what failed and what to do about it.

EngineError
├── PhotoError              the photo itself is unusable: the job fails, retrying cannot help
│   ├── EmptyPhotoError         zero bytes, or an image of zero width or height
│   ├── NotAnImageError         bytes no decoder recognises
│   ├── UnsupportedFormatError  an image, but not JPEG, PNG or WebP
│   ├── TruncatedPhotoError     a known format whose data ends early or is corrupt
│   ├── PhotoTooLargeError      more pixels than the configured limit (decompression bombs)
│   └── PhotoTooSmallError      a side too short for the face detector to work on
├── EnrollmentError         an enrollment photo without exactly one clear face, or a bad name
├── ModelError              the embedding model cannot be loaded
│   └── WeightsChecksumError    the weights file is not the one configured
└── GalleryError            the gallery file is unreadable or belongs to another model
    └── GalleryModelMismatchError
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "engine_error"


class PhotoError(EngineError):
    code = "bad_photo"


class EmptyPhotoError(PhotoError):
    code = "empty_photo"


class NotAnImageError(PhotoError):
    code = "not_an_image"


class UnsupportedFormatError(PhotoError):
    code = "unsupported_format"


class TruncatedPhotoError(PhotoError):
    code = "truncated_photo"


class PhotoTooLargeError(PhotoError):
    code = "photo_too_large"


class PhotoTooSmallError(PhotoError):
    code = "photo_too_small"


class EnrollmentError(EngineError):
    code = "enrollment_rejected"


class ModelError(EngineError):
    code = "model_unavailable"


class WeightsChecksumError(ModelError):
    code = "weights_checksum_mismatch"


class GalleryError(EngineError):
    code = "gallery_error"


class GalleryModelMismatchError(GalleryError):
    code = "gallery_model_mismatch"
