"""Decode whatever a person uploads, or points at, into one kind of array.

Every image the app works on is a ``uint8`` ``(H, W, 3)`` RGB, C-contiguous NumPy array.
:func:`decode_image` turns bytes (or a binary file) into one, with Pillow, and handles
the odd files real people have: EXIF-rotated phone photos, grayscale, 16-bit and float
images (scaled to 8 bits, not clipped), palettes, transparency (composited on white),
CMYK, and animations (the first frame).

Anything it cannot turn into such an array raises an :class:`ImageError` subclass whose
``str()`` is one sentence for a person: an empty file, a truncated or damaged one (never
a half-grey picture), something that is not an image at all, a format we do not take
(SVG, PDF, HEIC, ...), too many pixels (checked from the header, before any pixel is
decoded) or too many bytes.

Nothing here changes Pillow's global settings (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``); the pixel limit is checked locally. Pillow still
refuses, on its own, images over twice its ``MAX_IMAGE_PIXELS`` (about 179 million
pixels), so a ``max_pixels`` above that has no effect.
"""

from __future__ import annotations

import io
import os
import stat
from functools import lru_cache
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cvplay import fetch as _fetch

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "EmptyImageError",
    "FileTooLargeError",
    "ImageError",
    "ImageTooLargeError",
    "NotAnImageError",
    "TruncatedImageError",
    "UnsupportedFormatError",
    "decode_image",
    "encode_jpeg",
    "encode_png",
    "load_image",
    "read_image",
    "to_pil",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # 20 MB
DEFAULT_MAX_PIXELS = 40_000_000  # decompression-bomb guard

#: Pillow formats we decode; anything else is refused before its decoder runs.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "PPM", "AVIF", "JPEG2000")
_SUPPORTED_HINT = "please use a PNG, JPEG, WebP, GIF, BMP or TIFF image"


class ImageError(ValueError):
    """An image could not be decoded; ``str(error)`` is one sentence for a person."""


class EmptyImageError(ImageError):
    """The file has no bytes."""


class TruncatedImageError(ImageError):
    """The file is an image, but cut off or damaged."""


class NotAnImageError(ImageError):
    """The file is not an image at all (text, an archive, random bytes, ...)."""


class UnsupportedFormatError(ImageError):
    """The file is a kind of image (or drawing) this app does not decode."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than allowed."""


class FileTooLargeError(ImageError):
    """The file has more bytes than allowed."""


# --------------------------------------------------------------------------- sniffing

