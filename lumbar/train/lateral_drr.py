"""Synthetic lateral radiographs from mid-sagittal label maps: the lateral radiograph network's training images.

No lateral radiograph with labels is available, so the anatomy comes from SPIDER's mid-sagittal MRI: each picture
is segmented and its levels named as ``lumbar analyze`` does it (only series whose disc count matches the count
SPIDER lists, so the names hold), and the sacrum is the vertebra-class bone below the L5/S1 disc. The label map
becomes a radiograph the way X-rays make one (the SynthSeg idea, Billot et al. 2023, in projection): every pixel
of a lateral film is a line integral across the patient, so each structure contributes its attenuation times its
path length, which is computed analytically from the mid-sagittal outline and a random width across the patient
(a vertebral body's chord shrinks towards its anterior and posterior walls; its cortical shell, seen edge-on along
the endplates and walls, carries the full width of cortical bone there, which is what makes endplates bright
lines). What a mid-sagittal picture does not hold but a lateral film superimposes behind each body is drawn from
the body's corners: both pedicles, the articular pillars and the transverse processes' roots, each with its
cortical rim, with a gap between them where the neural foramen is. The soft tissue's path follows the body's
outline in the MRI. Per picture: random widths and attenuations (trabecular density from osteoporotic to dense,
with a grain of struts and marrow spaces), iliac wings and ribs overlapping, bowel gas in large and small pockets, a
second contour of the endplates where the two sides do not superimpose, log attenuation with scatter, exposure and
quantum noise, collimation and markers. The corners come from the label map itself
(:func:`lumbar.tasks.lateral.body_corners`), so they are exact for the picture rendered from it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from lumbar.labels import CANAL_LABEL, SPINE_ORDER, VERTEBRA_IDS
from lumbar.progress import SILENT, Progress
from lumbar.tasks.lateral import body_corners
from lumbar.tasks.measurements import vertebral_body

PIXEL_MM = 0.8  # the rendering grid
SHELL_MM = 1.2  # cortical shell thickness
BONE_GAIN = 2.0  # CT films: positive HU scaled up, bone's extra photoelectric attenuation at 50-60 keV
MIN_BODY_PIXELS = 150  # about 1 cm² at the rendering grid's pixel size: less is a fragment, not a body
LAYERS = ("soft", "body", "trabecular", "disc", "posterior", "sacrum", "sacrum_inner")


@dataclass
class Anatomy:
    """One spine's mid-sagittal anatomy on the rendering grid: per layer a path-length profile (0-1, times a width
    at rendering), the bodies' corners ``(n, 4, 2)`` [x, y] top to bottom and their names; anterior is left."""

    series: str
    patient: str
    layers: dict[str, np.ndarray]
    corners: np.ndarray
    names: list[str]

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            series=self.series,
            patient=self.patient,
            corners=self.corners,
            names=np.array(self.names),
            **{f"layer_{k}": v.astype(np.float16) for k, v in self.layers.items()},
        )

    @classmethod
    def load(cls, path: Path) -> Anatomy:
        d = np.load(path, allow_pickle=False)
        layers = {k: d[f"layer_{k}"].astype(np.float32) for k in LAYERS}
        return cls(str(d["series"]), str(d["patient"]), layers, d["corners"], [str(n) for n in d["names"]])


def _chord(mask: np.ndarray, forward: np.ndarray, floor: float = 0.35) -> np.ndarray:
    """A path-length profile over ``mask``: 1 along the structure's middle, falling as an ellipse's chord towards its
    ends along ``forward`` (never below ``floor``: bodies are kidney-shaped, not round)."""
    rows, cols = np.nonzero(mask)
    out = np.zeros(mask.shape, np.float32)
    if len(rows) == 0:
        return out
    s = np.stack([cols, rows], 1) @ forward
    low, high = s.min() - 0.5, s.max() + 0.5
    a = (s - (low + high) / 2) / max((high - low) / 2, 1e-6)
    out[rows, cols] = np.maximum(np.sqrt(np.clip(1 - a**2, 0, 1)), floor)
    return out


def _long_axis(mask: np.ndarray) -> np.ndarray:
    """The unit [x, y] direction along which a mask (a disc) is longest."""
    rows, cols = np.nonzero(mask)
    points = np.stack([cols, rows], 1).astype(np.float64)
    if len(points) < 3:
        return np.array([1.0, 0.0])
    return np.linalg.eigh(np.cov((points - points.mean(0)).T))[1][:, -1]


