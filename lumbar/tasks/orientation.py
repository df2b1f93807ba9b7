"""Which way up a picture was stored: PNG and JPEG carry no orientation, and head-down pictures occur.

A DICOM or NIfTI volume says where the head is; a picture does not, and is read as shown. Shown head down, every
level is counted from the wrong end (the top thoracic disc in view named L5/S1). This is not rare: most of SPIDER's
mid-sagittal PNGs are stored head down (``bench/orientation.py``). The segmentation network learnt from head-up
slices only, and is more confident on a picture the right way up (it knows the sacrum below the lumbar discs, the
cord above them, spinous processes pointing down). So a picture is segmented both ways up and kept the way the
network is more confident of. When the two are closer than :data:`MIN_MARGIN`, the lumbosacral check (is the lowest
disc L5/S1, with the sacrum below it?) is asked of both ways up: where exactly one of them passes, the picture is
read that way, and a review reason says the way up rests on that check; where both or neither pass, it is left as
stored and flagged as unclear.

Mirrored front to back is another way a picture goes wrong (the network learnt anterior on the left). The picture as
analysed is also segmented mirrored, both ways up: where the network is clearly more confident mirrored
(:data:`MIRROR_MARGIN`), the picture is mirrored back and its way up decided again; a review reason says so, and its
label maps and level positions are written in the file's own columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from lumbar.image import SpineImage
from lumbar.models.registry import OnnxModel
from lumbar.tasks.segmentation import SemanticSegmentation
from lumbar.tasks.segmentation import segment as segment_semantic

# Mean confidence over segmented pixels, upright minus upside down. On the 30 head-up T2 SPACE middle slices the
# upright side wins by at least 0.0069 (bench/orientation.py, abs_margin_min_p5_p50); closer than this, the picture's
# way up is not decided.
MIN_MARGIN = 0.003
# A picture stored mirrored (anterior on the right, the network learnt anterior on the left) is mirrored back where
# the network is this much more confident on it so (either way up) than on it as analysed. On SPIDER's
# mid-sagittal pictures the network's confidence on the picture the right way round beats its best mirrored one by
# more than this on nearly every picture, as stored and as mirrored (bench/mirrored.py).
MIRROR_MARGIN = 0.01


@dataclass(frozen=True)
class OrientationCheck:
    """The segmentation network's mean confidence on a picture as stored and turned upside down (``mirrored_back``:
    the picture mirrored back, as stored and turned upside down); where those do not decide, the lumbosacral check's
    probability that the lowest disc is L5/S1 both ways (``lumbosacral``) and its operating point; and the network's
    best confidence on the analysed picture mirrored front to back, either way up (``mirrored``: for a picture
    mirrored back, the picture as it lay)."""

    as_stored: float
    upside_down: float
    lumbosacral: tuple[float, float] | None = None
    lumbosacral_threshold: float = 0.5
    mirrored: float | None = None
    mirrored_back: bool = False

    @property
    def margin(self) -> float:
        return abs(self.as_stored - self.upside_down)

    @property
    def confident(self) -> bool:
        """The segmentation network's confidence alone decides."""
        return self.margin >= MIN_MARGIN

    @property
    def by_lowest_disc(self) -> bool:
        """Undecided by confidence, decided by the lumbosacral check: exactly one way up passes it."""
        if self.confident or self.lumbosacral is None:
            return False
        return (self.lumbosacral[0] >= self.lumbosacral_threshold) != (
            self.lumbosacral[1] >= self.lumbosacral_threshold
        )

    @property
    def decided(self) -> bool:
        return self.confident or self.by_lowest_disc

    @property
    def head_down(self) -> bool:
        """Stored head down: the network is clearly more confident on the picture turned over, or only turned over
        does the lowest disc pass the lumbosacral check."""
        if self.by_lowest_disc:
            return self.lumbosacral[1] >= self.lumbosacral_threshold  # type: ignore[index]
        return self.confident and self.upside_down > self.as_stored

    @property
    def analysed(self) -> float:
        """The network's confidence on the picture the way it is analysed."""
        return self.upside_down if self.head_down else self.as_stored

    @property
    def looks_mirrored(self) -> bool:
        """The network is clearly more confident on the picture mirrored front to back than as analysed."""
        return self.mirrored is not None and self.mirrored - self.analysed >= MIRROR_MARGIN

    def mirror_reason(self) -> str | None:
        """What a reader should know where the picture was stored mirrored and analysed mirrored back, or None."""
        if not self.mirrored_back:
            return None
        return (
            f"picture stored mirrored front to back, anterior on the right: analysed mirrored back (segmentation "
            f"confidence {self.analysed:.3f} mirrored back, {self.mirrored:.3f} as stored); label maps and level "
            "positions are written in the file's own columns"
        )

    def review_reason(self) -> str | None:
        """What a reader should know about the picture's way up, or None when it was stored head up."""
        stored = "as mirrored back" if self.mirrored_back else "as stored"
        confidence = f"segmentation confidence {self.as_stored:.3f} {stored}, {self.upside_down:.3f} upside down"
        if self.by_lowest_disc:
            as_is, turned = self.lumbosacral  # type: ignore[misc]
            way, passed, failed = ("turned upright", turned, as_is) if self.head_down else (stored, as_is, turned)
            return (
                f"which way up the picture was stored rests on the lumbosacral check: the segmentation network could "
                f"not tell ({confidence}), and the lowest disc looks like L5/S1 only {way} (check {passed:.2f} against "
                f"{failed:.2f}): analysed {way}, head at the top; if the head is at the bottom every level name is "
                "wrong"
            )
        if not self.decided:
            return (
                f"which way up the picture was stored is unclear ({confidence}): analysed {stored}, head at the "
                "top; if the head is at the bottom every level name is wrong"
            )
        if self.head_down:
            return (
                f"picture stored head down: analysed turned upright (segmentation confidence {self.upside_down:.3f} "
                f"upright, {self.as_stored:.3f} {stored}); label maps and level positions are written in the file's "
                "own rows"
            )
        return None


