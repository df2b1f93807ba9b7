"""A procedural lumbar spine with exact ground truth, for the always-on tests and the demo.

The phantom is built in a sagittal plane (x posterior, y superior, in mm) from T11 down to S1 with a
lordotic curve, and extruded laterally: vertebral bodies (rounded boxes with a cortical rim), discs
(annulus and nucleus, with controllable height loss, darkening, bulge and herniation), the spinal
canal, laminae and spinous processes, and surrounding soft tissue. It renders as T1- or T2-weighted
MRI or as CT (Hounsfield units), with noise and a bias field, deterministically from a seed.

It is not training data for shipped models: it exists so that tests know the exact answer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from lumbar.image import SpineImage
from lumbar.labels import CANAL_LABEL, VERTEBRA_IDS, Structure, classes_of, disc_label, disc_name, vertebrae_between

LEVELS = vertebrae_between("T11", "S1")
# Tilt of each vertebra's long axis from vertical, degrees, positive = top leaning anterior.
DEFAULT_TILT_DEG = {"T11": -12.0, "T12": -12.0, "L1": -10.0, "L2": -5.0, "L3": 0.0, "L4": 8.0, "L5": 16.0, "S1": 30.0}

# Tissue intensities per contrast: (T2, T1, CT in HU).
TISSUE = {
    "air": (0.0, 0.0, -1000.0),
    "fat": (0.65, 0.9, -100.0),
    "muscle": (0.18, 0.35, 50.0),
    "viscera": (0.12, 0.3, 30.0),
    "marrow": (0.38, 0.6, 200.0),
    "cortex": (0.08, 0.1, 800.0),
    "annulus": (0.2, 0.3, 80.0),
    "nucleus": (0.85, 0.32, 85.0),
    "csf": (0.95, 0.15, 10.0),
}
T = {name: i for i, name in enumerate(TISSUE)}
CONTRASTS = ("T2", "T1", "CT")
# Heights are measured (and their truth given) at this fraction of the half-depth from the centre,
# i.e. 15% of the depth in from the anterior and posterior edges.
MEASURE_AT = 0.7


@dataclass
class DiscSpec:
    """How one disc deviates from healthy: height loss (fraction), darkening (0-1), bulge/herniation (mm)."""

    height_loss: float = 0.0
    darkening: float = 0.0
    bulge_mm: float = 0.0
    herniation_mm: float = 0.0


@dataclass
class DiscTruth:
    level: str
    label: int
    height_anterior_mm: float
    height_middle_mm: float
    height_posterior_mm: float
    bulge_mm: float
    herniation_mm: float
    darkening: float
    canal_ap_mm: float


@dataclass
class VertebraTruth:
    level: str
    label: int
    height_anterior_mm: float
    height_middle_mm: float
    height_posterior_mm: float
    depth_mm: float
    tilt_deg: float
    upper_endplate_deg: float  # inclination, posterior end up positive (tilt plus the wedge's own slope)


@dataclass
class Phantom:
    """A rendered phantom: the image, its instance labels (same grid) and the truth per structure."""

    image: SpineImage
    instances: np.ndarray
    discs: list[DiscTruth]
    vertebrae: list[VertebraTruth]
    lordosis_deg: float
    canal_ap_mm: float

    def semantic(self, include_sacrum: bool = True) -> np.ndarray:
        """Class map (``Structure``) on the image grid.

        ``include_sacrum=False`` follows SPIDER's convention, which leaves the sacrum unlabelled (as the
        shipped model therefore does).
        """
        out = classes_of(self.instances)
        if not include_sacrum:
            out[self.instances == VERTEBRA_IDS["S1"]] = Structure.BACKGROUND
        return out


@dataclass
class PhantomSpec:
    """Everything that shapes a phantom; defaults give a healthy adult lumbar spine."""

    contrast: str = "T2"
    shape: tuple[int, int, int] = (13, 320, 256)  # (lateral slices, rows, cols) of the sagittal stack
    spacing_mm: tuple[float, float, float] = (4.0, 1.0, 1.0)
    body_height_mm: float = 27.0
    body_depth_mm: float = 36.0
    body_width_mm: float = 46.0
    disc_height_mm: float = 10.0
    canal_ap_mm: float = 15.0
    canal_width_mm: float = 22.0
    tilt_deg: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TILT_DEG))
    discs: dict[str, DiscSpec] = field(default_factory=dict)  # keyed by upper vertebra, e.g. "L4"
    wedge: dict[str, float] = field(default_factory=dict)  # anterior height loss fraction per vertebra
    slip_mm: dict[str, float] = field(
        default_factory=dict
    )  # anterior shift of a vertebra (and all above) on the one below
    noise: float = 0.03
    bias: float = 0.2
    seed: int = 0
    cranial_shift_mm: float = (
        0.0  # moves the spine up the field of view: > 0 lets the top edge cut T11, as in a lumbar study
    )
    pelvis: bool = False  # sacral alae joined to iliac wings, lumbar transverse processes (a field of view of ±120 mm)


def _rounded_box(
    s: np.ndarray, t: np.ndarray, w: np.ndarray, hs: np.ndarray | float, ht: float, hw: float
) -> np.ndarray:
    """Inside test of a box with rounded edges (superellipse, exponent 8) in local coordinates."""
    return (np.abs(s / hs) ** 8 + ((t / ht) ** 2 + (w / hw) ** 2) ** 4) <= 1.0


def _draw_sacrum(
    s1_centre: np.ndarray, s1_height: float, spec: PhantomSpec, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> dict[str, np.ndarray]:
    """Fused segments S2-S4 below S1, shrinking and curving backwards, with thin dark remnants of the
    sacral discs between them, as on real MRI: a model must tell them from L5/S1.

    They are drawn but left unlabelled (only S1 carries the sacrum's label), so S1's measurements keep
    their exact truth. Returns the masks ``bone``, ``rim`` and ``remnant`` for the caller to render."""
    shape = np.broadcast_shapes(x.shape, y.shape, w.shape)
    masks = {k: np.zeros(shape, bool) for k in ("bone", "rim", "remnant")}
    a_prev, _ = _axes(spec.tilt_deg["S1"])
    bottom = s1_centre - a_prev * s1_height / 2
    gap = 1.5
    for k, (tilt, scale) in enumerate(((15.0, 0.75), (30.0, 0.6), (42.0, 0.45)), start=1):
        a, n = _axes(spec.tilt_deg["S1"] + tilt)
        h, d = s1_height * scale, spec.body_depth_mm * (1.0 - 0.15 * k)
        centre = bottom - (a + a_prev) / np.linalg.norm(a + a_prev) * gap - a * h / 2
        s_ = (x - centre[0]) * a[0] + (y - centre[1]) * a[1]
        t_ = (x - centre[0]) * n[0] + (y - centre[1]) * n[1]
        half_w = spec.body_width_mm / 2 * scale
        segment = _rounded_box(s_, t_, w, h / 2 + gap, d / 2, half_w)
        masks["bone"] |= segment
        masks["rim"] |= segment & (np.abs(t_) > d / 2 - 1.5)  # fused: cortex in front and behind only
        masks["remnant"] |= segment & (s_ > h / 2 + gap / 2) & (np.abs(t_) < d / 2 - 4)
        a_prev, bottom = a, centre - a * h / 2
    return masks


TRANSVERSE_REACH_MM = 45.0  # a lumbar vertebra's transverse processes, from the midline (drawn with a pelvis)
SACROILIAC_MM = (52.0, 54.0)  # the joint's cleft, from the midline: the alae end at its inner side, the ilia begin
ILIUM_REACH_MM = 120.0


def _draw_pelvis(
    s1_centre: np.ndarray, s1_height: float, spec: PhantomSpec, x: np.ndarray, y: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Bone of the sacral alae (S1's upper part, out to the sacroiliac joints) and of the iliac wings beyond the
    joints' 2 mm cleft, rising 30 mm above S1 as the iliac crests do beside L5 (not joined to it). Unlabelled."""
    a, n = _axes(spec.tilt_deg["S1"])
    s = (x - s1_centre[0]) * a[0] + (y - s1_centre[1]) * a[1]
    t = (x - s1_centre[0]) * n[0] + (y - s1_centre[1]) * n[1]
    h, d = s1_height, spec.body_depth_mm
    side = np.abs(w)
    ala = (np.abs(s) < h / 2 - 2) & (t > -d / 2 + 4) & (t < d / 2 + 6) & (side < SACROILIAC_MM[0])
    ilium = (s > -h / 2 - 35) & (s < h / 2 + 30) & (t > -d / 2) & (t < d / 2 + 30)
    return ala | (ilium & (side >= SACROILIAC_MM[1]) & (side < ILIUM_REACH_MM))


def _axes(tilt_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit long axis (toward superior) and normal (toward posterior) in (x posterior, y superior)."""
    phi = np.deg2rad(tilt_deg)
    return np.array([-np.sin(phi), np.cos(phi)]), np.array([np.cos(phi), np.sin(phi)])


def make_phantom(spec: PhantomSpec | None = None, **overrides) -> Phantom:
    """Render a phantom from ``spec`` (or ``PhantomSpec(**overrides)``)."""
    spec = spec or PhantomSpec(**overrides)
    if spec.contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}")
    rng = np.random.default_rng(spec.seed)
    n_lat, rows, cols = spec.shape
    d_lat, d_row, d_col = spec.spacing_mm
    w = (np.arange(n_lat) - (n_lat - 1) / 2)[:, None, None] * d_lat
    y = -(np.arange(rows) - rows * 0.45)[None, :, None] * d_row  # superior is up; origin a bit above centre
    x = (np.arange(cols) - cols * 0.5)[None, None, :] * d_col  # posterior is right
    grid_shape = (n_lat, rows, cols)

    # Place vertebrae from S1 upwards along the lordotic curve.
    centres: dict[str, np.ndarray] = {}
    heights = {lvl: spec.body_height_mm * (1.25 if lvl == "S1" else 1.0) for lvl in LEVELS}
    discs_h = {lvl: spec.disc_height_mm * (1 - spec.discs.get(lvl, DiscSpec()).height_loss) for lvl in LEVELS[:-1]}
    position = np.array([-10.0, -128.0 + spec.cranial_shift_mm])
    centres["S1"] = position
    for lower, upper in zip(LEVELS[::-1][:-1], LEVELS[::-1][1:]):
        a_lo, _ = _axes(spec.tilt_deg[lower])
        a_up, _ = _axes(spec.tilt_deg[upper])
        a_mid = (a_lo + a_up) / np.linalg.norm(a_lo + a_up)
        top_of_lower = centres[lower] + a_lo * heights[lower] / 2
        centres[upper] = top_of_lower + a_mid * discs_h[upper] + a_up * heights[upper] / 2

    for moved, shift in spec.slip_mm.items():
        below = LEVELS[LEVELS.index(moved) + 1]
        _, n_below = _axes(spec.tilt_deg[below])
        for lvl in LEVELS[: LEVELS.index(moved) + 1]:
            centres[lvl] = centres[lvl] - n_below * shift

    instances = np.zeros(grid_shape, np.int16)
    tissue = np.zeros(grid_shape, np.uint8)  # index into TISSUE_NAMES
    body = np.broadcast_to(((x + 20) / 130) ** 2 + (w / 170) ** 2 < 1.0, grid_shape)
    tissue[body] = T["viscera"]
    tissue[body & np.broadcast_to(x > 15, grid_shape)] = T["muscle"]
    tissue[body & np.broadcast_to((x > 85) | (x < -135), grid_shape)] = T["fat"]
    cortex = np.zeros(grid_shape, bool)

    hw = spec.body_width_mm / 2
    dark_nuclei = np.zeros(grid_shape, np.float32)
    canal_mask = np.zeros(grid_shape, bool)
    vertebrae, disc_truths = [], []
    for lvl in LEVELS:
        a, n = _axes(spec.tilt_deg[lvl])
        c = centres[lvl]
        s = (x - c[0]) * a[0] + (y - c[1]) * a[1]
        t = (x - c[0]) * n[0] + (y - c[1]) * n[1]
        h, d = heights[lvl], spec.body_depth_mm
        wedge = spec.wedge.get(lvl, 0.0)
        # Height shrinks linearly from posterior (t=+d/2) to anterior (t=-d/2) for a wedge.
        half_h = h / 2 * (1 - wedge * (0.5 - t / d))
        inside = _rounded_box(s, t, w, half_h, d / 2, hw)
        core = _rounded_box(s, t, w, half_h - 1.5, d / 2 - 1.5, hw - 1.5)
        canal_front = d / 2 + 1.0
        canal = (
            (t > canal_front)
            & (t < canal_front + spec.canal_ap_mm)
            & (np.abs(s) < h / 2 + 6)
            & (np.abs(w) < spec.canal_width_mm / 2)
        )
        canal_mask |= canal
        lamina = (
            (t >= canal_front + spec.canal_ap_mm)
            & (t < canal_front + spec.canal_ap_mm + 8)
            & (np.abs(s) < h / 2 - 3)
            & (np.abs(w) < 15)
        )
        spinous = (
            (t >= canal_front + spec.canal_ap_mm)
            & (t < canal_front + spec.canal_ap_mm + 32)
            & (np.abs(s + 3) < 7)
            & (np.abs(w) < 4)
        )
        pedicle = (
            (t > d / 2 - 2)
            & (t < canal_front + spec.canal_ap_mm + 2)
            & (np.abs(s) < 6)
            & (np.abs(w) > spec.canal_width_mm / 2)
            & (np.abs(w) < spec.canal_width_mm / 2 + 7)
        )
        posterior = (lamina | spinous | pedicle) if lvl != "S1" else (lamina & (np.abs(s) < 8))
        if spec.pelvis and lvl.startswith("L"):  # transverse processes, which the pelvis must not be joined to
            posterior |= (np.abs(s) < 5) & (t > d / 2) & (t < d / 2 + 10) & (np.abs(w) < TRANSVERSE_REACH_MM)
        bone = inside | posterior
        instances[bone] = VERTEBRA_IDS[lvl]
        tissue[bone] = T["marrow"]
        cortex |= (inside & ~core) | (posterior & ~np.roll(posterior, 1, axis=2))
        # Truth at the measurement positions: 15% of the depth in from each edge, and the middle.
        heights_aph = [
            h * (1 - wedge * (0.5 + MEASURE_AT / 2)),
            h * (1 - wedge / 2),
            h * (1 - wedge * (0.5 - MEASURE_AT / 2)),
        ]
        endplate = spec.tilt_deg[lvl] + np.degrees(np.arctan(h * wedge / (2 * d)))
        vertebrae.append(VertebraTruth(lvl, VERTEBRA_IDS[lvl], *heights_aph, d, spec.tilt_deg[lvl], float(endplate)))

    sacrum = {
        k: np.broadcast_to(v, grid_shape) & (instances == 0)
        for k, v in _draw_sacrum(centres["S1"], heights["S1"], spec, x, y, w).items()
    }
    tissue[sacrum["bone"]] = T["marrow"]
    if spec.pelvis:
        pelvis = np.broadcast_to(_draw_pelvis(centres["S1"], heights["S1"], spec, x, y, w), grid_shape)
        tissue[pelvis & (instances == 0)] = T["marrow"]

    # Discs: between the lower endplate of the upper vertebra and the upper endplate of the lower one.
    for upper, lower in itertools.pairwise(LEVELS):
        ds = spec.discs.get(upper, DiscSpec())
        a_up, _n_up = _axes(spec.tilt_deg[upper])
        a_lo, _n_lo = _axes(spec.tilt_deg[lower])
        top = centres[upper] - a_up * heights[upper] / 2
        bottom = centres[lower] + a_lo * heights[lower] / 2
        c = (top + bottom) / 2
        a = (a_up + a_lo) / np.linalg.norm(a_up + a_lo)
        n = np.array([a[1], -a[0]])
        s = (x - c[0]) * a[0] + (y - c[1]) * a[1]
        t = (x - c[0]) * n[0] + (y - c[1]) * n[1]
        d = spec.body_depth_mm
        # Wedge from the tilt difference: anterior height exceeds posterior in a lordotic segment.
        tilt_gap = np.deg2rad(spec.tilt_deg[lower] - spec.tilt_deg[upper])
        mid_h = float(np.linalg.norm(top - bottom))
        half_h = np.maximum(mid_h / 2 - t * np.tan(tilt_gap) / 2, 0.5)
        reach = d / 2 + ds.bulge_mm * np.clip(1 - (w / hw) ** 2, 0, 1)
        disc = (
            (np.abs(s) <= half_h)
            & (t >= -d / 2)
            & (t <= reach)
            & (np.abs(w) < hw * np.sqrt(np.clip(1 - (np.minimum(t, d / 2) / (d / 2 + 1e-6)) ** 8, 0, 1) + 1e-6))
        )
        if ds.herniation_mm > 0:
            disc |= ((t - d / 2) / ds.herniation_mm) ** 2 + (s / max(mid_h / 2, 1)) ** 2 + (w / 6) ** 2 <= 1.0
        disc &= instances == 0
        label = disc_label(upper)
        instances[disc] = label
        # An elliptical nucleus inside the annulus, as a healthy disc looks on T2.
        nucleus = disc & ((t / (d / 2 - 7)) ** 2 + (s / np.maximum(half_h - 1.5, 0.5)) ** 2 + (w / (hw - 8)) ** 2 < 1.0)
        tissue[disc] = T["annulus"]
        tissue[nucleus] = T["nucleus"]
        dark_nuclei[nucleus] = ds.darkening
        half_d = d / 2
        disc_truths.append(
            DiscTruth(
                level=disc_name(upper, lower),
                label=label,
                height_anterior_mm=mid_h + MEASURE_AT * half_d * np.tan(tilt_gap),
                height_middle_mm=mid_h,
                height_posterior_mm=mid_h - MEASURE_AT * half_d * np.tan(tilt_gap),
                bulge_mm=ds.bulge_mm,
                herniation_mm=ds.herniation_mm,
                darkening=ds.darkening,
                # The canal starts 1 mm behind the disc, so only what reaches further narrows it.
                canal_ap_mm=spec.canal_ap_mm - max(0.0, max(ds.bulge_mm, ds.herniation_mm) - 1.0),
            )
        )
        cortex &= ~disc

    canal_mask &= instances == 0
    instances[canal_mask] = CANAL_LABEL
    tissue[canal_mask] = T["csf"]
    tissue[cortex & (instances > 0) & (instances <= 30)] = T["cortex"]
    tissue[sacrum["rim"] & (instances == 0)] = T["cortex"]
    tissue[sacrum["remnant"] & (instances == 0)] = T["annulus"]

    lut = np.array([v[CONTRASTS.index(spec.contrast)] for v in TISSUE.values()], np.float32)
    image = lut[tissue]
    # A degenerated nucleus loses its water signal toward that of the annulus (Pfirrmann et al., Spine 2001).
    darkened = tissue == T["nucleus"]
    image[darkened] += dark_nuclei[darkened] * (lut[T["annulus"]] - lut[T["nucleus"]])
    image = _add_texture_and_noise(image, instances, spec, rng)
    upper = {v.level: v.upper_endplate_deg for v in vertebrae}
    lordosis = upper["S1"] - upper["L1"]
    stack_spacing = spec.spacing_mm
    img = SpineImage.from_sagittal_slices(
        image,
        stack_spacing,
        modality="CT" if spec.contrast == "CT" else "MR",
        source=f"phantom:{spec.contrast}:seed{spec.seed}",
        format="phantom",
    )
    from lumbar.image import display_to_canonical

    return Phantom(img, display_to_canonical(instances), disc_truths, vertebrae, lordosis, spec.canal_ap_mm)


def _add_texture_and_noise(
    image: np.ndarray, instances: np.ndarray, spec: PhantomSpec, rng: np.random.Generator
) -> np.ndarray:
    """Marrow texture, a smooth bias field and Rician-like noise (MR) or Gaussian noise (CT)."""
    from scipy.ndimage import gaussian_filter, zoom

    bone = (instances >= 1) & (instances <= 30)
    if spec.contrast == "CT":
        texture = gaussian_filter(rng.standard_normal(image.shape), (0, 1.0, 1.0)) * 60
        image = image + np.where(bone, texture, 0) + rng.standard_normal(image.shape) * spec.noise * 600
        return image.astype(np.float32)
    texture = gaussian_filter(rng.standard_normal(image.shape), (0, 1.2, 1.2)) * 0.15
    image = image * (1 + np.where(bone, texture, 0.05 * texture))
    coarse = rng.standard_normal((2, 4, 4)) * spec.bias
    field = np.exp(zoom(coarse, np.array(image.shape) / np.array(coarse.shape), order=3))
    image = image * field[: image.shape[0], : image.shape[1], : image.shape[2]]
    noisy = np.hypot(
        image + rng.standard_normal(image.shape) * spec.noise, rng.standard_normal(image.shape) * spec.noise
    )
    return (noisy * 1000).astype(np.float32)
