"""Pictures of a result: a sagittal slice with the segmentation in colour and every level named, and
evidence maps over disc crops. Drawn as RGB arrays; the report and the writer only encode them."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lumbar.labels import CANAL_LABEL, NAME_COLOURS, STRUCTURE_COLOURS, Structure, structure_of

OUTLINE_COLOUR = (255, 0, 255)
NAME_GAP_PX = 6  # between a disc's name and the disc's front, on the drawn picture


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "LiberationSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def to_grey(slice_: np.ndarray) -> np.ndarray:
    """Window a slice to 8 bits between its 0.5th and 99.5th percentiles."""
    lo, hi = np.percentile(slice_, [0.5, 99.5])
    return (np.clip((slice_ - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def overlay(
    slice_: np.ndarray,
    classes: np.ndarray,
    instances: np.ndarray,
    names: dict[int, str],
    spacing_mm: tuple[float, float],
    alpha: float = 0.45,
    width_px: int = 520,
    outline: np.ndarray | None = None,
    pixel_mm: tuple[float, float] | None = None,
) -> np.ndarray:
    """Colour the structures over the grey slice (resampled to square pixels) and write each level's name;
    ``outline``: a mask whose edge is drawn in magenta (CT: where bone density was measured); ``pixel_mm``: the
    pixel size the slice was measured in, which a canal speck is judged in (``spacing_mm`` where not given)."""
    grey = to_grey(slice_)
    rgb = np.stack([grey] * 3, -1).astype(np.float32)
    for structure in (Structure.DISC, Structure.VERTEBRA, Structure.CANAL):
        mask = classes == structure
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.array(STRUCTURE_COLOURS[structure], np.float32)
    if outline is not None and outline.any():
        from scipy import ndimage

        rgb[outline & ~ndimage.binary_erosion(outline)] = OUTLINE_COLOUR
    rows, cols = slice_.shape
    height_mm, width_mm = rows * spacing_mm[0], cols * spacing_mm[1]
    size = (width_px, max(1, round(width_px * height_mm / width_mm)))
    picture = Image.fromarray(rgb.astype(np.uint8)).resize(size, Image.BILINEAR)
    draw = ImageDraw.Draw(picture)
    font = _font(max(11, width_px // 40))
    scale = np.array([size[1] / rows, size[0] / cols])
    text_height = font.getbbox("Ag")[3] if hasattr(font, "getbbox") else 12
    fronts = disc_fronts(instances, names)
    for name, (r, c) in label_positions(instances, names, pixel_mm or spacing_mm).items():
        r, c = r * scale[0], c * scale[1]
        r = min(max(r, 7), size[1] - text_height + 5)  # the whole name on the picture, not just its centre
        # Disc names sit just in front of their disc (anterior is to the left), vertebra names on the body itself.
        text_x = fronts[name] * scale[1] - font.getlength(name) - NAME_GAP_PX if name in fronts else c - 10
        text_x = max(2, min(size[0] - 60, text_x))
        draw.text(
            (text_x, r - 7),
            name,
            fill=NAME_COLOURS[structure_of(name)],
            font=font,
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
    return np.asarray(picture)


def disc_fronts(instances: np.ndarray, names: dict[int, str]) -> dict[str, float]:
    """Each disc's most anterior column (anterior is to the left on a sagittal display), where its name ends: of its
    largest piece, so that a fleck the network gave the disc's label in front of it does not pull the name away."""
    from scipy import ndimage

    fronts = {}
    for label, name in names.items():
        if structure_of(name) != Structure.DISC or not (instances == label).any():
            continue
        pieces, _ = ndimage.label(instances == label)
        largest = pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1
        fronts[name] = float(np.flatnonzero(largest.any(0))[0])
    return fronts


def label_positions(
    instances: np.ndarray, names: dict[int, str], spacing_mm: tuple[float, float]
) -> dict[str, tuple[float, float]]:
    """Where each level's name is written, in (row, col) pixels: a disc at its centre, a vertebra on its body (in
    front of the canal, never on a spinous process). S1 goes on the sacrum below the L5/S1 disc, mirrored from L5's
    body, when the model outlined little of it (models trained on SPIDER leave the sacrum unlabelled)."""
    from lumbar.tasks.measurements import thecal_canal, vertebral_body

    canal = thecal_canal(instances, spacing_mm)
    centres: dict[str, tuple[float, float]] = {}
    for label, name in names.items():
        if label == CANAL_LABEL:
            continue
        mask = instances == label
        part = mask if "/" in name else vertebral_body(mask, canal)
        where = np.argwhere(part if part.any() else mask)
        if len(where):
            centres[name] = tuple(where.mean(0))
    disc = next((n for n in centres if n.endswith("/S1")), None)
    upper = disc.split("/")[0] if disc else None
    if disc and upper in centres:
        body_px = {n: int(vertebral_body(instances == k, canal).sum()) for k, n in names.items() if n in (upper, "S1")}
        if body_px.get("S1", 0) < 0.3 * body_px.get(upper, 0):
            d, u = np.array(centres[disc]), np.array(centres[upper])
            centres["S1"] = tuple(np.clip(d + (d - u), 0, np.array(instances.shape) - 1))  # kept on the image
    return centres