def upright_picture(
    image: SpineImage,
    model: OnnxModel | None = None,
    lowest_disc: Callable[[SpineImage, SemanticSegmentation], float] | None = None,
    threshold: float = 0.5,
) -> tuple[SpineImage, SemanticSegmentation, OrientationCheck]:
    """``image`` turned head up where it was clearly stored head down, and mirrored back where it was clearly stored
    mirrored front to back (see :data:`MIRROR_MARGIN`), its segmentation, and the evidence. ``lowest_disc``: the
    lumbosacral check's probability that the lowest disc of a picture so segmented is L5/S1, and ``threshold`` its
    operating point, asked both ways up when the network's confidence does not decide."""
    chosen, semantic, check = _way_up(image, None, model, lowest_disc, threshold)
    mirrored = image.mirrored_front_to_back()  # as stored first, so that the check's way up is the file's
    ways = [(m, segment_semantic(m, model)) for m in (mirrored, mirrored.turned_upside_down())]
    check = replace(check, mirrored=max(s.mean_confidence() or 0.0 for _, s in ways))
    if not check.looks_mirrored:
        return chosen, semantic, check
    back, back_semantic, back_check = _way_up(*ways[0], model, lowest_disc, threshold, turned=ways[1])
    as_it_lay = max(check.as_stored, check.upside_down)
    return back, back_semantic, replace(back_check, mirrored=as_it_lay, mirrored_back=True)


def _way_up(
    image: SpineImage,
    segmented: SemanticSegmentation | None,
    model: OnnxModel | None,
    lowest_disc: Callable[[SpineImage, SemanticSegmentation], float] | None,
    threshold: float,
    turned: tuple[SpineImage, SemanticSegmentation] | None = None,
) -> tuple[SpineImage, SemanticSegmentation, OrientationCheck]:
    """``image`` as stored or turned upside down, whichever the network (or, where it cannot tell, the lumbosacral
    check) prefers, with its segmentation and the evidence; segmentations already made are passed in."""
    as_stored = segmented or segment_semantic(image, model)
    upside, upside_down = turned or (image.turned_upside_down(), None)
    upside_down = upside_down or segment_semantic(upside, model)
    check = OrientationCheck(as_stored.mean_confidence() or 0.0, upside_down.mean_confidence() or 0.0)
    if not check.confident and lowest_disc is not None:
        both = (lowest_disc(image, as_stored), lowest_disc(upside, upside_down))
        check = replace(check, lumbosacral=both, lumbosacral_threshold=threshold)
    return (upside, upside_down, check) if check.head_down else (image, as_stored, check)