def _row_chord(mask: np.ndarray) -> np.ndarray:
    """The soft tissue's path-length profile: in each row, an ellipse's chord across the body's extent there. Where
    the body runs out of the picture (an MRI's field of view cuts the abdomen) it is taken to go on: by half its
    width in front, a fifth behind, so that the spine does not sit at the chord's peak."""
    out = np.zeros(mask.shape, np.float32)
    x = np.arange(mask.shape[1])
    for r in np.flatnonzero(mask.any(1)):
        cols = np.flatnonzero(mask[r])
        c0, c1 = cols.min() - 0.5, cols.max() + 0.5
        width = c1 - c0
        c0 -= 0.5 * width if cols.min() <= 1 else 0
        c1 += 0.2 * width if cols.max() >= mask.shape[1] - 2 else 0
        a = (x - (c0 + c1) / 2) / max((c1 - c0) / 2, 1e-6)
        out[r] = np.sqrt(np.clip(1 - a**2, 0, 1)) * mask[r]
    return out


def _up_directions(centres: np.ndarray) -> np.ndarray:
    """The spine's axis at each body (centres [x, y] top to bottom), towards the head: through its neighbours."""
    ups = []
    for k in range(len(centres)):
        above, below = centres[max(k - 1, 0)], centres[min(k + 1, len(centres) - 1)]
        d = above - below
        ups.append(d / np.linalg.norm(d) if np.linalg.norm(d) > 0 else np.array([0.0, -1.0]))
    return np.array(ups)


