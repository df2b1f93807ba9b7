"""Which way up a picture was stored: PNG and JPEG carry no orientation, and head-down pictures occur.

A DICOM or NIfTI volume says where the head is; a picture does not, and is read as shown. Shown head down, every
level is counted from the wrong end (the top thoracic disc in view named L5/S1). This is not rare: most of SPIDER's
mid-sagittal PNGs are stored head down (``bench/orientation.py``). The segmentation network learnt from head-up
slices only, and is more confident on a picture the right way up (it knows the sacrum below the lumbar discs, the
cord above them, spinous processes pointing down). So a picture is segmented both ways up and kept the way the
network is more confident of; when the two are closer than :data:`MIN_MARGIN` the orientation is left as stored
and flagged for review.
"""

from __future__ import annotations

from dataclasses import dataclass

from lumbar.image import SpineImage
from lumbar.models.registry import OnnxModel
from lumbar.tasks.segmentation import SemanticSegmentation
from lumbar.tasks.segmentation import segment as segment_semantic

# Mean confidence over segmented pixels, upright minus upside down. On the 30 head-up T2 SPACE middle slices the
# upright side wins by at least 0.0069 (bench/orientation.py, abs_margin_min_p5_p50); closer than this, the picture's
# way up is not decided.
MIN_MARGIN = 0.003


@dataclass(frozen=True)
class OrientationCheck:
    """The segmentation network's mean confidence on a picture as stored and turned upside down."""

    as_stored: float
    upside_down: float

    @property
    def margin(self) -> float:
        return abs(self.as_stored - self.upside_down)

    @property
    def decided(self) -> bool:
        return self.margin >= MIN_MARGIN

    @property
    def head_down(self) -> bool:
        """Stored head down: the network is clearly more confident on the picture turned over."""
        return self.decided and self.upside_down > self.as_stored

    def review_reason(self) -> str | None:
        """What a reader should know about the picture's way up, or None when it was stored head up."""
        if not self.decided:
            return (
                f"which way up the picture was stored is unclear (segmentation confidence {self.as_stored:.3f} as "
                f"stored, {self.upside_down:.3f} upside down): analysed as stored, head at the top; if the head is "
                "at the bottom every level name is wrong"
            )
        if self.head_down:
            return (
                f"picture stored head down: analysed turned upright (segmentation confidence {self.upside_down:.3f} "
                f"upright, {self.as_stored:.3f} as stored); label maps and level positions are written in the file's "
                "own rows"
            )
        return None


def upright_picture(
    image: SpineImage, model: OnnxModel | None = None
) -> tuple[SpineImage, SemanticSegmentation, OrientationCheck]:
    """``image`` turned head up where it was clearly stored head down, its segmentation, and the evidence."""
    as_stored = segment_semantic(image, model)
    turned = image.turned_upside_down()
    upside_down = segment_semantic(turned, model)
    check = OrientationCheck(as_stored.mean_confidence() or 0.0, upside_down.mean_confidence() or 0.0)
    return (turned, upside_down, check) if check.head_down else (image, as_stored, check)
