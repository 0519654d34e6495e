"""Decoding image files with OpenCV into RGB uint8 arrays."""
import cv2
import numpy as np

from tripletloss.errors import UserError


class BadImageError(UserError):
    """An image file that cannot be decoded (empty, truncated, not an image)."""


def read_image(path, channels=3):
    """Decode the image file at `path`; return an (H, W, 3) RGB or (H, W, 1) grey uint8 array.

    Any depth (8/16-bit) and colour layout (grey, BGR, BGRA) is converted. Raises BadImageError naming the file.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise BadImageError(f"{path}: cannot read ({exc.strerror})") from None
    flag = cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE
    image = cv2.imdecode(data, flag) if data.size else None
    if image is None:
        raise BadImageError(f"{path}: not a decodable image ({data.size} bytes)")
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image[:, :, None]
