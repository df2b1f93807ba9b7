"""Which way up a picture was stored (PNG and JPEG carry no orientation, and head-down pictures occur), and whether a
volume's header places it the way its anatomy lies.

A DICOM or NIfTI volume says where the head is (and is doubted only where its anatomy clearly says otherwise: the end of
this module); a picture does not, and is read as shown. Shown head down, every
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
label maps and level positions are written in the file's own columns. Where the two are closer than that, the
lumbosacral check is asked of both (each its own way up), and where only mirrored back does the lowest disc pass,
the picture is mirrored back with its Summary withheld; where it passes both ways or neither, which side the front
is stays unclear, and the picture is analysed as it lies with its Summary withheld, as an unclear way up is.

A picture stored on its side (turned a quarter either way: the spine runs across it) is the last way: each picture is
also segmented with its rows and columns swapped, in the same four ways; where the network's best confidence so is
clearly above its best as stored (:data:`ON_SIDE_MARGIN`), the picture is analysed turned, its way up and
mirroring decided among those four, and a noted review reason says where its head and front lay in the file; where
the two are too close to tell, the picture is analysed as stored and its Summary withheld.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
# A picture stored on its side is turned where the network's best confidence on it turned a quarter (any way up,
# mirrored or not) is this much above its best as stored; closer than this either way, whether it lies on its side
# is unclear, and the Summary is withheld. The mirror's margin: on SPIDER's 360 mid-sagittal pictures and the second
# centre's 20, the best way as stored beats the best turned by more on all but 6 (bench/on_side.py).
ON_SIDE_MARGIN = 0.01


@dataclass(frozen=True)
class OrientationCheck:
    """The segmentation network's mean confidence on a picture as stored and turned upside down (``mirrored_back``:
    the picture mirrored back, as stored and turned upside down); where those do not decide, the lumbosacral check's
    probability that the lowest disc is L5/S1 both ways (``lumbosacral``) and its operating point; and the network's
    best confidence on the analysed picture mirrored front to back, either way up (``mirrored``: for a picture
    mirrored back, the picture as it lay); where that is within :data:`MIRROR_MARGIN` either way, the lumbosacral
    check's probability on the picture as it lay and mirrored, each its own way up (``mirror_lumbosacral``); and its
    best confidence on the picture turned a quarter, any of the four ways (``on_side``: for a picture turned on its
    side here, its best as the file holds it)."""

    as_stored: float
    upside_down: float
    lumbosacral: tuple[float, float] | None = None
    lumbosacral_threshold: float = 0.5
    mirrored: float | None = None
    mirrored_back: bool = False
    mirror_lumbosacral: tuple[float, float] | None = None
    on_side: float | None = None
    turned_on_side: bool = False

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
        return not self.confident and only_passing(self.lumbosacral, self.lumbosacral_threshold) is not None

    @property
    def decided(self) -> bool:
        return self.confident or self.by_lowest_disc

    @property
    def head_down(self) -> bool:
        """Stored head down: the network is clearly more confident on the picture turned over, or only turned over
        does the lowest disc pass the lumbosacral check."""
        if self.by_lowest_disc:
            return only_passing(self.lumbosacral, self.lumbosacral_threshold) == 1
        return self.confident and self.upside_down > self.as_stored

    @property
    def analysed(self) -> float:
        """The network's confidence on the picture the way it is analysed."""
        return self.upside_down if self.head_down else self.as_stored

    @property
    def looks_mirrored(self) -> bool:
        """The network is clearly more confident on the picture mirrored front to back than as analysed."""
        return self.mirrored is not None and self.mirrored - self.analysed >= MIRROR_MARGIN

    @property
    def mirrored_by_lowest_disc(self) -> bool:
        """Mirrored back on the lumbosacral check's word: the network could not tell, and only mirrored back does
        the lowest disc look like L5/S1."""
        return self.mirrored_back and self.mirror_lumbosacral is not None

    @property
    def mirror_unclear(self) -> bool:
        """The network cannot tell which side the front is (its confidence mirrored within :data:`MIRROR_MARGIN` of
        it as analysed), and the lumbosacral check does not decide it either (it passes both ways or neither, or was
        not asked): the way up's rule where the network cannot tell, for the front. A picture mirrored back was
        decided, by the network or by the check."""
        if self.mirrored is None or self.mirrored_back or abs(self.mirrored - self.analysed) >= MIRROR_MARGIN:
            return False
        return only_passing(self.mirror_lumbosacral, self.lumbosacral_threshold) is None

    def mirror_unclear_reason(self) -> str | None:
        """Why the Summary is withheld where neither the network nor the lumbosacral check tells which side of the
        picture its front is, or None."""
        if not self.mirror_unclear:
            return None
        said = f"segmentation confidence {self.analysed:.3f} as analysed, {self.mirrored:.3f} mirrored"
        if self.mirror_lumbosacral is not None:
            as_it_lay, back = self.mirror_lumbosacral
            looks = "both ways" if as_it_lay >= self.lumbosacral_threshold else "neither way"
            said += (
                f"; the lowest disc looks like L5/S1 {looks}: check {as_it_lay:.2f} as analysed, {back:.2f} mirrored"
            )
        return (
            f"which side of the picture its front lies on is unclear ({said}): analysed with the front on the left of "
            "the upright picture; if the front is on its right, every finding is wrong"
        )

    @property
    def best(self) -> float:
        """The network's confidence on the picture as analysed, or mirrored either way up: the best of the four ways
        it was segmented in the frame it is analysed in."""
        return max(self.as_stored, self.upside_down, self.mirrored or 0.0)

    @property
    def side_unclear(self) -> bool:
        """The network is about as confident on the picture turned a quarter as on it the way it is analysed."""
        return self.on_side is not None and abs(self.best - self.on_side) < ON_SIDE_MARGIN

    def side_unclear_reason(self) -> str | None:
        """Why the Summary is withheld where the network cannot tell whether the picture lies on its side, or None.
        (A picture turned was clearly better so: never unclear.)"""
        if not self.side_unclear:
            return None
        return (
            f"whether the picture lies on its side is unclear (segmentation confidence {self.best:.3f} as stored, "
            f"{self.on_side:.3f} turned a quarter): analysed as stored; if the spine runs across the picture as "
            "analysed, every finding is wrong"
        )

    def on_side_reason(self) -> str | None:
        """Where the analysis took the head and the front to lie in the file of a picture stored on its side and
        turned here, or None. Where its way up or its front is unclear, that side is not stated (another reason
        says so); the front's side is the mirror check's call, which can miss."""
        if not self.turned_on_side:
            return None
        places = [f"its head on the {'right' if self.head_down else 'left'}"] if self.decided else []
        if not self.mirror_unclear:
            places.append(f"its front at the {'bottom' if self.mirrored_back else 'top'}")
            if self.mirrored_by_lowest_disc:
                places[-1] += " (by the lumbosacral check: the network could not tell which side its front is)"
        where = f", taken to lie in the file with {' and '.join(places)}" if places else ""
        return (
            f"picture stored on its side: analysed turned upright{where} (segmentation confidence {self.best:.3f} "
            f"turned, {self.on_side:.3f} as stored); label maps and level positions are written in the file's own "
            "rows and columns"
        )

    def mirror_reason(self) -> str | None:
        """What a reader should know where the picture was stored mirrored and analysed mirrored back, or None (a
        picture turned on its side says where its front lay in :meth:`on_side_reason`)."""
        if not self.mirrored_back or self.turned_on_side:
            return None
        confidence = f"segmentation confidence {self.analysed:.3f} mirrored back, {self.mirrored:.3f} as stored"
        if self.mirrored_by_lowest_disc:
            as_it_lay, back = self.mirror_lumbosacral  # type: ignore[misc]
            return (
                f"picture stored mirrored front to back, by the lumbosacral check: the segmentation network could not "
                f"tell ({confidence}), and the lowest disc looks like L5/S1 only mirrored back (check {back:.2f} "
                f"against {as_it_lay:.2f}): analysed mirrored back, anterior on the left; if anterior is on the left "
                "in the file, every finding is wrong; label maps and level positions are written in the file's own "
                "columns"
            )
        return (
            f"picture stored mirrored front to back, anterior on the right: analysed mirrored back ({confidence}); "
            "label maps and level positions are written in the file's own columns"
        )

    def review_reason(self) -> str | None:
        """What a reader should know about the picture's way up, or None when it was stored head up (or on its side,
        which :meth:`on_side_reason` says)."""
        stored = {
            (False, False): "as stored",
            (True, False): "as mirrored back",
            (False, True): "as turned a quarter",
            (True, True): "as turned a quarter and mirrored back",
        }[self.mirrored_back, self.turned_on_side]
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
        if self.head_down and not self.turned_on_side:
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
    """``image`` turned back where it was clearly stored on its side (see :data:`ON_SIDE_MARGIN`), turned head up
    where it was clearly stored head down, and mirrored back where it was clearly stored mirrored front to back (see
    :data:`MIRROR_MARGIN`), its segmentation, and the evidence. ``lowest_disc``: the lumbosacral check's probability
    that the lowest disc of a picture so segmented is L5/S1, and ``threshold`` its operating point, asked both ways
    up when the network's confidence does not decide."""
    as_stored = _four_ways(image, model)
    turned = _four_ways(image.turned_on_side(), model)
    on_side = _best(turned) - _best(as_stored) >= ON_SIDE_MARGIN
    chosen, semantic, check = _upright(*(turned if on_side else as_stored), lowest_disc, threshold)
    return chosen, semantic, replace(check, on_side=_best(as_stored if on_side else turned), turned_on_side=on_side)


