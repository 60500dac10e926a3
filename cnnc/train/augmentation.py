"""Training-batch augmentation on the host, between the dataset and the training step.

One `EpochPlan` per epoch holds every random draw of that epoch, per position in its order, made
from (seed, epoch) alone: a batch's augmentation depends only on where it falls in the epoch, so
a resumed run is bit-identical. Each transform draws from its own stream, so turning one on or
off leaves the others' draws as they were; shift and flip keep cnnc/data/augment.py's draws.
Validation and test images are never augmented (only the training loop calls this).

Per batch, in order: random crop with padding, shift, horizontal flip (cnnc/data/augment.py),
vertical flip, rotation/translation (bilinear, zero fill), random erasing, cutout; then mixup or
cutmix, which also mix the targets (rows of class weights). All vectorised NumPy over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnc.data.augment import EpochAugmentation, epoch_augmentation
from cnnc.data.split import STREAM_AUGMENT
from cnnc.errors import SpecError
from cnnc.ir.train_config import DEFAULT_AUGMENT, TrainConfig

# The fourth seed word of each transform's stream (the third is STREAM_AUGMENT).
_CROP, _VFLIP, _AFFINE, _ERASE, _CUTOUT, _MIX = 1, 2, 3, 4, 5, 6

# torchvision.transforms.RandomErasing's defaults: the erased area as a fraction of the image,
# the aspect ratio's range (drawn log-uniformly), and how many boxes it tries before giving up.
ERASE_SCALE = (0.02, 0.33)
ERASE_RATIO = (0.3, 3.3)
ERASE_ATTEMPTS = 10


def _rng(seed: int, epoch: int, transform: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [seed & 0xFFFFFFFF, epoch, STREAM_AUGMENT, transform]))


@dataclass(frozen=True)
class EpochPlan:
    """Every draw of one epoch's augmentation, indexed by position in the epoch's order.

    Arrays are None where their transform is off. Boxes are (top, left, bottom, right), empty
    when bottom <= top.
    """

    base: EpochAugmentation | None = None  # shift and horizontal flip
    crop: np.ndarray | None = None  # (n, 2) offsets (y, x) into the padded image, in [0, 2p]
    crop_pad: int = 0
    crop_mode: str = "zero"
    vflips: np.ndarray | None = None  # (n,) bool
    affine: np.ndarray | None = None  # (n, 3): degrees counter-clockwise, dx, dy in pixels
    erase: np.ndarray | None = None  # (n, 4) boxes
    cutout: np.ndarray | None = None  # (n, 4) boxes
    mix_lambda: np.ndarray | None = None  # (n,) the example's own share before any box
    mix_box: np.ndarray | None = None  # (n, 4) cutmix's box (empty: mixup for that example)
    mix_cut: np.ndarray | None = None  # (n,) bool: cutmix (True) or mixup for that example

    @property
    def mixes(self) -> bool:
        """True when batches mix examples and targets (mixup or cutmix)."""
        return self.mix_lambda is not None

    def batch(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        """The NHWC images at positions [start, stop) of the epoch, augmented (x itself is never
        written: each transform makes a new array)."""
        s = slice(start, stop)
        if self.crop is not None:
            x = random_crop(x, self.crop[s], self.crop_pad, self.crop_mode)
        if self.base is not None:
            x = self.base.batch(x, start, stop)
        if self.vflips is not None and self.vflips[s].any():
            x = np.array(x)  # never write into the caller's (the dataset's) array
            flips = self.vflips[s]
            x[flips] = x[flips, ::-1]
        if self.affine is not None:
            x = affine(x, self.affine[s, 0], self.affine[s, 1:])
        if self.erase is not None:
            x = erase_boxes(x, self.erase[s])
        if self.cutout is not None:
            x = erase_boxes(x, self.cutout[s])
        return x

    def mix(self, x: np.ndarray, y: np.ndarray, start: int, stop: int
            ) -> tuple[np.ndarray, np.ndarray]:
        """Mixup/cutmix of a batch at positions [start, stop) and of its targets y (rows of
        class weights): each example with its mirror in the batch (example i with n-1-i)."""
        if self.mix_lambda is None:
            return x, y
        s = slice(start, stop)
        return mix_batch(x, y, self.mix_lambda[s], self.mix_box[s], self.mix_cut[s])


def epoch_plan(config: TrainConfig, n: int, image_shape: tuple[int, ...], epoch: int
               ) -> EpochPlan | None:
    """The augmentation draws of `epoch` for n training examples of shape (H, W, C); None when
    the config augments nothing."""
    a, seed = config.augment, config.seed
    spatial = [k for k, v in a.items() if v and v != DEFAULT_AUGMENT[k] and k != "mixup"]
    if len(image_shape) != 3:
        if spatial:
            raise SpecError(f"augment {spatial[0]} needs image inputs (height, width, "
                            f"channels); the inputs have shape {tuple(image_shape)}",
                            path=f"train.augment.{spatial[0]}", hint="only mixup applies")
        image_shape = (1, 1, 1)  # mixup only: blends whole examples of any shape
    h, w = int(image_shape[0]), int(image_shape[1])
    parts: dict = {}
    if a["shift"] or a["flip"]:
        parts["base"] = epoch_augmentation(n, seed, epoch, a["shift"], a["flip"])
    if a["crop"]:
        p = a["crop"]
        if a["crop_padding"] == "reflect" and p >= min(h, w):
            raise SpecError(f"reflect padding of {p} pixels needs images larger than that; "
                            f"they are {h}x{w}", path="train.augment.crop",
                            hint="lower crop or use crop_padding: zero")
        parts.update(crop=_rng(seed, epoch, _CROP).integers(0, 2 * p + 1, size=(n, 2)),
                     crop_pad=p, crop_mode=a["crop_padding"])
    if a["vflip"]:
        parts["vflips"] = _rng(seed, epoch, _VFLIP).random(n) < 0.5
    if a["rotate"] or a["translate"]:
        r = _rng(seed, epoch, _AFFINE).uniform(-1.0, 1.0, size=(n, 3))
        parts["affine"] = r * np.array([a["rotate"], a["translate"] * w, a["translate"] * h])
    if a["erase"]:
        rng = _rng(seed, epoch, _ERASE)
        parts["erase"] = erasing_boxes(rng.random(n) < a["erase"],
                                       rng.random((n, ERASE_ATTEMPTS, 4)), h, w)
    if a["cutout"]:
        centre = _rng(seed, epoch, _CUTOUT).random((n, 2))
        parts["cutout"] = cutout_boxes(centre, a["cutout"], h, w)
    if a["mixup"] or a["cutmix"]:
        parts.update(_mix_draws(_rng(seed, epoch, _MIX), n, a["mixup"], a["cutmix"], h, w))
    return EpochPlan(**parts) if parts else None


# ---------------------------------------------------------------- geometric transforms


def random_crop(x: np.ndarray, offsets: np.ndarray, pad: int, mode: str = "zero") -> np.ndarray:
    """torchvision's RandomCrop(size=(H, W), padding=pad): pad every side by `pad` (zeros, or
    reflection without repeating the edge: padding_mode 'reflect'), then take the H x W window
    whose top-left corner is at offsets (y, x) of each image, each in [0, 2 * pad]."""
    _, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                    mode="reflect" if mode == "reflect" else "constant")
    out = np.empty_like(x)
    # One slice copy per image: faster than a gather of every pixel's index.
    for i, (r, c) in enumerate(offsets.tolist()):
        out[i] = padded[i, r:r + h, c:c + w]
    return out


def affine(x: np.ndarray, degrees: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Rotate each image by its angle (degrees, counter-clockwise as displayed) about its centre
    ((W-1)/2, (H-1)/2 in pixel indices) and move it by (dx, dy) pixels (right, down); bilinear,
    zero outside the image. torchvision's F.affine on tensors, without rounding the shift."""
    _, h, w, _ = x.shape
    # float32 coordinates: exact to 1/1000 pixel below 4096 pixels, and half the memory traffic.
    t = np.radians(degrees.astype(np.float64))
    cos = np.cos(t).astype(np.float32)[:, None, None]
    sin = np.sin(t).astype(np.float32)[:, None, None]
    cy, cx = np.float32((h - 1) / 2.0), np.float32((w - 1) / 2.0)
    # Each output pixel reads the input at the inverse map: undo the shift, then the rotation.
    yo = (np.arange(h, dtype=np.float32)[None, :, None]
          - (cy + shifts[:, 1, None, None].astype(np.float32)))
    xo = (np.arange(w, dtype=np.float32)[None, None, :]
          - (cx + shifts[:, 0, None, None].astype(np.float32)))
    xs = cos * xo - sin * yo + cx
    ys = sin * xo + cos * yo + cy
    return bilinear(x, ys, xs)