def heatmap_overlay(crop: np.ndarray, heat: np.ndarray, scale: int = 2) -> np.ndarray:
    """A disc crop in grey with the evidence map over it in red to yellow (stronger = more evidence)."""
    grey = to_grey(crop).astype(np.float32)
    w = np.clip(heat, 0, 1)[..., None]
    hot = np.stack([np.full_like(grey, 255), 255 * np.clip(2 * heat - 1, 0, 1), np.zeros_like(grey)], -1)
    rgb = (1 - 0.55 * w) * np.stack([grey] * 3, -1) + 0.55 * w * hot
    picture = Image.fromarray(rgb.astype(np.uint8))
    return np.asarray(picture.resize((picture.width * scale, picture.height * scale), Image.BILINEAR))


CURVE_COLOURS = ((120, 220, 255), (180, 255, 160), (255, 170, 230))  # the major curve's first


def _line(draw: ImageDraw.ImageDraw, start: np.ndarray, end: np.ndarray, colour, dashed: bool, dash_px: float = 8):
    """A 2-pixel line; dashed, it leaves every other ``dash_px`` of the line beneath it showing (where two curves
    end at one vertebra, both its colours stay visible)."""
    if not dashed:
        draw.line([tuple(start), tuple(end)], fill=colour, width=2)
        return
    steps = max(1, int(np.linalg.norm(end - start) // dash_px))
    for i in range(0, steps, 2):
        a, b = start + (end - start) * i / steps, start + (end - start) * min(i + 1, steps) / steps
        draw.line([tuple(a), tuple(b)], fill=colour, width=2)


def radiograph_overlay(
    picture: np.ndarray,
    vertebrae: list[tuple[str, np.ndarray]],
    curves: list[tuple[float, np.ndarray, np.ndarray]],
    width_px: int = 420,
) -> np.ndarray:
    """A radiograph with each named body's outline and corners, and each Cobb curve drawn as its two end
    vertebrae's mid-lines, extended, with the angle written between them. ``vertebrae``: (name, corners ``(4, 2)``
    [x, y] in the picture's pixels, left-superior first); ``curves``: (angle, upper corners, lower corners)."""
    grey = to_grey(picture)
    scale = width_px / picture.shape[1]
    size = (width_px, max(1, round(picture.shape[0] * scale)))
    image = Image.fromarray(grey).resize(size, Image.BILINEAR).convert("RGB")
    draw = ImageDraw.Draw(image)
    font = _font(max(10, width_px // 34))
    outline = STRUCTURE_COLOURS[Structure.VERTEBRA]
    for name, corners in vertebrae:
        points = [tuple(p) for p in np.asarray(corners) * scale]
        draw.line([*points, points[0]], fill=outline, width=2)
        for x, y in points:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(255, 90, 90))
        left = min(p[0] for p in points)
        middle_y = sum(p[1] for p in points) / 4
        draw.text(
            (max(2, left - 34), middle_y - 7),
            name,
            fill=NAME_COLOURS[Structure.VERTEBRA],
            font=font,
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
    drawn: set[bytes] = set()  # end vertebrae whose line is drawn: a curve sharing one dashes its line over it
    for k, (angle, upper, lower) in enumerate(curves):
        colour = CURVE_COLOURS[k % len(CURVE_COLOURS)]
        for corners in (upper, lower):
            c = np.asarray(corners, float) * scale
            left, right = (c[0] + c[3]) / 2, (c[1] + c[2]) / 2
            direction = (right - left) / max(np.linalg.norm(right - left), 1e-6)
            middle = (left + right) / 2
            ends = (middle - direction * width_px * 0.3, middle + direction * width_px * 0.3)
            key = np.round(c, 3).tobytes()
            _line(draw, *ends, colour, dashed=key in drawn)
            drawn.add(key)
        y = (np.asarray(upper)[:, 1].mean() + np.asarray(lower)[:, 1].mean()) / 2 * scale
        x = np.asarray(upper)[:, 0].max() * scale + 12
        draw.text(
            (min(x, size[0] - 60), y), f"{angle:.0f}°", fill=colour, font=font, stroke_width=2, stroke_fill=(0, 0, 0)
        )
    return np.asarray(image)