Segmented = tuple[SpineImage, SemanticSegmentation]


def only_passing(probabilities: tuple[float, float] | None, threshold: float) -> int | None:
    """Which of two readings of the lumbosacral check (0 or 1) alone reaches its operating point; None where both do,
    neither does, or it was not asked: the check decides only where exactly one way passes."""
    if probabilities is None:
        return None
    passing = [k for k, p in enumerate(probabilities) if p >= threshold]
    return passing[0] if len(passing) == 1 else None


def _laid_four_ways(image: SpineImage) -> list[SpineImage]:
    """``image`` as given and turned upside down, then mirrored front to back both ways up."""
    mirrored = image.mirrored_front_to_back()
    return [image, image.turned_upside_down(), mirrored, mirrored.turned_upside_down()]


def _four_ways(image: SpineImage, model: OnnxModel | None) -> list[Segmented]:
    """:func:`_laid_four_ways` of ``image``, each with its segmentation (each way segmented once: the choices below
    reuse them)."""
    return [(way, segment_semantic(way, model)) for way in _laid_four_ways(image)]


def _confidence(way: Segmented) -> float:
    return way[1].mean_confidence() or 0.0


def _best(segmented: list[Segmented]) -> float:
    return max(_confidence(way) for way in segmented)


def _upright(
    stored: Segmented,
    upside: Segmented,
    mirrored: Segmented,
    mirrored_upside: Segmented,
    lowest_disc: Callable[[SpineImage, SemanticSegmentation], float] | None,
    threshold: float,
) -> tuple[SpineImage, SemanticSegmentation, OrientationCheck]:
    """The way up of a picture as given, or of it mirrored back where the network is clearly more confident so, or,
    where it is within :data:`MIRROR_MARGIN` either way, where only mirrored back (each its own way up) does the
    lowest disc pass the lumbosacral check."""
    chosen, semantic, check = _way_up(stored, upside, lowest_disc, threshold)
    check = replace(check, mirrored=max(_confidence(mirrored), _confidence(mirrored_upside)))
    close = abs(check.mirrored - check.analysed) < MIRROR_MARGIN  # type: ignore[operator]
    if not check.looks_mirrored and not (close and lowest_disc is not None):
        return chosen, semantic, check
    back, back_semantic, back_check = _way_up(mirrored, mirrored_upside, lowest_disc, threshold)
    by_check = None
    if not check.looks_mirrored:  # the network cannot tell: the lumbosacral check, each its own way up
        by_check = (lowest_disc(chosen, semantic), lowest_disc(back, back_semantic))  # type: ignore[misc]
        if only_passing(by_check, threshold) != 1:
            return chosen, semantic, replace(check, mirror_lumbosacral=by_check, lumbosacral_threshold=threshold)
    as_it_lay = max(check.as_stored, check.upside_down)
    mirrored_back = replace(
        back_check, mirrored=as_it_lay, mirrored_back=True, mirror_lumbosacral=by_check, lumbosacral_threshold=threshold
    )
    return back, back_semantic, mirrored_back


