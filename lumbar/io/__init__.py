"""Reading every supported format into a ``SpineImage`` (or a ``FrameSequence``) and writing masks back out."""

from lumbar.io.read import discover_studies, read_image, read_sequence

__all__ = ["discover_studies", "read_image", "read_sequence"]
