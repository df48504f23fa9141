"""cvplay.images: decoding odd and bad files into uint8 (H, W, 3) RGB arrays.

Every file here is made in the test, with Pillow and NumPy, in memory or under tmp_path.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from cvplay import fetch, images
from cvplay.images import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    EmptyImageError,
    FileTooLargeError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
    decode_image,
    encode_jpeg,
    encode_png,
    load_image,
    read_image,
    to_pil,
)

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def save(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def noise(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def assert_rgb(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert isinstance(array, np.ndarray)
    assert array.dtype == np.uint8
    assert array.shape == (*shape, 3)
    assert array.flags.c_contiguous and array.flags.writeable


def assert_close(pixel, expected, tolerance: int = 6) -> None:
    assert np.abs(np.asarray(pixel, int) - np.asarray(expected, int)).max() <= tolerance, (pixel, expected)


def assert_person_message(error: BaseException) -> None:
    message = str(error)
    assert message and "\n" not in message
    assert "Traceback" not in message and "Errno" not in message and "<_io" not in message
    assert message[0].isupper() and message.endswith("."), message
    assert len(message) < 200, message


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height 1-bit pixels (the data is one row)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(row))
        + png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize(
    "format,options",
    [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("PPM", {}), ("WEBP", {"lossless": True}), ("TIFF", {"compression": "tiff_lzw"})],
)
def test_lossless_formats_round_trip_exactly(format, options):
    pixels = noise()
    decoded = decode_image(save(Image.fromarray(pixels), format, **options))
    assert_rgb(decoded, (24, 32))
    np.testing.assert_array_equal(decoded, pixels)


def test_jpeg_decodes_close_to_the_original():
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:] = (200, 100, 50)
    decoded = decode_image(save(Image.fromarray(pixels), "JPEG", quality=95))
    assert_rgb(decoded, (16, 16))
    assert_close(decoded[8, 8], (200, 100, 50))


def test_exif_orientation_6_is_applied():
    # Stored 60 wide and 40 high, blue with a red top-left corner; orientation 6 means
    # "rotate 90 degrees clockwise to display", so the corner ends up top-right.
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:] = BLUE
    stored[:16, :16] = RED
    exif = Image.Exif()
    exif[0x0112] = 6
    data = save(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data)
    assert_rgb(decoded, (60, 40))
    assert_close(decoded[4, 40 - 5], RED, 40)
    assert_close(decoded[4, 4], BLUE, 40)
    assert_close(decoded[60 - 5, 40 - 5], BLUE, 40)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_does_not_reject_a_good_picture():
    data = save(Image.fromarray(noise()), "JPEG", exif=b"Exif\x00\x00II*\x00garbage")
    assert_rgb(decode_image(data), (24, 32))


def test_grayscale_l_becomes_three_equal_channels():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    decoded = decode_image(save(Image.fromarray(gray), "PNG"))
    assert_rgb(decoded, (8, 8))
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], gray)


def test_one_bit_image():
    bits = Image.new("1", (8, 4), 0)
    bits.putpixel((3, 2), 1)
    decoded = decode_image(save(bits, "PNG"))
    assert tuple(decoded[2, 3]) == WHITE and tuple(decoded[0, 0]) == BLACK


def test_16_bit_png_is_scaled_not_clipped():
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    source = Image.fromarray(values)
    assert source.mode.startswith("I;16")
    data = save(source, "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    decoded = decode_image(data)
    assert_rgb(decoded, (1, 4))
    assert decoded[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (decoded[..., 0] == decoded[..., 2]).all()


def test_32_bit_integer_and_float_tiffs():
    ints = Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.int32))
    assert decode_image(save(ints, "TIFF"))[0, :, 0].tolist() == [0, 4, 255]
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert floats.mode == "F"
    assert decode_image(save(floats, "TIFF"))[0, :, 0].tolist() == [0, 128, 255]


def test_palette_with_transparency_composites_on_white():
    palette_image = Image.new("P", (4, 2), 0)
    palette_image.putpalette([*RED, *GREEN] + [0] * (254 * 3))
    palette_image.putpixel((1, 0), 1)
    data = save(palette_image, "PNG", transparency=1)
    decoded = decode_image(data)
    assert tuple(decoded[0, 0]) == RED
    assert tuple(decoded[0, 1]) == WHITE


def test_rgba_transparent_pixel_becomes_white_and_half_blends():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgba[0, 1] = (255, 0, 0, 0)
    rgba[1, 0] = (255, 0, 0, 128)
    rgba[1, 1] = (0, 0, 255, 255)
    decoded = decode_image(save(Image.fromarray(rgba), "PNG"))
    assert tuple(decoded[0, 0]) == RED
    assert tuple(decoded[0, 1]) == WHITE
    assert tuple(decoded[1, 0]) == (255, 127, 127)
    assert tuple(decoded[1, 1]) == BLUE


def test_la_image():
    la = np.array([[[0, 255], [0, 0], [200, 255]]], dtype=np.uint8)
    source = Image.merge("LA", [Image.fromarray(la[..., 0]), Image.fromarray(la[..., 1])])
    decoded = decode_image(save(source, "PNG"))
    assert [tuple(p) for p in decoded[0]] == [BLACK, WHITE, (200, 200, 200)]


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red
    data = save(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    decoded = decode_image(data)
    assert_rgb(decoded, (16, 16))
    assert_close(decoded[8, 8], RED, 10)


def _frames(size=(8, 6)):
    return [Image.new("RGB", size, RED), Image.new("RGB", size, BLUE), Image.new("RGB", size, GREEN)]


@pytest.mark.parametrize(
    "format,options",
    [
        ("GIF", {"duration": 50, "loop": 0}),
        ("WEBP", {"duration": 50, "loop": 0, "lossless": True}),
        ("PNG", {"duration": 50, "loop": 0}),  # APNG
    ],
)
def test_animations_give_the_first_frame(format, options):
    first, *rest = _frames()
    data = save(first, format, save_all=True, append_images=rest, **options)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    decoded = decode_image(data)
    assert_rgb(decoded, (6, 8))
    assert_close(decoded[3, 4], RED, 2)


def test_gif_with_transparency():
    gif = Image.new("P", (4, 4), 0)
    gif.putpalette([*BLUE, *GREEN] + [0] * (254 * 3))
    gif.putpixel((0, 0), 1)
    decoded = decode_image(save(gif, "GIF", transparency=1))
    assert tuple(decoded[0, 0]) == WHITE and tuple(decoded[1, 1]) == BLUE


def test_lossy_webp():
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[:] = (30, 160, 90)
    decoded = decode_image(save(Image.fromarray(pixels), "WEBP", quality=90))
    assert_rgb(decoded, (16, 16))
    assert_close(decoded[8, 8], (30, 160, 90), 8)


def test_inputs_bytes_bytearray_memoryview_and_file():
    data = save(Image.fromarray(noise()), "PNG")
    expected = decode_image(data)
    for source in (bytearray(data), memoryview(data), io.BytesIO(data)):
        np.testing.assert_array_equal(decode_image(source), expected)
    with pytest.raises(TypeError):
        decode_image("picture.png")  # a path: that is read_image's job


# --------------------------------------------------------------------------- bad files


def test_empty():
    for source in (b"", bytearray(), io.BytesIO(b"")):
        with pytest.raises(EmptyImageError) as caught:
            decode_image(source)
        assert_person_message(caught.value)


@pytest.mark.parametrize("format", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"])
@pytest.mark.parametrize("fraction", [0.5, 0.05])
def test_truncated_files_are_refused_never_half_grey(format, fraction):
    data = save(Image.fromarray(noise(64, 64)), format)
    with pytest.raises(TruncatedImageError) as caught:
        decode_image(data[: max(20, int(len(data) * fraction))])
    assert_person_message(caught.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_progressive_jpeg():
    data = save(Image.fromarray(noise(64, 64)), "JPEG", progressive=True)
    with pytest.raises(TruncatedImageError, match="JPEG"):
        decode_image(data[: len(data) // 2])


def test_corrupt_png_crc_is_refused():
    data = bytearray(save(Image.fromarray(noise()), "PNG"))
    data[40] ^= 0xFF  # inside IDAT
    with pytest.raises(TruncatedImageError):
        decode_image(bytes(data))


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat.png", save(Image.fromarray(noise()), "PNG"))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data,error,words",
    [
        (np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(), NotAnImageError, "not an image"),
        (b"Hello, this is a plain text file.\nNothing to see.\n", NotAnImageError, "text file"),
        ("Grüße, Text in UTF-8 ist auch kein Bild.\n".encode(), NotAnImageError, "text file"),
        (b"<!DOCTYPE html><html><head><title>Cat</title></head><body></body></html>", NotAnImageError, "web page"),
        (b'{"image": "cat.png"}', NotAnImageError, "JSON"),
        (b"data:image/png;base64,iVBORw0KGgo=", NotAnImageError, "data: URL"),
        (_zip_bytes(), NotAnImageError, "ZIP archive"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 40, NotAnImageError, "gzip"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 60, NotAnImageError, "program"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 40, NotAnImageError, "video"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<rect width="10" height="10" fill="red"/></svg>',
            UnsupportedFormatError,
            "SVG",
        ),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", UnsupportedFormatError, "PDF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", UnsupportedFormatError, "EPS"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 40, UnsupportedFormatError, "HEIC"),
        (b"8BPS\x00\x01" + b"\x00" * 40, UnsupportedFormatError, "Photoshop"),
        (b"\xff\x0a" + b"\x00" * 40, UnsupportedFormatError, "JPEG XL"),
    ],
    ids=["random", "text", "utf8-text", "html", "json", "data-url", "zip", "gzip", "elf", "mp4", "svg", "pdf", "eps", "heic", "psd", "jxl"],
)
def test_not_images_and_unsupported_formats(data, error, words):
    with pytest.raises(error) as caught:
        decode_image(data)
    assert words in str(caught.value)
    assert_person_message(caught.value)


def test_zip_message_reads_well():
    with pytest.raises(NotAnImageError) as caught:
        decode_image(_zip_bytes())
    assert str(caught.value) == "The file is not an image (it looks like a ZIP archive)."


def test_bomb_header_fails_fast_and_leaves_pillow_settings_alone():
    pillow_limit = Image.MAX_IMAGE_PIXELS
    for width, height in ((50_000, 50_000), (7_000, 7_000)):  # Pillow's own guard, then ours
        data = png_with_declared_size(width, height)
        assert len(data) < 10_000
        start = time.perf_counter()
        with pytest.raises(ImageTooLargeError) as caught:
            decode_image(data)
        assert time.perf_counter() - start < 0.5
        assert_person_message(caught.value)
    assert "7000 × 7000" in str(caught.value) and "40,000,000" in str(caught.value)
    assert Image.MAX_IMAGE_PIXELS == pillow_limit
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pixel_limit_is_checked_before_decoding(monkeypatch):
    data = save(Image.fromarray(noise(20, 20)), "PNG")
    assert_rgb(decode_image(data, max_pixels=400), (20, 20))
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self.size) or real_load(self))
    with pytest.raises(ImageTooLargeError, match="20 × 20"):
        decode_image(data, max_pixels=399)
    # A header under Pillow's own guard: only our limit stops it, from the header alone.
    with pytest.raises(ImageTooLargeError, match="5000 × 5000"):
        decode_image(png_with_declared_size(5_000, 5_000), max_pixels=1_000_000)
    assert loads == []


def test_byte_limit():
    data = save(Image.fromarray(noise()), "PNG")
    for source in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        with pytest.raises(FileTooLargeError) as caught:
            decode_image(source, max_bytes=len(data) - 1)
        assert_person_message(caught.value)
    assert "limit" in str(caught.value)
    assert_rgb(decode_image(data, max_bytes=len(data)), (24, 32))


def test_unseekable_stream_is_capped_while_reading():
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.served = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), 1024)
            buffer[:n] = b"\x00" * n
            self.served += n
            return n

    pipe = Pipe()
    with pytest.raises(FileTooLargeError):
        decode_image(io.BufferedReader(pipe), max_bytes=10_000)
    assert pipe.served < 20_000


def test_defaults():
    assert DEFAULT_MAX_BYTES == 20 * 1024 * 1024
    assert DEFAULT_MAX_PIXELS == 40_000_000
    for error in (EmptyImageError, TruncatedImageError, NotAnImageError, UnsupportedFormatError, ImageTooLargeError, FileTooLargeError):
        assert issubclass(error, ImageError) and issubclass(error, ValueError)


# --------------------------------------------------------------------------- paths, URLs


def test_read_image_and_load_image_from_paths(tmp_path):
    pixels = noise()
    path = tmp_path / "picture.png"
    path.write_bytes(save(Image.fromarray(pixels), "PNG"))
    np.testing.assert_array_equal(read_image(path), pixels)
    np.testing.assert_array_equal(read_image(str(path)), pixels)
    np.testing.assert_array_equal(load_image(path), pixels)
    np.testing.assert_array_equal(load_image(str(path)), pixels)
    np.testing.assert_array_equal(load_image(path.read_bytes()), pixels)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.png")
    with pytest.raises(NotAnImageError):
        read_image(tmp_path)


def test_read_image_checks_the_size_before_reading(tmp_path, monkeypatch):
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as file:
        file.truncate(1 << 30)  # a sparse 1 GB file: reading it all would be slow
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a) or real_open(*a, **k))
    start = time.perf_counter()
    with pytest.raises(FileTooLargeError) as caught:
        read_image(huge)
    assert time.perf_counter() - start < 0.5
    assert reads == []
    assert "1024 MB" in str(caught.value) and "20 MB" in str(caught.value)
    monkeypatch.undo()

    small = tmp_path / "small.png"
    small.write_bytes(save(Image.fromarray(noise()), "PNG"))
    with pytest.raises(FileTooLargeError):
        read_image(small, max_bytes=100)


def test_load_image_fetches_urls_through_the_guarded_fetcher(monkeypatch):
    pixels = noise()
    data = save(Image.fromarray(pixels), "PNG")
    calls = []

    def fake_fetch(url, **kwargs):
        calls.append((url, kwargs))
        return data

    monkeypatch.setattr(fetch, "fetch_image_bytes", fake_fetch)
    np.testing.assert_array_equal(load_image("https://images.example/cat.png"), pixels)
    assert calls == [("https://images.example/cat.png", {"max_bytes": DEFAULT_MAX_BYTES})]
    load_image("HTTP://images.example/cat.png", max_bytes=12345)
    assert calls[-1][1] == {"max_bytes": 12345}


def test_load_image_refuses_other_schemes_without_reading_files():
    for url in ("file:///etc/passwd", "ftp://images.example/cat.png"):
        with pytest.raises(fetch.UnsafeURLError) as caught:
            load_image(url)
        assert isinstance(caught.value, ValueError)
        assert_person_message(caught.value)


# --------------------------------------------------------------------------- encoding


def test_encoders_round_trip():
    pixels = noise()
    np.testing.assert_array_equal(decode_image(encode_png(pixels)), pixels)
    assert encode_jpeg(pixels)[:3] == b"\xff\xd8\xff"
    assert decode_image(encode_jpeg(pixels, quality=95)).shape == pixels.shape
    assert len(encode_jpeg(pixels, quality=20)) < len(encode_jpeg(pixels, quality=95))
    with pytest.raises(ValueError):
        encode_jpeg(pixels, quality=0)


def test_to_pil_modes_and_jpeg_of_rgba():
    assert to_pil(np.zeros((4, 5), np.uint8)).mode == "L"
    assert to_pil(np.zeros((4, 5, 1), np.uint8)).mode == "L"
    assert to_pil(np.zeros((4, 5, 3), np.uint8)).size == (5, 4)
    rgba = np.zeros((4, 5, 4), np.uint8)
    assert to_pil(rgba).mode == "RGBA"
    assert tuple(decode_image(encode_jpeg(rgba))[2, 2]) == WHITE  # transparent -> white, not black
    assert tuple(decode_image(encode_png(rgba))[2, 2]) == WHITE
    floats = np.full((2, 2, 3), 127.6)
    assert decode_image(encode_png(floats))[0, 0].tolist() == [128, 128, 128]
    with pytest.raises(ValueError):
        to_pil(np.zeros((4, 5, 2), np.uint8))


def test_no_streamlit_or_tensorflow_imports():
    import ast
    import inspect

    for module in (images, fetch):
        tree = ast.parse(inspect.getsource(module))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name for name in imported if name.split(".")[0] in ("streamlit", "tensorflow")}
