"""The SynthScapes street-scene renderer: random layouts, their label colour maps and photo-like renderings.

Every image starts from a semantic layout, an (H, W) uint8 map of class ids (see
``CLASS_NAMES``). Domain A shows a layout as a flat Cityscapes-coloured label map
(``render_labels``); domain B shows it as a textured, shaded "photo" (``render_photo``). Both are
exact functions of the layout (and, for the photo, of a random generator), so the rendering of a
test label map is its exact ground truth.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from srunit.data.labels import IGNORE_LABEL, colours_to_ids
from srunit.errors import DataError

__all__ = [
    "CLASS_NAMES", "PALETTE", "SKY", "BUILDING", "VEGETATION", "ROAD", "SIDEWALK", "CAR",
    "POLE", "PERSON", "IGNORE_LABEL", "sample_layout", "render_labels", "render_photo", "colors_to_labels",
    "class_fractions",
]

SKY, BUILDING, VEGETATION, ROAD, SIDEWALK, CAR, POLE, PERSON = range(8)
CLASS_NAMES: tuple[str, ...] = (
    "sky", "building", "vegetation", "road", "sidewalk", "car", "pole", "person",
)
# Cityscapes colours, so the label maps look like the ones users know from GTA/Cityscapes.
PALETTE: np.ndarray = np.array([
    (70, 130, 180),   # sky
    (70, 70, 70),     # building
    (107, 142, 35),   # vegetation
    (128, 64, 128),   # road
    (244, 35, 232),   # sidewalk
    (0, 0, 142),      # car
    (153, 153, 153),  # pole
    (220, 20, 60),    # person
], dtype=np.uint8)
PALETTE.setflags(write=False)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    if h < 8 or w < 8:
        raise DataError(f"synthetic image size must be at least 8x8 pixels, got {h}x{w}")
    return int(h), int(w)


def _fill_rect(labels: np.ndarray, cls: int, x0: float, x1: float, y0: float, y1: float
               ) -> None:
    h, w = labels.shape
    xa, xb = max(0, int(round(x0))), min(w, int(round(x1)))
    ya, yb = max(0, int(round(y0))), min(h, int(round(y1)))
    if xb <= xa:  # keep thin objects (poles) at least one pixel wide
        xa, xb = max(0, min(w - 1, int(x0))), max(0, min(w - 1, int(x0))) + 1
    if yb > ya:
        labels[ya:yb, xa:xb] = cls


def _fill_blob(labels: np.ndarray, cls: int, cx: float, cy: float, rx: float, ry: float,
               lobes: int, phase: float, wobble: float) -> None:
    """Paint an ellipse whose radius wobbles with the angle (a canopy-like blob)."""
    h, w = labels.shape
    reach = 1.0 + wobble
    ya, yb = max(0, int(cy - ry * reach)), min(h, int(cy + ry * reach) + 1)
    xa, xb = max(0, int(cx - rx * reach)), min(w, int(cx + rx * reach) + 1)
    if ya >= yb or xa >= xb:
        return
    dy = (np.arange(ya, yb, dtype=np.float32)[:, None] + 0.5 - cy) / ry
    dx = (np.arange(xa, xb, dtype=np.float32)[None, :] + 0.5 - cx) / rx
    radius = 1.0 + wobble * np.sin(lobes * np.arctan2(dy, dx) + phase)
    mask = dx * dx + dy * dy <= radius * radius
    labels[ya:yb, xa:xb][mask] = cls


def sample_layout(rng: np.random.Generator, size: int | tuple[int, int],
                  vegetation_bias: float = 0.15) -> np.ndarray:
    """Draw a random street-scene layout.

    The scene: sky; a skyline of building blocks and tree masses, taller towards the image
    sides; a road in perspective towards a vanishing point with sidewalks on both sides;
    trees, poles and people along the sidewalks and cars on the road, occluding each other
    from far to near.

    Args:
        rng: source of all randomness.
        size: S or (H, W) in pixels.
        vegetation_bias: in [0, 1]; higher values give more and larger trees and more tree
            masses instead of buildings, hence more vegetation and less sky/building.

    Returns:
        (H, W) uint8 array of class ids in [0, len(CLASS_NAMES)).
    """
    h, w = _hw(size)
    vb = float(np.clip(vegetation_bias, 0.0, 1.0))
    yy = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(w, dtype=np.float32)[None, :] + 0.5

    horizon = h * rng.uniform(0.36, 0.52)
    vx = w * rng.uniform(0.35, 0.65)

    # Skyline, column by column: facade top and class per column; sky above the top.
    top = np.full(w, horizon, dtype=np.float32)
    cls = np.full(w, VEGETATION, dtype=np.uint8)  # gaps show low bushes below the horizon
    p_gap, p_trees = 0.15 * (1.0 - vb), 0.1 + 0.6 * vb
    x = 0
    while x < w:
        bw = max(2, int(round(w * rng.uniform(0.06, 0.22))))
        r, height_u = rng.random(), rng.uniform(0.35, 1.0)
        # Perspective: blocks near the vanishing point are farther away, hence lower.
        edge = min(1.0, abs(x + bw / 2 - vx) / (0.5 * w))
        height = horizon * (0.25 + 0.75 * edge) * height_u
        if r >= p_gap:
            top[x:x + bw] = horizon - height
            cls[x:x + bw] = VEGETATION if r < p_gap + p_trees else BUILDING
        x += bw
    labels = np.where(yy < top[None, :], np.uint8(SKY), cls[None, :]).astype(np.uint8)

    # Ground: road and sidewalks as trapezoids converging at (vx, horizon).
    cb = w * rng.uniform(0.35, 0.65)
    wb = w * rng.uniform(0.28, 0.5)
    sw = w * rng.uniform(0.08, 0.25)
    t = np.clip((yy - horizon) / (h - horizon), 0.0, 1.0)
    ground = yy >= horizon
    road_l, road_r = vx + t * (cb - wb - vx), vx + t * (cb + wb - vx)
    walk_l, walk_r = road_l - t * sw, road_r + t * sw
    labels[ground & (xx >= walk_l) & (xx < walk_r)] = SIDEWALK
    labels[ground & (xx >= road_l) & (xx < road_r)] = ROAD

    def at(tt: float) -> tuple[float, float, float, float, float]:
        """Row y and road/sidewalk edges at perspective depth tt (0 horizon, 1 bottom)."""
        return (horizon + tt * (h - horizon), vx + tt * (cb - wb - vx),
                vx + tt * (cb + wb - vx), vx + tt * (cb - wb - vx) - tt * sw,
                vx + tt * (cb + wb - vx) + tt * sw)

    # Objects are collected with their ground row and painted far (small y) to near.
    objects: list[tuple[float, int, tuple]] = []
    ground_h = h - horizon

    for _ in range(int(rng.poisson(0.6 + 5.0 * vb))):  # trees at the sidewalk's outer edge
        tt, side, jitter = rng.uniform(0.05, 0.9), rng.random() < 0.5, rng.uniform(-0.5, 0.5)
        trunk_u, rx_u, ry_u = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.2), rng.uniform(0.8, 1.3)
        lobes, phase = int(rng.integers(3, 8)), rng.uniform(0, 2 * np.pi)
        wobble = rng.uniform(0.05, 0.2)
        y, _, _, wl, wr = at(tt)
        bx = (wl if side else wr) + jitter * sw * tt
        rx = w * (0.06 + 0.2 * tt) * rx_u * (0.8 + 0.6 * vb)
        cy = y - tt * ground_h * trunk_u - rx * 0.5
        objects.append((y, 0, (bx, y, cy, rx, rx * ry_u, lobes, phase, wobble)))

    for _ in range(int(rng.integers(0, 4))):  # cars on the road
        tt, size_u = rng.uniform(0.15, 1.0), rng.uniform(0.22, 0.35)
        pos_u, h_u = rng.random(), rng.uniform(0.35, 0.45)
        y, rl, rr, _, _ = at(tt)
        cw = (rr - rl) * size_u
        cx = rl + cw / 2 + pos_u * max(0.0, rr - rl - cw)
        objects.append((y, 1, (cx, y, cw, cw * h_u)))

    for _ in range(int(rng.integers(0, 3))):  # poles on a sidewalk
        tt, side = rng.uniform(0.2, 0.9), rng.random() < 0.5
        pos_u, h_u = rng.uniform(0.3, 0.7), rng.uniform(1.5, 3.0)
        y, rl, rr, wl, wr = at(tt)
        px = wl + pos_u * (rl - wl) if side else rr + pos_u * (wr - rr)
        objects.append((y, 2, (px, y, max(1.0, 0.012 * w * (0.5 + tt)), tt * ground_h * h_u)))

    for _ in range(int(rng.integers(0, 3))):  # people on a sidewalk
        tt, side = rng.uniform(0.2, 1.0), rng.random() < 0.5
        pos_u, h_u = rng.random(), rng.uniform(0.3, 0.45)
        y, rl, rr, wl, wr = at(tt)
        px = wl + pos_u * (rl - wl) if side else rr + pos_u * (wr - rr)
        objects.append((y, 3, (px, y, tt * ground_h * h_u)))

    objects.sort(key=lambda o: (o[0], o[1]))
    for _, kind, p in objects:
        if kind == 0:
            bx, y, cy, rx, ry, lobes, phase, wobble = p
            _fill_rect(labels, VEGETATION, bx - rx * 0.08, bx + rx * 0.08, cy, y)  # trunk
            _fill_blob(labels, VEGETATION, bx, cy, rx, ry, lobes, phase, wobble)
        elif kind == 1:
            cx, y, cw, ch = p
            _fill_rect(labels, CAR, cx - cw / 2, cx + cw / 2, y - ch * 0.6, y)  # body
            _fill_rect(labels, CAR, cx - cw * 0.32, cx + cw * 0.32, y - ch, y - ch * 0.55)  # cabin
        elif kind == 2:
            px, y, pw, ph = p
            _fill_rect(labels, POLE, px - pw / 2, px + pw / 2, y - ph, y)
        else:
            px, y, ph = p
            bw = max(1.0, ph * 0.3)
            _fill_rect(labels, PERSON, px - bw / 2, px + bw / 2, y - ph * 0.85, y)  # body
            _fill_rect(labels, PERSON, px - bw * 0.3, px + bw * 0.3, y - ph, y - ph * 0.8)  # head
    return labels


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise ValueError(
            f"labels must be an (H, W) integer array, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise ValueError(
            f"labels must be class ids in [0, {len(CLASS_NAMES)}), got values "
            f"{labels.min()}..{labels.max()}"
        )
    return labels


def render_labels(labels: np.ndarray) -> np.ndarray:
    """Colour a layout with the Cityscapes palette: (H, W) class ids -> (H, W, 3) uint8."""
    return PALETTE[_check_labels(labels)]


def colors_to_labels(rgb: np.ndarray) -> np.ndarray:
    """Inverse of ``render_labels``: (H, W, 3) uint8 -> (H, W) uint8 class ids.

    Pixels whose colour is not exactly a palette colour get ``IGNORE_LABEL`` (255).
    """
    return colours_to_ids(rgb, PALETTE, IGNORE_LABEL)


def class_fractions(labels: np.ndarray) -> np.ndarray:
    """Fraction of pixels of each class: (H, W) class ids -> (len(CLASS_NAMES),) float64."""
    labels = _check_labels(labels)
    return np.bincount(labels.ravel(), minlength=len(CLASS_NAMES)) / max(1, labels.size)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field (H, W) float32, roughly zero-mean, varying over ~W/cells pixels."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    # PIL's resize of a float image is a fast, vectorised bicubic interpolation.
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC))


def _vertical_position(mask: np.ndarray) -> np.ndarray:
    """For each mask pixel, its relative height inside its vertical run: 0 top .. 1 bottom."""
    h = mask.shape[0]
    rows = np.arange(h, dtype=np.int32)[:, None]
    above = np.maximum.accumulate(np.where(mask, -1, rows), axis=0)  # last row outside, above
    below = np.minimum.accumulate(np.where(mask, h, rows)[::-1], axis=0)[::-1]  # first below
    run = np.maximum(below - above - 1, 1)
    return ((rows - above - 1) / run).astype(np.float32)


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    return np.array([r, g, b], dtype=np.float32)


def _pick(colours: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Map a roughly N(0, 1) field (1, W) to one of ``colours`` per column: (1, W, 3)."""
    idx = (np.clip(0.5 + 0.5 * noise, 0.0, 0.999) * len(colours)).astype(np.int64)
    return colours[idx]


