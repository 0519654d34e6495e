"""Decoding image files with OpenCV into RGB uint8 arrays."""
import cv2
import numpy as np

from tripletloss.errors import UserError


class BadImageError(UserError):
    """An image file that cannot be decoded (empty, truncated, not an image)."""


def read_image(path):
    """Decode the image file at `path`; return an (H, W, 3) RGB uint8 array.

    Any depth (8/16-bit) and colour layout (grey, BGR, BGRA) is converted. Raises BadImageError naming the file.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise BadImageError(f"{path}: cannot read ({exc.strerror})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise BadImageError(f"{path}: not a decodable image ({data.size} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
