"""Pick the face detector a configuration asks for; each lives in its own module, which imports
`detection` for the faces it gives, so the choice cannot live there (it would import them back)."""

from __future__ import annotations

from .config import EngineConfig
from .detection import FaceDetector

__all__ = ["load_detector"]


def load_detector(config: EngineConfig) -> FaceDetector:
    """The detector `config.chosen_detector()` names, loaded and ready; imports only what it
    needs."""
    if config.chosen_detector() == "mtcnn":
        from .mtcnn import MtcnnDetector

        return MtcnnDetector(
            min_face_size=config.min_face_size, min_probability=config.min_face_probability
        )
    from .yunet import YunetDetector

    return YunetDetector.from_package(
        min_score=config.yunet_min_score,
        min_probability=config.min_face_probability,
        threads=config.threads,
    )