def bilinear(x: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample each image b of NHWC `x` at real pixel coordinates (ys[b], xs[b]) of shape (H, W),
    bilinearly, reading zero outside (grid_sample's padding_mode 'zeros')."""
    n, h, w, c = x.shape
    # A one-pixel zero border: every neighbour outside the image reads a zero from it. Pixels
    # are gathered by flat index (one take per corner), the fastest gather NumPy has.
    flat = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(-1, c)
    y0, x0 = np.floor(ys), np.floor(xs)
    fy = (ys - y0).astype(x.dtype)[..., None]
    fx = (xs - x0).astype(x.dtype)[..., None]
    row0 = np.clip(y0, -1, h).astype(np.intp) + 1
    row1 = np.minimum(row0 + 1, h + 1) * (y0 >= -1)  # the row below, or a border row
    col0 = np.clip(x0, -1, w).astype(np.intp) + 1
    col1 = np.minimum(col0 + 1, w + 1) * (x0 >= -1)
    image = (np.arange(n, dtype=np.intp) * ((h + 2) * (w + 2)))[:, None, None]
    row0, row1 = image + row0 * (w + 2), image + row1 * (w + 2)

    def at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.take(flat, rows + cols, axis=0)

    top = at(row0, col0) * (1 - fx) + at(row0, col1) * fx
    bottom = at(row1, col0) * (1 - fx) + at(row1, col1) * fx
    return top * (1 - fy) + bottom * fy


# ---------------------------------------------------------------- erasing


def erasing_boxes(apply: np.ndarray, u: np.ndarray, h: int, w: int) -> np.ndarray:
    """torchvision RandomErasing's box per image from uniforms u (n, attempts, 4): attempt k
    draws area = H*W*U(scale), aspect = exp(U(log ratio)), box h = round(sqrt(area*aspect)),
    w = round(sqrt(area/aspect)), kept if h < H and w < W, at top-left
    (floor(u*(H-h+1)), floor(u*(W-w+1))); the first kept attempt wins, none: no box."""
    n = apply.shape[0]
    lo, hi = ERASE_SCALE
    area = h * w * (lo + (hi - lo) * u[..., 0])
    log_lo, log_hi = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
    aspect = np.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    # Python's round (torchvision's int(round(...))) rounds halves to even, as np.rint does.
    bh = np.rint(np.sqrt(area * aspect)).astype(np.int64)
    bw = np.rint(np.sqrt(area / aspect)).astype(np.int64)
    ok = (bh < h) & (bw < w)
    first = np.argmax(ok, axis=1)
    rows = np.arange(n)
    found = ok[rows, first] & apply
    bh, bw = bh[rows, first], bw[rows, first]
    top = np.floor(u[rows, first, 2] * (h - bh + 1)).astype(np.int64)
    left = np.floor(u[rows, first, 3] * (w - bw + 1)).astype(np.int64)
    boxes = np.stack([top, left, top + bh, left + bw], axis=1)
    boxes[~found] = 0
    return boxes


def cutout_boxes(centre: np.ndarray, size: int, h: int, w: int) -> np.ndarray:
    """Cutout (DeVries and Taylor, 2017): a size x size square centred on a uniformly drawn
    pixel (centre: uniforms (n, 2)), clipped at the border: rows [cy - size//2, that + size)
    (their code's square for an even size; for an odd one theirs is a pixel smaller)."""
    cy = np.floor(centre[:, 0] * h).astype(np.int64)
    cx = np.floor(centre[:, 1] * w).astype(np.int64)
    half = size // 2
    return np.stack([np.clip(cy - half, 0, h), np.clip(cx - half, 0, w),
                     np.clip(cy + size - half, 0, h), np.clip(cx + size - half, 0, w)], axis=1)


def box_masks(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, H, W, 1) bool: inside each image's box (top, left, bottom, right)."""
    r, c = np.arange(h), np.arange(w)
    in_rows = (r[None, :] >= boxes[:, 0, None]) & (r[None, :] < boxes[:, 2, None])
    in_cols = (c[None, :] >= boxes[:, 1, None]) & (c[None, :] < boxes[:, 3, None])
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


def erase_boxes(x: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """x with each image's box set to 0 (RandomErasing's value=0)."""
    if not (boxes[:, 2] > boxes[:, 0]).any():
        return x
    _, h, w, _ = x.shape
    return np.where(box_masks(boxes, h, w), np.zeros((), x.dtype), x)


# ---------------------------------------------------------------- mixup and cutmix


def _mix_draws(rng: np.random.Generator, n: int, mixup: float, cutmix: float, h: int, w: int
               ) -> dict[str, np.ndarray]:
    # Every draw is made whichever is on, so that each example's draws stay where they are.
    use_cut = rng.random(n) < 0.5
    lam_mixup = rng.beta(mixup, mixup, n) if mixup else np.ones(n)
    lam_cut = rng.beta(cutmix, cutmix, n) if cutmix else np.ones(n)
    centre = rng.random((n, 2))
    if not mixup:
        use_cut = np.ones(n, bool)
    elif not cutmix:
        use_cut = np.zeros(n, bool)
    boxes = cutmix_boxes(lam_cut, centre, h, w)
    boxes[~use_cut] = 0
    return {"mix_lambda": np.where(use_cut, lam_cut, lam_mixup), "mix_box": boxes,
            "mix_cut": use_cut}


def cutmix_boxes(lam: np.ndarray, centre: np.ndarray, h: int, w: int) -> np.ndarray:
    """CutMix's box (Yun et al., 2019, their code): sides int(H * sqrt(1 - lam)) and
    int(W * sqrt(1 - lam)) centred on a uniformly drawn pixel, clipped at the border."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = (h * cut).astype(np.int64), (w * cut).astype(np.int64)
    cy = np.floor(centre[:, 0] * h).astype(np.int64)
    cx = np.floor(centre[:, 1] * w).astype(np.int64)
    return np.stack([np.clip(cy - ch // 2, 0, h), np.clip(cx - cw // 2, 0, w),
                     np.clip(cy + ch // 2, 0, h), np.clip(cx + cw // 2, 0, w)], axis=1)


def mix_batch(x: np.ndarray, y: np.ndarray, lam: np.ndarray, boxes: np.ndarray,
              cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mix example i of the batch with example n-1-i (timm's pairing): mixup
    lam * x_i + (1 - lam) * x_j, or cutmix x_i with its box pasted from x_j, lam then being the
    share of x_i's pixels left (1 - box area / image area, as in the paper). The targets mix
    with the same lam: rows of class weights summing to 1."""
    n = x.shape[0]
    partner = np.arange(n)[::-1]
    if cut.any():
        _, h, w, _ = x.shape
        area = (np.maximum(boxes[:, 2] - boxes[:, 0], 0)
                * np.maximum(boxes[:, 3] - boxes[:, 1], 0))
        share = np.where(cut, 1.0 - area / float(h * w), lam)
    else:
        share = lam
    lam_x = np.where(cut, 1.0, lam).reshape((n,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    mixed = lam_x * x + (1 - lam_x) * x[partner]  # exactly x where cutmix (lam_x = 1)
    if cut.any():
        mixed = np.where(box_masks(boxes, h, w) & cut[:, None, None, None], x[partner], mixed)
    s = share[:, None].astype(y.dtype)
    return mixed, s * y + (1 - s) * y[partner]


def describe(augment: Mapping[str, Any]) -> list[str]:
    """The run header's words for the transforms this module adds (shift and flip: the
    caller's)."""
    a = augment
    out = []
    if a.get("crop"):
        out.append(f"random crop with {a['crop']} px {a['crop_padding']} padding")
    if a.get("vflip"):
        out.append("vertical flips")
    if a.get("rotate"):
        out.append(f"rotation ±{a['rotate']:g}°")
    if a.get("translate"):
        out.append(f"translation ±{a['translate']:g}")
    if a.get("erase"):
        out.append(f"random erasing p={a['erase']:g}")
    if a.get("cutout"):
        out.append(f"cutout {a['cutout']} px")
    if a.get("mixup"):
        out.append(f"mixup alpha={a['mixup']:g}")
    if a.get("cutmix"):
        out.append(f"cutmix alpha={a['cutmix']:g}")
    return out