# Formats we decode, recognised by their first bytes: a file that starts like one of
# these but that Pillow cannot read is damaged or cut off.
_RASTER_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
)
# Real formats we do not take.
_UNSUPPORTED_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"%!PS", "a PostScript (EPS) file"),
    (b"\xc5\xd0\xd3\xc6", "a PostScript (EPS) file"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"qoif", "a QOI image"),
    (b"DDS ", "a DirectDraw Surface (DDS) texture"),
    (b"icns", "a macOS icon (ICNS) file"),
    (b"gimp xcf", "a GIMP (XCF) file"),
    (b"\xd7\xcd\xc6\x9a", "a Windows Metafile (WMF)"),
    (b"SIMPLE  =", "a FITS file"),
)
# Common files that are not images at all.
_OTHER_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"PK\x07\x08", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard-compressed file"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"\xca\xfe\xba\xbe", "a program or Java class file"),
    (b"\xcf\xfa\xed\xfe", "a program (Mach-O executable)"),
    (b"\x1a\x45\xdf\xa3", "a video (WebM or Matroska)"),
    (b"OggS", "an Ogg audio or video file"),
    (b"fLaC", "a FLAC audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a Microsoft Office document"),
    (b"\x00asm", "a WebAssembly module"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_VIDEO_BRANDS = {
    b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"qt  ", b"3gp4", b"3gp5", b"dash"
}
_AUDIO_BRANDS = {b"M4A ", b"M4B "}


def _looks_like_text(head: bytes) -> str | None:
    """The head of the file decoded as text, if it is text."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="replace")
    if b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace")
    # A multi-byte character cut at the end of the head is not a sign of binary data.
    suspicious = sum(1 for ch in text[:-2] if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r\f\v"))
    return text if suspicious <= len(text) // 100 else None


def _ftyp_brands(head: bytes) -> set[bytes]:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return set()
    size = int.from_bytes(head[0:4], "big")
    end = min(len(head), size if 16 <= size <= 256 else 16)
    brands = {head[8:12]}
    brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
    return brands


def _classify(data: bytes, *, pillow_recognised: bool) -> ImageError:
    """The error for bytes Pillow could not open (``pillow_recognised``: a decoder took
    them and then failed, as opposed to no decoder taking them)."""
    head = data[:4096]
    for magic, name in _RASTER_MAGIC:
        if head.startswith(magic):
            return _damaged(name)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _damaged("WebP")
    brands = _ftyp_brands(head)
    if brands & _AVIF_BRANDS:
        return _damaged("AVIF")
    if brands & _HEIF_BRANDS:
        return _unsupported("a HEIC/HEIF photo")
    if brands & _AUDIO_BRANDS:
        return _not_an_image("an audio file (M4A)")
    if brands & _VIDEO_BRANDS:
        return _not_an_image("a video (MP4 or MOV)")
    if brands:
        return _not_an_image("a video or other media file")
    for magic, name in _UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            return _unsupported(name)
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return _not_an_image(name)
    if head[:4] == b"RIFF":
        kind = head[8:12]
        if kind == b"AVI ":
            return _not_an_image("a video (AVI)")
        if kind == b"WAVE":
            return _not_an_image("an audio file (WAV)")
    text = _looks_like_text(head)
    if text is not None:
        lower = text.lstrip().lower()
        if "<svg" in lower and "<html" not in lower:
            return _unsupported("an SVG vector drawing")
        if lower.startswith("<!doctype html") or "<html" in lower[:1024]:
            return _not_an_image("an HTML web page")
        if lower.startswith("data:image/"):
            return _not_an_image("a data: URL as text, not the image file itself")
        if lower.startswith("<?xml"):
            return _not_an_image("an XML file")
        if lower.startswith(("{", "[")):
            return _not_an_image("a JSON or text file")
        return _not_an_image("a text file")
    if head[:2] == b"MZ" and len(head) >= 64:
        return _not_an_image("a Windows program")
    bmp_header_sizes = (12, 16, 40, 52, 56, 64, 108, 124)
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in bmp_header_sizes:
        return _damaged("BMP")
    if pillow_recognised:
        return TruncatedImageError("The image file is damaged or incomplete, so it cannot be read.")
    return NotAnImageError("The file is not an image, or it is in a format that is not recognised.")


def _damaged(format_name: str) -> TruncatedImageError:
    return TruncatedImageError(
        f"The {format_name} image is incomplete or damaged (it may have been cut off during upload or download)."
    )


def _unsupported(what: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(f"The file is {what}, which is not supported; {_SUPPORTED_HINT}.")


def _not_an_image(what: str) -> NotAnImageError:
    return NotAnImageError(f"The file is not an image (it looks like {what}).")


def _format_size(n: int) -> str:
    mb = 1024 * 1024
    if n >= mb:
        return f"{n // mb} MB" if n % mb == 0 else f"{n / mb:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _file_too_large(size: int | None, max_bytes: int) -> FileTooLargeError:
    if size is None:
        return FileTooLargeError(f"The file is larger than the {_format_size(max_bytes)} limit.")
    return FileTooLargeError(f"The file is too large ({_format_size(size)}; the limit is {_format_size(max_bytes)}).")


@lru_cache(maxsize=1)
def _pillow_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in ALLOWED_FORMATS if name in Image.OPEN)


# --------------------------------------------------------------------------- decoding


def _read_bytes(data: bytes | bytearray | memoryview | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        if view.nbytes > max_bytes:
            raise _file_too_large(view.nbytes, max_bytes)
        return view.tobytes() if not isinstance(data, bytes) else data
    if isinstance(data, (str, os.PathLike)):
        raise TypeError("decode_image() takes bytes or a binary file; use read_image() for a path")
    read = getattr(data, "read", None)
    if read is None:
        raise TypeError(f"decode_image() takes bytes or a binary file, not {type(data).__name__}")
    size = None
    try:
        if data.seekable():
            position = data.tell()
            size = data.seek(0, os.SEEK_END) - position
            data.seek(position)
    except (AttributeError, OSError, ValueError):
        size = None
    if size is not None and size > max_bytes:
        raise _file_too_large(size, max_bytes)
    content = read(max_bytes + 1)
    if not isinstance(content, (bytes, bytearray)):
        raise TypeError("decode_image() needs a file opened in binary mode")
    if len(content) > max_bytes:
        raise _file_too_large(size if size is not None and size > max_bytes else None, max_bytes)
    return bytes(content)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"The image is too large ({width} × {height} pixels; the limit is {max_pixels:,} pixels)."
    )


def _scale_to_uint8(values: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    """One channel of 16-bit, 32-bit integer or float samples as uint8."""
    if sixteen_bit:
        wide = values.astype(np.uint32)
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    samples = values.astype(np.float64)
    finite = np.isfinite(samples)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    low, high = float(samples[finite].min()), float(samples[finite].max())
    if values.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
        scaled = samples * 255.0  # float images in [0, 1]
    elif low >= 0.0 and high <= 255.0:
        scaled = samples  # already 8-bit values
    elif low >= 0.0 and high <= 65535.0:
        scaled = samples * (255.0 / 65535.0)  # 16-bit values
    else:
        scaled = (samples - low) * (255.0 / (high - low))  # anything else: stretch
    scaled = np.where(finite, scaled, 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    colour = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:4].astype(np.uint32)
    out = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _scale_to_uint8(np.asarray(image), sixteen_bit=mode.startswith("I;16"))
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = (
        mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or "transparency" in image.info
        or (mode == "P" and image.palette is not None and image.palette.mode == "RGBA")
    )
    if has_alpha:
        return _composite_on_white(np.asarray(image.convert("RGBA")))
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _apply_orientation(image: Image.Image) -> Image.Image:
    """The image turned upright as its EXIF orientation says (unchanged if that fails)."""
    try:
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not make a good picture unreadable
        pass
    return image


def decode_image(
    data: bytes | bytearray | memoryview | BinaryIO,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file's bytes (or a binary file, read from its current position)
    into a ``uint8`` ``(H, W, 3)`` RGB C-contiguous array, upright as its EXIF says.

    Raises an :class:`ImageError` subclass, with a one-sentence message, for anything
    that is not a readable image within ``max_bytes`` bytes and ``max_pixels`` pixels.
    """
    content = _read_bytes(data, max_bytes)
    if not content:
        raise EmptyImageError("The file is empty.")

    try:
        image = Image.open(io.BytesIO(content), formats=_pillow_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"The image is too large (over the limit of {max_pixels:,} pixels).") from None
    except UnidentifiedImageError:
        raise _classify(content, pillow_recognised=False) from None
    except MemoryError:
        raise ImageTooLargeError("The image is too large to open.") from None
    except Exception:  # a decoder took the file, then choked on its header
        raise _classify(content, pillow_recognised=True) from None

    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise _classify(content, pillow_recognised=True)
        if width * height > max_pixels:
            raise _too_many_pixels(width, height, max_pixels)
        format_name = {"MPO": "JPEG"}.get(image.format or "", image.format or "image")
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(width, height, max_pixels) from None
        except MemoryError:
            raise _too_many_pixels(width, height, max_pixels) from None
        except OSError as error:
            if "not available" in str(error) or "not supported" in str(error):
                raise UnsupportedFormatError(
                    f"This kind of {format_name} image cannot be decoded here; {_SUPPORTED_HINT}."
                ) from None
            raise _damaged(format_name) from None
        except Exception:
            raise _damaged(format_name) from None

        upright = _apply_orientation(image)
        try:
            pixels = _to_rgb_array(upright)
        except (ValueError, OSError):
            raise UnsupportedFormatError(
                f"The image uses a colour mode ({upright.mode}) that is not supported; {_SUPPORTED_HINT}."
            ) from None
        finally:
            if upright is not image:
                upright.close()

    if pixels.ndim != 3 or pixels.shape[2] != 3:  # pragma: no cover - defensive
        raise UnsupportedFormatError(f"The image could not be converted to RGB; {_SUPPORTED_HINT}.")
    if pixels.dtype != np.uint8 or not pixels.flags.c_contiguous or not pixels.flags.writeable:
        pixels = np.array(pixels, dtype=np.uint8, order="C")
    return pixels


def read_image(
    path: str | os.PathLike,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode the image file at ``path`` (see :func:`decode_image`).

    The file's size is checked before it is read. A missing or unreadable file raises
    the usual :class:`OSError`; a path that is not a regular file (a folder, a device)
    raises :class:`NotAnImageError`.
    """
    path = os.fspath(path)
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotAnImageError(f"The path {os.path.basename(path) or path} is not a regular file.")
    if info.st_size > max_bytes:
        raise _file_too_large(info.st_size, max_bytes)
    with open(path, "rb") as file:
        content = file.read(max_bytes + 1)  # the file may have grown since stat()
    if len(content) > max_bytes:
        raise _file_too_large(None, max_bytes)
    return decode_image(content, max_bytes=max_bytes, max_pixels=max_pixels)


def _is_url(source: str) -> bool:
    head = source.lstrip()[:16].lower()
    scheme, sep, _rest = head.partition("://")
    return bool(sep) and scheme.isascii() and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()


def load_image(
    source: str | os.PathLike | bytes | bytearray | memoryview | BinaryIO,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image from a URL, a path, bytes or a binary file.

    A string with a scheme (``https://...``) is fetched with
    :func:`cvplay.fetch.fetch_image_bytes` (so only public http(s) URLs work, and its
    errors are :class:`cvplay.fetch.FetchError`, also a :class:`ValueError`); other
    strings and path-likes are read with :func:`read_image`.
    """
    if isinstance(source, str) and _is_url(source):
        content = _fetch.fetch_image_bytes(source.strip(), max_bytes=max_bytes)
        return decode_image(content, max_bytes=max_bytes, max_pixels=max_pixels)
    if isinstance(source, (str, os.PathLike)):
        return read_image(source, max_bytes=max_bytes, max_pixels=max_pixels)
    return decode_image(source, max_bytes=max_bytes, max_pixels=max_pixels)


# --------------------------------------------------------------------------- encoding


def to_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """A Pillow image of an ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``
    array (L, RGB or RGBA). Non-uint8 arrays are taken as 0-255 values, rounded and
    clipped; booleans become 0 and 255."""
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = np.clip(np.rint(np.nan_to_num(array.astype(np.float64))), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


def encode_png(image: np.ndarray | Image.Image) -> bytes:
    """PNG bytes of an image array (see :func:`to_pil`)."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: np.ndarray | Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of an image array; transparency is composited on white."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    picture = to_pil(image)
    if picture.mode in ("RGBA", "LA", "PA", "P") or "transparency" in picture.info:
        picture = Image.fromarray(_to_rgb_array(picture))
    elif picture.mode not in ("RGB", "L"):
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()
