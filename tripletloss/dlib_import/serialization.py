"""A reader for dlib's binary serialization format (dlib/serialize.h, dlib/float_details.h, dlib/dnn/tensor.h).

Integers use dlib's variable-length code: one control byte (bit 7 = negative, low 4 bits = byte count n) followed
by n little-endian magnitude bytes. Floats are a float_details pair (int64 mantissa, int16 exponent) meaning
mantissa * 2**exponent, with exponents 32000/32001/32002 standing for +inf/-inf/nan. Strings are a length then raw
bytes, bools a single '1' or '0' character. A tensor is version 2, then num_samples, k, nr, nc, then raw
little-endian IEEE float32 values; an alias_tensor is version 1 and its four dims, no data.
"""
import math

import numpy as np

from tripletloss.errors import UserError

FLOAT_INF, FLOAT_NINF, FLOAT_NAN = 32000, 32001, 32002


class DlibFormatError(UserError):
    """A dlib serialized file that does not hold what the reader expects at some byte offset."""


class DlibReader:
    """Sequential reader over the bytes of one dlib-serialized object; `name` labels error messages."""

    def __init__(self, data, name="<bytes>"):
        self.data = memoryview(data)
        self.pos = 0
        self.name = name

    def fail(self, what):
        """Raise DlibFormatError naming the file, the byte offset and `what` went wrong."""
        raise DlibFormatError(f"{self.name}: {what} at byte {self.pos}")

    def take(self, n):
        """Return the next n bytes and advance; fail at end of data."""
        if self.pos + n > len(self.data):
            self.fail(f"unexpected end of data reading {n} bytes")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        """Read one integer in dlib's variable-length code and return it as a Python int."""
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            self.pos -= 1
            self.fail(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self):
        """Read one float_details (mantissa, exponent) pair and return it as a Python float."""
        mantissa, exponent = self.int(), self.int()
        if exponent == FLOAT_INF:
            return math.inf
        if exponent == FLOAT_NINF:
            return -math.inf
        if exponent == FLOAT_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def bool(self):
        """Read one bool, stored as the character '1' or '0'."""
        char = bytes(self.take(1))
        if char not in (b"0", b"1"):
            self.pos -= 1
            self.fail(f"bad bool byte {char!r}")
        return char == b"1"

    def string(self):
        """Read one std::string (length, then raw bytes) and return it decoded as latin-1."""
        return bytes(self.take(self.int())).decode("latin-1")

    def expect(self, *versions):
        """Read a version string and fail unless it is one of `versions`; return it."""
        start = self.pos
        version = self.string()
        if version not in versions:
            self.pos = start
            self.fail(f"expected {' or '.join(versions)}, found {version[:40]!r}")
        return version

    def version(self, allowed):
        """Read an integer version number and fail unless it is in `allowed`; return it."""
        value = self.int()
        if value not in allowed:
            self.fail(f"unsupported version {value} (expected one of {sorted(allowed)})")
        return value

    def tensor(self):
        """Read a resizable_tensor (version 2) and return a float32 array shaped (num_samples, k, nr, nc)."""
        self.version({2})
        dims = tuple(self.int() for _ in range(4))
        count = int(np.prod(dims))
        values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        return values.reshape(dims)

    def alias_tensor(self):
        """Read an alias_tensor (version 1: dims only) and return its (num_samples, k, nr, nc) tuple."""
        self.version({1})
        return tuple(self.int() for _ in range(4))

