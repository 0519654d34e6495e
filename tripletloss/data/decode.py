"""Decoding image files with OpenCV into RGB uint8 arrays: the one decoder every command uses.

Before anything is decoded, the width and height stated in the file's header (PNG, JPEG, PNM, BMP, GIF, WebP) are
checked against MAX_PIXELS, so a few hundred bytes claiming a huge picture (a decompression bomb) are a bad image
like any other instead of gigabytes of memory or an OpenCV exception.
"""
import struct

import cv2
import numpy as np

from tripletloss.errors import UserError

#: Most pixels a decoded image may have (64 Mpx, 192 MB as RGB; far above any face photo).
MAX_PIXELS = 1 << 26
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadImageError(UserError):
    """An image file that cannot be decoded (empty, truncated, not an image, too large); `reason` says why."""

    def __init__(self, path, reason=""):  # one argument (a whole message) too: DataLoader re-raises it so
        super().__init__(f"{path}: {reason}" if reason else str(path))
        self.path, self.reason = path, reason


def jpeg_frame(data):
    """Return the offset of a JPEG's first start-of-frame segment (its 0xFF marker byte), or None when the
    segments before the first scan hold none."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
        elif marker in _JPEG_SOF:
            return pos
        elif marker == 0xDA:
            return None
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def _jpeg_size(data):
    """(width, height) from a JPEG's first start-of-frame segment, or None."""
    pos = jpeg_frame(data)
    if pos is None or pos + 9 > len(data):
        return None
    height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
    return width, height


def _pnm_size(data):
    """(width, height) from a PGM/PPM/PBM header (P1..P6), or None."""
    fields = data[2:64].split()
    try:
        return int(fields[0]), int(fields[1])
    except (IndexError, ValueError):
        return None


def header_size(data):
    """Return the (width, height) an image file's bytes claim in their header, or None when the format is not
    one of PNG, JPEG, PNM, BMP, GIF, WebP (or the header is too short to say)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:1] == b"P" and data[1:2] in b"123456" and data[1:2]:
        return _pnm_size(data)
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if data[:4] == b"GIF8" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:16] == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def size_problem(data):
    """Return why the header of image bytes `data` claims too many pixels (over MAX_PIXELS), or None."""
    size = header_size(data)
    if size and size[0] * size[1] > MAX_PIXELS:
        return f"header claims {size[0]}x{size[1]} pixels, over the {MAX_PIXELS:,}-pixel limit"
    return None


def decode_bytes(data, path, flags=cv2.IMREAD_COLOR):
    """Decode image bytes `data` (a uint8 array) read from `path` with cv2 `flags` after the pixel-limit check.

    Returns OpenCV's array (BGR order); raises BadImageError naming `path` for an empty, over-limit or
    undecodable file.
    """
    problem = size_problem(data[:65536].tobytes()) if data.size else None
    if problem:
        raise BadImageError(path, problem)
    try:
        image = cv2.imdecode(data, flags) if data.size else None
    except cv2.error as exc:
        raise BadImageError(path, f"OpenCV refused it ({str(exc).strip().splitlines()[-1][:160]})") from None
    if image is None or image.size == 0:
        raise BadImageError(path, f"cannot be decoded by OpenCV ({data.size} bytes)")
    return image


def read_bytes(path):
    """Return the bytes of file `path` as a uint8 array; BadImageError naming it when it cannot be read."""
    try:
        return np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise BadImageError(path, f"cannot read ({exc.strerror})") from None


def read_image(path):
    """Decode the image file at `path`; return an (H, W, 3) RGB uint8 array.

    Any depth (8/16-bit) and colour layout (grey, BGR, BGRA) is converted. Raises BadImageError naming the file.
    """
    return cv2.cvtColor(decode_bytes(read_bytes(path), path), cv2.COLOR_BGR2RGB)
