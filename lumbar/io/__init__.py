"""Reading every supported format into a ``SpineImage`` and writing masks back out."""

from lumbar.io.read import discover_studies, read_image

__all__ = ["discover_studies", "read_image"]