def synthetic_sacrum(disc: np.ndarray, l5_height: float) -> tuple[np.ndarray, np.ndarray]:
    """(sacrum, its first segment) drawn below the L5/S1 disc ``disc``, as the networks leave the sacrum unlabelled
    on MRI: a wedge from the disc's lower surface (S1's superior endplate), perpendicular to it, some 4.5 L5 heights
    long, narrowing and curving forwards (concave in front) as a sacrum does; S1 is its first L5 height."""
    from PIL import Image, ImageDraw

    rows, cols = np.nonzero(disc)
    points = np.stack([cols, rows], 1).astype(np.float64)
    centre = points.mean(0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    along = vectors[:, -1] * (-1 if vectors[0, -1] > 0 else 1)  # the disc's long axis, pointing anterior (-x)
    down = np.array([-along[1], along[0]])
    down = down if down[1] > 0 else -down
    a, n = (points - centre) @ along, (points - centre) @ down
    front, back = np.percentile(a, [95, 5])
    surface = n.max()
    anterior, posterior = centre + front * along + surface * down, centre + back * along + surface * down
    length = 4.5 * l5_height
    t = np.linspace(0, 1, 24)
    mid = (anterior + posterior) / 2
    spine = mid + np.outer(t * length, down) + np.outer(0.2 * length * t**2, along)  # concave in front
    half = np.linalg.norm(anterior - posterior) / 2 * (1 - 0.7 * t)
    tangent = np.gradient(spine, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    normal *= np.sign(normal[0] @ along)
    outline = np.concatenate([spine + half[:, None] * normal, (spine - half[:, None] * normal)[::-1]])
    canvas = Image.new("L", disc.shape[::-1], 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in outline], fill=1)
    sacrum = np.asarray(canvas, bool) & ~disc
    yy, xx = np.mgrid[0 : disc.shape[0], 0 : disc.shape[1]]
    depth = (np.stack([xx, yy], -1) - mid) @ down
    return sacrum, sacrum & (depth <= l5_height)


def anatomy_from_labels(
    series: str, instances: np.ndarray, picture: np.ndarray, names: dict[int, str], spacing_mm: tuple[float, float]
) -> Anatomy | None:
    """An anatomy from one upright mid-sagittal picture (anterior left), its instance map and vertebra names
    (label -> name); None without L5 and the L5/S1 disc, from which the sacrum is drawn."""
    zoom = (spacing_mm[0] / PIXEL_MM, spacing_mm[1] / PIXEL_MM)
    instances = ndimage.zoom(instances, zoom, order=0)
    picture = ndimage.zoom(picture.astype(np.float32), zoom, order=1)
    canal = instances == CANAL_LABEL
    l5s1 = instances == 100 + VERTEBRA_IDS["L5"]
    vertebrae = sorted(
        ((lab, n) for lab, n in names.items() if n in VERTEBRA_IDS and (instances == lab).any()),
        key=lambda ln: SPINE_ORDER.index(ln[1]),
    )
    if not l5s1.any() or not vertebrae or vertebrae[-1][1] != "L5":
        return None
    bodies = [vertebral_body(instances == lab, canal) for lab, _ in vertebrae]
    while bodies and bodies[0].sum() < MIN_BODY_PIXELS:  # a sliver at the picture's top edge: left unnamed
        bodies, vertebrae = bodies[1:], vertebrae[1:]
    if not bodies or any(b.sum() < MIN_BODY_PIXELS for b in bodies):
        return None
    centres = [np.array([np.nonzero(b)[1].mean(), np.nonzero(b)[0].mean()]) for b in bodies]
    l5_height = float(np.ptp(np.nonzero(bodies[-1])[0]) + 1)
    sacrum, s1 = synthetic_sacrum(l5s1, l5_height)
    if s1.sum() < 20:
        return None
    bodies.append(s1)
    centres.append(np.array([np.nonzero(s1)[1].mean(), np.nonzero(s1)[0].mean()]))
    ups = _up_directions(np.array(centres))
    corners = np.array([body_corners(b, u) for b, u in zip(bodies, ups)])
    shell = max(1, round(SHELL_MM / PIXEL_MM))
    body_len = np.zeros(instances.shape, np.float32)
    inner_len = np.zeros(instances.shape, np.float32)
    for b, u in zip(bodies[:-1], ups[:-1]):
        forward = np.array([u[1], -u[0]])
        body_len = np.maximum(body_len, _chord(b, forward))
        inner_len = np.maximum(inner_len, _chord(ndimage.binary_erosion(b, iterations=shell), forward))
    forward = np.array([ups[-1][1], -ups[-1][0]])  # the sacrum's
    all_bodies = np.any(bodies[:-1], axis=0)
    posterior = np.isin(instances, [lab for lab, _ in vertebrae]) & ~all_bodies
    discs = (instances > 100) & (instances < CANAL_LABEL)
    body_mask = ndimage.binary_fill_holes(
        picture > np.percentile(picture[picture > 0], 8) if (picture > 0).any() else picture > 0
    )
    body_mask = ndimage.binary_opening(body_mask, iterations=3)
    layers = {
        "soft": ndimage.gaussian_filter(_row_chord(body_mask), (6, 1)),  # rows smoothed: no stripes
        "body": body_len,
        "trabecular": inner_len,
        "disc": np.maximum.reduce(
            [np.zeros(instances.shape, np.float32)]
            + [_chord(instances == lab, _long_axis(instances == lab)) for lab in np.unique(instances[discs])]
        ),
        "posterior": posterior.astype(np.float32),
        "sacrum": _chord(sacrum, forward, floor=0.6),
        "sacrum_inner": _chord(ndimage.binary_erosion(sacrum, iterations=shell), forward, floor=0.6),
    }
    return Anatomy(series, series.split("_")[0], layers, corners, [n for _, n in vertebrae] + ["S1"])


def build_anatomies(spider: Path, out: Path, progress: Progress = SILENT) -> list[Path]:
    """Segment every SPIDER mid-sagittal picture as ``lumbar analyze`` does, keep those whose disc count matches
    the count SPIDER lists and that show the sacrum, and save each as ``out/<series>.npz`` (cached)."""
    from lumbar.io import read_image
    from lumbar.io.spider import read_overview_spacing
    from lumbar.pipelines.mr_sagittal import segment

    out.mkdir(parents=True, exist_ok=True)
    spacing = read_overview_spacing(spider / "overview.csv")
    with open(spider / "overview.csv", newline="") as overview:
        listed = {row["new_file_name"]: int(row["num_discs"]) for row in csv.DictReader(overview)}
    pictures = sorted(p for p in (spider / "midsag").glob("*.png") if p.stem in listed)
    progress.stage("anatomies from SPIDER mid-sagittal pictures", total=len(pictures))
    kept = []
    for path in pictures:
        target = out / f"{path.stem}.npz"
        done = out / f"{path.stem}.skipped"
        if not target.is_file() and not done.is_file():
            image = read_image(path, spacing_mm=spacing.get(path.stem, (None,))[0])
            seg = segment(image)
            anatomy = None
            if len(seg.levels.discs) == listed[path.stem]:
                upright = seg.image
                anatomy = anatomy_from_labels(
                    path.stem,
                    seg.levels.instances[0],
                    upright.sagittal_slices()[0],
                    {lv.label: lv.name for lv in seg.levels.levels},
                    upright.sagittal_spacing_mm(),
                )
            if anatomy is None:
                done.touch()
            else:
                anatomy.save(target)
        if target.is_file():
            kept.append(target)
        progress.advance()
    return kept


def _blob(shape: tuple[int, int], centre, radii, angle: float) -> np.ndarray:
    """A filled ellipse's chord profile (0-1) at ``centre`` [x, y] with ``radii`` (pixels), rotated by ``angle``."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    u = ((xx - centre[0]) * c + (yy - centre[1]) * s) / radii[0]
    v = (-(xx - centre[0]) * s + (yy - centre[1]) * c) / radii[1]
    return np.sqrt(np.clip(1 - u**2 - v**2, 0, 1))


def render(anatomy: Anatomy, rng: np.random.Generator) -> np.ndarray:
    """One synthetic lateral radiograph of ``anatomy`` (float32, bone bright), on the anatomy's grid.

    The path through each structure is its profile times a width across the patient (cm); bone and disc add their
    attenuation in excess of the soft tissue they displace (relative to water). The film is the log of the photons
    that arrive, direct and scattered, with quantum noise."""
    layers = anatomy.layers
    shape = layers["soft"].shape
    body_width = rng.uniform(3.8, 5.5)
    trabecular = trabecular_excess(rng)
    cortical = rng.uniform(1.5, 2.4)
    inner = layers["trabecular"] * (1 - 2 * SHELL_MM / 10 / body_width)
    shell = np.clip(layers["body"] - inner, 0, None)
    bone = body_width * (trabecular * inner * trabecular_texture(shape, rng) + cortical * shell)
    bone += rng.uniform(1.5, 3.5) * cortical * 0.5 * layers["posterior"]
    bone += neural_arches(shape, anatomy.corners[:-1], trabecular, cortical, rng)
    sacral_inner = layers["sacrum_inner"]
    sacral_shell = np.clip(layers["sacrum"] - sacral_inner, 0, None)
    bone += rng.uniform(5, 9) * (trabecular * sacral_inner + 0.4 * cortical * sacral_shell)
    if rng.random() < 0.7:  # the two sides' endplates not superimposed: a second, shifted contour
        shift = rng.uniform(-2.5, 2.5, 2) / PIXEL_MM
        bone = 0.5 * bone + 0.5 * ndimage.shift(bone, shift[::-1], order=1)
    # a torso's cross-section is a rounded rectangle, not an ellipse: its chord stays near full width around the spine
    soft = layers["soft"] ** rng.uniform(0.15, 0.5)
    path = rng.uniform(22, 40) * soft + body_width * rng.uniform(0.02, 0.1) * layers["disc"] + bone
    s1 = anatomy.corners[-1].mean(0)
    size = float(np.linalg.norm(anatomy.corners[-2][0] - anatomy.corners[-2][3]))  # L5's anterior height
    if rng.random() < 0.85:  # an iliac wing over the lumbosacral junction: thin bone and a dense rim
        centre = s1 + rng.uniform([-0.5, -2.5], [2.5, 0.5]) * size
        wing = _blob(shape, centre, tuple(rng.uniform([2.0, 1.5], [3.5, 3.0]) * size), rng.uniform(-0.6, 0.6))
        path += rng.uniform(0.5, 1.5) * (wing > 0) + rng.uniform(0.5, 1.5) * ((wing > 0) & (wing < 0.3))
    top = anatomy.corners[0].mean(0)
    for _ in range(rng.integers(0, 4)):  # ribs
        centre = top + rng.uniform([-3, -3], [3, 2]) * size
        radii = (rng.uniform(3, 8) * size, rng.uniform(0.12, 0.25) * size)
        path += rng.uniform(0.3, 1.0) * _blob(shape, centre, radii, rng.uniform(-0.8, 0.2))
    for _ in range(rng.integers(0, 6)):  # bowel gas in front of the spine
        centre = s1 + rng.uniform([-5, -6], [-1.5, 1]) * size
        path -= rng.uniform(1, 4) * _blob(shape, centre, tuple(rng.uniform(0.3, 1.2, 2) * size), rng.uniform(0, 3))
    if rng.random() < 0.7:  # bowel contents: small pockets of gas mottling the soft tissue in front of the spine
        edge = anatomy.corners[:, :, 0].min() - rng.uniform(0, 0.5) * size
        front = 1 / (1 + np.exp((np.arange(shape[1])[None, :] - edge) / (0.2 * size)))  # fading out at the spine
        mottle = _band_noise(shape, rng.uniform(2.0, 6.0) / PIXEL_MM, rng)
        path -= rng.uniform(0.5, 2.5) * np.clip(mottle, 0, None) * front * (layers["soft"] > 0)
    return expose(path, rng)


def trabecular_excess(rng: np.random.Generator) -> float:
    """Trabecular bone's attenuation in excess of water per cm at a radiograph's energy, from osteoporotic to dense.
    Half the films draw it low (0.03-0.2): films projected from real CTs show bodies barely brighter than the soft
    tissue in front of them, their outline carried by the endplates and walls, fainter than films drawn from 0.15-0.8
    alone show them."""
    return float(rng.uniform(0.03, 0.2) if rng.random() < 0.5 else rng.uniform(0.15, 0.8))


def _band_noise(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """White noise smoothed to structures of about ``sigma_px``, scaled to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return noise / max(float(noise.std()), 1e-6)


def trabecular_texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A multiplicative pattern for trabecular bone (mean 1): on a film its struts and marrow spaces, summed across
    the body, show as a coarse grain (smoothed over 1-2 mm across, up to 2.5 times that head to feet: the vertical
    struts carry the load and show the more)."""
    sigma = rng.uniform(0.8, 2.0) / PIXEL_MM
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (sigma * rng.uniform(1, 2.5), sigma))
    noise /= max(float(noise.std()), 1e-6)
    return np.clip(1 + rng.uniform(0.05, 0.35) * noise, 0.3, 1.7)


def _with_cortex(chord: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small bone's chord profile (0-1) with its cortical rim: seen edge on near its outline, the shell adds a
    bright line."""
    return chord + rng.uniform(0.3, 0.8) * ((chord > 0) & (chord < 0.45))


def neural_arches(
    shape: tuple[int, int], corners: np.ndarray, trabecular: float, cortical: float, rng: np.random.Generator
) -> np.ndarray:
    """Path (cm, bone in excess of water) through what a lateral film superimposes behind each body and the
    mid-sagittal picture does not hold: both pedicles (a band from the upper half of the body's posterior wall
    backwards, above the neural foramen, a gap below it), the articular pillars (the superior and
    inferior articular processes, reaching from above the pedicle to the disc below) and the transverse
    processes' roots, seen end on. Sizes scale with each body's depth and posterior height (``corners``: anterior-
    superior, posterior-superior, posterior-inferior, anterior-inferior, [x, y], anterior left)."""
    path = np.zeros(shape, np.float32)
    density = 0.5 * trabecular + 0.5 * cortical  # small bones: as much cortex as marrow
    for c in corners:
        back = c[1] - c[0]
        depth = float(np.linalg.norm(back))
        down = c[2] - c[1]
        height = float(np.linalg.norm(down))
        if depth < 1 or height < 1:
            continue
        back, down = back / depth, down / height
        angle = float(np.arctan2(back[1], back[0]))
        length = rng.uniform(0.5, 0.75) * depth
        top = rng.uniform(0.0, 0.12) * height
        pedicle_h = rng.uniform(0.4, 0.55) * height
        centre = c[1] + (0.5 * length) * back + (top + pedicle_h / 2) * down
        pedicle = _with_cortex(_blob(shape, centre, (0.6 * length, pedicle_h / 2), angle), rng)
        path += 2 * rng.uniform(0.6, 1.0) * density * pedicle
        pillar_centre = c[1] + (length + rng.uniform(0.05, 0.15) * depth) * back + rng.uniform(0.3, 0.6) * height * down
        radii = (rng.uniform(0.2, 0.3) * depth, rng.uniform(0.6, 0.9) * height)
        path += 2 * rng.uniform(0.8, 1.5) * density * _with_cortex(_blob(shape, pillar_centre, radii, angle), rng)
        if rng.random() < 0.8:  # the transverse processes run along the beam: short, dense ovals
            tp = _blob(shape, centre + 0.3 * length * back, (0.2 * depth, rng.uniform(0.15, 0.25) * height), angle)
            path += rng.uniform(1.0, 3.0) * density * _with_cortex(tp, rng)
    return path


def expose(path_cm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A film from water-equivalent path lengths (cm) on the rendering grid: attenuation at a random effective
    energy, scatter (a blurred share of the direct beam), quantum noise at a random dose, the log the detector
    takes, detector blur, and the processing that flattens large-scale thickness differences (unsharp masking,
    as CR/DR systems do). Bone is bright."""
    direct = np.exp(-rng.uniform(0.17, 0.23) * np.clip(path_cm, 0, None))
    scatter = ndimage.gaussian_filter(direct, rng.uniform(15, 40)) * rng.uniform(0.2, 1.0)
    photons = 10 ** rng.uniform(4.5, 6.3)
    detected = rng.poisson(photons * (direct + scatter)) / photons
    film = -np.log(np.clip(detected, 1 / photons, None))
    film = ndimage.gaussian_filter(film, rng.uniform(0.3, 1.2))
    film = film - rng.uniform(0.5, 0.95) * ndimage.gaussian_filter(film, rng.uniform(12, 40) / PIXEL_MM)
    return film.astype(np.float32)


def _front_piece(pieces: np.ndarray, n: int) -> int:
    """Index (from 0) of the vertebral body among a vertebra's ``n`` pieces on its mid-sagittal slice (columns
    anterior first): the most anterior piece of at least a quarter of the largest's area. The largest alone is not
    the body where the spinous process and laminae outsize it on that slice."""
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    columns = ndimage.mean(np.indices(pieces.shape)[1], pieces, np.arange(1, n + 1))
    return int(np.argmin(np.where(sizes >= sizes.max() / 4, columns, np.inf)))


def ct_film(
    hu: np.ndarray, labels: np.ndarray, spacing_mm: tuple[float, float, float], names: dict[int, str], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A lateral film projected from a CT (RAS+ array in HU, its vertebra labels ``names``: label -> name), with
    the true corners of every named body on the film whose vertebra the field of view does not cut: its outline on
    the sagittal slice through its middle (its front piece there: the posterior elements lie apart, behind the
    canal). The attenuation is the CT's own (water-equivalent path: 1 + HU/1000 per mm, positive HU doubled, summed
    across the patient); the film is exposed as :func:`render`'s are. Anterior is left, the head at the top, on the
    rendering grid."""
    hu = hu.astype(np.float32)
    # at a radiograph's lower effective energy bone attenuates about twice as much against water as the CT's HU say
    water = np.clip(1.0 + np.where(hu > 0, BONE_GAIN, 1.0) * hu / 1000.0, 0, None) * spacing_mm[0] / 10.0
    path = water.sum(axis=0)  # (y: posterior -> anterior, z: inferior -> superior)

    def to_film(plane: np.ndarray) -> np.ndarray:  # (y, z) -> rows head first, columns anterior first
        return plane[::-1, ::-1].T

    zoom = (spacing_mm[2] / PIXEL_MM, spacing_mm[1] / PIXEL_MM)
    film = expose(ndimage.zoom(to_film(path), zoom, order=1), np.random.default_rng(seed))
    bodies, found = [], []
    for label, name in sorted(names.items(), key=lambda ln: SPINE_ORDER.index(ln[1])):
        mask = labels == label
        if not mask.any():
            continue
        middle = int(np.median(np.nonzero(mask)[0]))
        plane = ndimage.zoom(to_film(mask[middle]).astype(np.uint8), zoom, order=0).astype(bool)
        pieces, n = ndimage.label(plane)
        if n == 0:
            continue
        if plane[0].any() or plane[-1].any():  # the field of view ends in the vertebra: no true corners
            continue
        body = pieces == 1 + _front_piece(pieces, n)
        if body.sum() >= MIN_BODY_PIXELS // 4:
            bodies.append(body)
            found.append(name)
    centres = np.array([[np.nonzero(b)[1].mean(), np.nonzero(b)[0].mean()] for b in bodies])
    corners = np.array([body_corners(b, u) for b, u in zip(bodies, _up_directions(centres))]).reshape(-1, 4, 2)
    return film, corners, found
