"""Opening an image file with Pillow, its size checked from the header: shared by predict's
inputs (cnnc/data/images.py) and image-folder datasets (cnnc/data/folder.py)."""

from __future__ import annotations

from pathlib import Path

from cnnc.errors import CnncError, InputError
from cnnc.input_limits import MAX_IMAGE_PIXELS, WORK_IMAGE_SIDE


def open_image(path: Path, error: type[CnncError] = InputError):
    """The decoded image (a PIL Image); `error` naming the file when it cannot be read or is
    over MAX_IMAGE_PIXELS (checked from the header, before decoding)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise error(f"{path}: reading image files needs Pillow",
                    hint="pip install pillow, or pass .npy / IDX arrays") from None
    try:
        image = Image.open(path)  # reads the header only
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise error(f"{path}: the image is {width}x{height} pixels "
                             f"({width * height / 1e6:.0f} megapixels), more than the "
                             f"{MAX_IMAGE_PIXELS / 1e6:.0f} cnnc reads",
                             hint="shrink it first; the model sees it at its input's size")
        # JPEG decodes at a reduced scale directly (at least WORK_IMAGE_SIDE a side).
        image.draft(image.mode if image.mode in ("L", "RGB") else None,
                    (WORK_IMAGE_SIDE, WORK_IMAGE_SIDE))
        image.load()
    except Image.DecompressionBombError as err:  # Pillow's own bound, checked in open()
        raise error(f"{path}: the image is more than the {MAX_IMAGE_PIXELS / 1e6:.0f} "
                    f"megapixels cnnc reads ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise error(f"{path}: not an image cnnc can read ({err})") from None
    return image