def _way_up(
    stored: Segmented,
    upside: Segmented,
    lowest_disc: Callable[[SpineImage, SemanticSegmentation], float] | None,
    threshold: float,
) -> tuple[SpineImage, SemanticSegmentation, OrientationCheck]:
    """A picture as given or turned upside down, whichever the network (or, where it cannot tell, the lumbosacral
    check) prefers, with its segmentation and the evidence."""
    (image, as_stored), (turned, upside_down) = stored, upside
    check = OrientationCheck(_confidence(stored), _confidence(upside))
    if not check.confident and lowest_disc is not None:
        both = (lowest_disc(image, as_stored), lowest_disc(turned, upside_down))
        check = replace(check, lumbosacral=both, lumbosacral_threshold=threshold)
    return (turned, upside_down, check) if check.head_down else (image, as_stored, check)


# A volume (DICOM, NIfTI, MetaImage, NRRD) states where the head and the front are and is read so, but a header can be
# wrong: an array saved with an identity affine, a hand-made conversion. Its mid-sagittal slice is segmented the eight
# ways a picture can lie (WAYS); where the network is this much more confident in another way than as the header
# places it, the header is doubted and the Summary withheld. The margin is the mirror's and the picture on its side's,
# not tuned on volumes: on SPIDER's T2 SPACE volumes the right way wins by 0.005 or more, and 2 of the second centre's
# 20 slices read as volumes are doubted (bench/volume_orientation.py). Not on CT: the
# MRI network's confidence on CT does not tell head from feet (the TPTBox crop reads 0.019 surer head down).
HEADER_MARGIN = 0.01
WAYS = (
    "as the header places it",
    "turned head down",
    "mirrored front to back",
    "mirrored and turned head down",
    "turned on its side (rows and columns swapped)",
    "on its side and turned over",
    "on its side and mirrored",
    "on its side, mirrored and turned over",
)