_CAR_COLOURS = np.array([(150, 25, 30), (30, 50, 120), (215, 215, 215), (25, 25, 28),
                         (150, 152, 158), (40, 80, 50)], dtype=np.float32)
_CLOTH_COLOURS = np.array([(160, 40, 40), (40, 60, 140), (60, 60, 60), (190, 170, 120),
                           (30, 100, 90)], dtype=np.float32)


def render_photo(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render a layout as a photo-like image: (H, W) class ids -> (H, W, 3) uint8.

    Deterministic given ``labels`` and the generator state; the number of random draws does
    not depend on the layout content. Per class: sky with a vertical blue gradient and soft
    clouds; buildings grey/brown by facade with a window grid; foliage green with noise;
    asphalt with dashed centre marks in perspective; paved sidewalks; cars in a few paint
    colours with dark windows and tyres; grey poles; people with skin-coloured heads.
    Everything gets smooth illumination variation, a slight blur and sensor noise.
    """
    labels = _check_labels(labels)
    h, w = labels.shape
    yf = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h
    xi = np.arange(w, dtype=np.int32)[None, :]
    yi = np.arange(h, dtype=np.int32)[:, None]

    n_lo = _smooth_noise(rng, h, w, 3)
    n_mid = _smooth_noise(rng, h, w, 10)
    n_hi = rng.standard_normal((h, w)).astype(np.float32)
    # Fields varying along x only, so a facade, car or person gets one roughly flat tint.
    n_col = _smooth_noise(rng, 1, w, 7)
    n_col2 = _smooth_noise(rng, 1, w, 9)
    warmth, sky_depth = rng.uniform(-1.0, 1.0), rng.uniform(0.0, 1.0)
    facade_u = rng.uniform(0.3, 0.7)
    sensor = rng.standard_normal((h, w, 3)).astype(np.float32)

    out = np.zeros((h, w, 3), dtype=np.float32)
    hi, mid, lo = n_hi[..., None], n_mid[..., None], n_lo[..., None]

    def put(cls: int, colour: np.ndarray) -> None:
        m = labels == cls
        out[m] = np.broadcast_to(colour, (h, w, 3))[m]

    # Sky: deeper blue at the top, paler near the horizon, clouds from smooth noise.
    s = np.clip(yf / 0.55, 0.0, 1.0)[..., None]
    zenith = _rgb(55, 105, 185) + sky_depth * _rgb(-15, -15, 10)
    horizon_c = _rgb(180, 200, 222) + warmth * _rgb(15, 5, -10)
    cloud = np.clip(n_lo * 0.9 + n_mid * 0.35 - 0.25, 0.0, 1.0)[..., None]
    sky = (zenith * (1 - s) + horizon_c * s) * (1 - 0.65 * cloud) + 238.0 * 0.65 * cloud
    put(SKY, sky)

    # Buildings: per-facade tint between concrete grey and brick/sandstone, window grid.
    tint = np.clip(0.5 + 0.6 * n_col, 0.0, 1.0)[..., None]
    grey = _rgb(128, 128, 134)
    brown = _rgb(150, 112, 88) * facade_u + _rgb(190, 175, 140) * (1 - facade_u)
    facade = (grey * (1 - tint) + brown * tint) * (1.0 + 0.05 * hi - 0.15 * yf[..., None])
    px, py = max(3, w // 22), max(3, h // 16)
    wx, wy = (xi % px) / px, (yi % py) / py
    window = (wx > 0.3) & (wx < 0.75) & (wy > 0.3) & (wy < 0.8)
    lit = ((xi // px) * 7 + (yi // py) * 13) % 11 == 0
    glass = np.where(lit[..., None], _rgb(215, 195, 130), _rgb(52, 62, 78) + 10 * mid)
    put(BUILDING, np.where(window[..., None], glass, facade))

    # Vegetation: green with yellowish patches and leafy high-frequency noise.
    mix = np.clip(0.5 + 0.35 * n_lo + 0.25 * n_mid, 0.0, 1.0)[..., None]
    leaf = _rgb(42, 88, 30) * (1 - mix) + _rgb(105, 128, 45) * mix
    put(VEGETATION, leaf * (1.0 + 0.12 * mid + 0.15 * hi))

    # Road: asphalt; dashed centre line along the road's row-wise middle, dash length in
    # perspective (1 / road width is proportional to depth).
    drive = (labels == ROAD) | (labels == CAR)
    has = drive.any(axis=1)
    left = np.argmax(drive, axis=1)
    right = w - 1 - np.argmax(drive[:, ::-1], axis=1)
    width = np.maximum(right - left + 1, 1).astype(np.float32)
    centre = ((left + right) / 2.0)[:, None]
    dash = ((np.floor(w * 6.0 / width) % 2) == 0) & has
    mark = (np.abs(xi - centre) <= np.maximum(0.5, 0.012 * width)[:, None]) & dash[:, None]
    asphalt = _rgb(74, 73, 78) * (1.0 + 0.07 * hi + 0.08 * lo)
    put(ROAD, np.where(mark[..., None], _rgb(225, 222, 205), asphalt))

    # Sidewalk: light paving with tile joints.
    tile = max(3, w // 24)
    joint = ((xi % tile) == 0) | ((yi % max(2, tile // 2)) == 0)
    paving = _rgb(168, 160, 150) * (1.0 + 0.05 * hi + 0.06 * lo)
    put(SIDEWALK, paving * np.where(joint, 0.82, 1.0)[..., None])

    # Cars: paint colour per car (x-noise), dark glass band near the top, tyres at the bottom.
    rel = _vertical_position(labels == CAR)[..., None]
    paint = _pick(_CAR_COLOURS, n_col2)
    body = np.broadcast_to(paint, (h, w, 3)) * (1.1 - 0.3 * rel)
    body = np.where((rel > 0.08) & (rel < 0.38), _rgb(40, 50, 62), body)
    put(CAR, np.where(rel > 0.85, _rgb(22, 22, 24), body))

    put(POLE, _rgb(110, 110, 104) * (1.0 + 0.08 * hi))

    # People: skin-coloured head, clothes by x-noise, dark trousers.
    rel = _vertical_position(labels == PERSON)[..., None]
    cloth = _pick(_CLOTH_COLOURS, n_col)
    person = np.where(rel < 0.18, _rgb(205, 160, 130),
                      np.where(rel > 0.6, _rgb(42, 46, 70),
                               np.broadcast_to(cloth, (h, w, 3))))
    put(PERSON, person)

    out *= (1.0 + 0.07 * n_lo)[..., None]
    out += warmth * _rgb(4, 1, -4)
    img = Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8))
    # A slight blur softens the pixel-exact class edges, as a camera's optics would.
    img = img.filter(ImageFilter.GaussianBlur(radius=0.6))
    photo = np.asarray(img, dtype=np.float32) + 2.5 * sensor
    return np.clip(photo, 0, 255).round().astype(np.uint8)