def slice_of(image: SpineImage, index: int) -> SpineImage:
    """Display slice ``index`` of ``image`` as a one-slice image, laid out as it is analysed."""
    return SpineImage.from_sagittal_slices(
        image.sagittal_slices()[index : index + 1], image.display_spacing_mm(), modality=image.modality
    )


def ways(slice_image: SpineImage) -> list[SpineImage]:
    """A one-slice image laid each of the eight ways of :data:`WAYS`, in that order."""
    return _laid_four_ways(slice_image) + _laid_four_ways(slice_image.turned_on_side())


def way_confidences(slice_image: SpineImage, model: OnnxModel | None = None) -> tuple[float, ...]:
    """The network's mean confidence on a one-slice image in each of :data:`WAYS`, in that order."""
    return tuple(segment_semantic(way, model).mean_confidence() or 0.0 for way in ways(slice_image))


def best_other_way(confidences: Sequence[float]) -> int:
    """Which of :data:`WAYS` but the first the network reads most surely."""
    return max(range(1, len(confidences)), key=lambda k: confidences[k])


def header_doubt(confidences: Sequence[float]) -> str | None:
    """A review reason where the network reads the mid-sagittal slice in another of :data:`WAYS` at least
    :data:`HEADER_MARGIN` more surely than as the header places it (``confidences[0]``); None otherwise."""
    best = best_other_way(confidences)
    if confidences[best] - confidences[0] < HEADER_MARGIN:
        return None
    return (
        f"the segmentation network reads the mid-sagittal slice {WAYS[best]} more surely than {WAYS[0]} "
        f"(confidence {confidences[best]:.3f} against {confidences[0]:.3f}): the file's orientation may be wrong (an "
        "array saved without its real affine?), and then every level name and front-to-back measure is; check how "
        "the file lays out its slices and the orientation it states, if any"
    )
