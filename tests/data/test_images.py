import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnlab.data.images import prepare_image, probe_image, read_image, resize_image
from cnnlab.errors import FileFormatError, LimitExceededError
from cnnlab.limits import override


def _save(tmp_path, array_or_image, name, **options):
    picture = (
        array_or_image
        if isinstance(array_or_image, Image.Image)
        else Image.fromarray(array_or_image)
    )
    path = tmp_path / name
    picture.save(path, **options)
    return path


def test_8bit_grayscale_is_read_exactly(tmp_path):
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = read_image(_save(tmp_path, pixels, "gray.png"))
    assert image.dtype == np.float32 and image.shape == (1, 16, 16)
    np.testing.assert_array_equal(np.rint(image[0] * 255), pixels)


def test_16bit_png_is_not_clipped(tmp_path):
    # Ten levels that clipping to 8 bits would turn into 255 all alike.
    levels = np.linspace(1000, 65535, 10).astype(np.uint16).reshape(2, 5)
    path = _save(tmp_path, levels, "sixteen.png")
    assert probe_image(path).mode == "I;16"
    image = read_image(path)
    np.testing.assert_allclose(image[0], levels / 65535.0, atol=1e-6)
    assert len(np.unique(image)) == 10 and image.max() == 1.0


def test_big_endian_16bit_tiff(tmp_path):
    levels = np.array([[0, 300], [40000, 65535]], dtype=">u2")
    path = _save(tmp_path, Image.frombytes("I;16B", (2, 2), levels.tobytes()), "be.tif")
    np.testing.assert_allclose(read_image(path)[0], levels.astype(np.float64) / 65535.0, atol=1e-6)


def test_float_tiff_is_not_black(tmp_path):
    unit = np.array([[0.0, 0.25], [0.5, 0.75]], dtype=np.float32)
    np.testing.assert_array_equal(
        read_image(_save(tmp_path, Image.fromarray(unit, mode="F"), "u.tif"))[0], unit
    )
    wide = np.array([[10.0, 60.0], [110.0, 210.0]], dtype=np.float32)  # any other range: min..max
    image = read_image(_save(tmp_path, Image.fromarray(wide, mode="F"), "w.tif"))
    np.testing.assert_allclose(image[0], [[0.0, 0.25], [0.5, 1.0]], atol=1e-6)
    constant = np.full((2, 2), 7.5, dtype=np.float32)
    assert (read_image(_save(tmp_path, Image.fromarray(constant, mode="F"), "c.tif")) == 0).all()


def test_float_tiff_with_nan_is_refused(tmp_path):
    bad = np.array([[0.0, np.nan]], dtype=np.float32)
    path = _save(tmp_path, Image.fromarray(bad, mode="F"), "nan.tif")
    with pytest.raises(FileFormatError, match=r"nan.tif: float image holds NaN"):
        read_image(path)


def test_32bit_integer_image_beyond_16_bits_is_stretched(tmp_path):
    values = np.array([[-100, 0], [100_000, 200_000]], dtype=np.int32)
    image = read_image(_save(tmp_path, Image.fromarray(values, mode="I"), "i32.tif"))
    np.testing.assert_allclose(image[0], (values + 100) / 200_100, atol=1e-6)


def test_alpha_only_rgba_is_the_drawing_not_blank(tmp_path):
    drawing = np.zeros((8, 8), dtype=np.uint8)
    drawing[2:6, 3:5] = 255
    black_ink = np.zeros((8, 8, 4), dtype=np.uint8)
    black_ink[..., 3] = drawing
    image = read_image(_save(tmp_path, black_ink, "black.png"))
    np.testing.assert_array_equal(image[0], 1.0 - drawing / 255.0)  # dark drawing on white
    white_ink = black_ink.copy()
    white_ink[..., :3] = 255
    image = read_image(_save(tmp_path, white_ink, "white.png"), channels=3)
    np.testing.assert_array_equal(image, np.broadcast_to(drawing / 255.0, (3, 8, 8)))  # on black
    gray_alpha = np.stack([np.zeros((8, 8), np.uint8), drawing], axis=-1)
    image = read_image(_save(tmp_path, Image.fromarray(gray_alpha, mode="LA"), "la.png"))
    np.testing.assert_array_equal(image[0], 1.0 - drawing / 255.0)


def test_constant_alpha_is_ignored(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent everywhere: no drawing in alpha, keep the colour
    image = read_image(_save(tmp_path, rgba, "clear.png"), channels=3)
    np.testing.assert_allclose(image[:, 0, 0], [200 / 255, 0, 0], atol=1e-6)


def test_palette_images(tmp_path):
    indices = np.array([[0, 1], [1, 2]], dtype=np.uint8)
    picture = Image.fromarray(indices, mode="P")
    picture.putpalette([255, 0, 0, 0, 0, 255, 255, 255, 255] + [0] * 759)
    image = read_image(_save(tmp_path, picture, "p.png"), channels=3)
    np.testing.assert_array_equal(image[:, 0, 0], [1, 0, 0])
    np.testing.assert_array_equal(image[:, 0, 1], [0, 0, 1])
    assert not probe_image(tmp_path / "p.png").grayscale
    # Index 2 (white) transparent, the rest opaque blue/red: composited on white (dark drawing).
    image = read_image(_save(tmp_path, picture, "pt.png", transparency=2), channels=3)
    np.testing.assert_array_equal(image[:, 1, 1], [1, 1, 1])
    np.testing.assert_array_equal(image[:, 1, 0], [0, 0, 1])


def test_cmyk_becomes_rgb(tmp_path):
    cmyk = np.zeros((2, 2, 4), dtype=np.uint8)
    cmyk[0, 1, 0] = 255  # full cyan
    path = _save(tmp_path, Image.fromarray(cmyk, mode="CMYK"), "cmyk.tif")
    image = read_image(path, channels=3)
    np.testing.assert_array_equal(image[:, 0, 0], [1, 1, 1])
    np.testing.assert_array_equal(image[:, 0, 1], [0, 1, 1])


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 6), dtype=np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display turned 90 degrees clockwise
    path = _save(tmp_path, Image.fromarray(pixels), "turned.png", exif=exif)
    image = read_image(path)
    assert image.shape == (1, 6, 2)
    assert image[0, 0, 1] == 1.0 and image.sum() == 1.0


def test_bilevel_and_colour_to_gray(tmp_path):
    bits = Image.fromarray(np.array([[True, False]]))
    np.testing.assert_array_equal(read_image(_save(tmp_path, bits, "bits.bmp"))[0], [[1, 0]])
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, 0, 0] = rgb[0, 1, 1] = rgb[0, 2, 2] = 255
    gray = read_image(_save(tmp_path, rgb, "rgb.png"))
    np.testing.assert_allclose(gray[0, 0], [0.299, 0.587, 0.114], atol=1e-6)
    colour = read_image(tmp_path / "bits.bmp", channels=3)
    assert colour.shape == (3, 1, 2) and (colour == colour[:1]).all()
    with pytest.raises(
        ValueError, match="read_image: channels must be one of 1, 3, received channels=2"
    ):
        read_image(tmp_path / "rgb.png", channels=2)


def _png_declaring(tmp_path, width, height):
    data = tmp_path / "small.png"
    Image.fromarray(np.zeros((2, 2), dtype=np.uint8)).save(data)
    raw = bytearray(data.read_bytes())
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(raw))
    return path


def test_decompression_bomb_is_refused_naming_the_file(tmp_path):
    path = _png_declaring(tmp_path, 100_000, 100_000)
    tracemalloc.start()
    try:
        with pytest.raises(
            LimitExceededError, match=r"bomb.png: image declares 10,000,000,000 pixels"
        ):
            read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000  # refused from the header, before anything was allocated
    with pytest.raises(LimitExceededError, match="max_image_pixels"):
        probe_image(path)
    ordinary = _save(tmp_path, np.zeros((10, 10), dtype=np.uint8), "ten.png")
    with override(max_image_pixels=99), pytest.raises(LimitExceededError, match="ten.png"):
        read_image(ordinary)
    assert read_image(ordinary).shape == (1, 10, 10)


def test_pillows_own_bomb_error_is_translated(tmp_path, monkeypatch):
    path = _save(tmp_path, np.zeros((10, 10), dtype=np.uint8), "ten.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # Pillow raises above twice its limit
    with pytest.raises(LimitExceededError, match=r"ten.png: .*PIL.Image.MAX_IMAGE_PIXELS"):
        read_image(path)


def test_truncated_png_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    path = _save(tmp_path, rng.integers(0, 256, (64, 64), dtype=np.uint8), "cut.png")
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(FileFormatError, match=r"cut.png: cannot read the image: .*truncated"):
        read_image(path)


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "text.png").write_text("just text")
    with pytest.raises(FileFormatError, match="text.png: cannot read the image: not a PNG, JPEG"):
        read_image(tmp_path / "text.png")
    with pytest.raises(FileNotFoundError, match="missing.png: no such image file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(FileFormatError, match="cannot read the image"):
        read_image(tmp_path)


def test_postscript_is_never_handed_to_ghostscript(tmp_path):
    # Pillow's EPS plugin runs Ghostscript; only IMAGE_FORMATS are ever tried.
    (tmp_path / "drawing.eps").write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    )
    with pytest.raises(FileFormatError, match="drawing.eps: cannot read the image"):
        read_image(tmp_path / "drawing.eps")


def _seven(size=(90, 120), offset=(50, 10), ink=0, paper=255, width=7):
    """A handwritten-looking '7': dark ink on light paper by default, placed off-centre."""
    picture = Image.new("L", size, paper)
    draw = ImageDraw.Draw(picture)
    x, y = offset
    draw.line([(x, y), (x + 30, y)], fill=ink, width=width)
    draw.line([(x + 30, y), (x + 12, y + 60)], fill=ink, width=width)
    return picture


def _ink_box(plane, threshold=0.2):
    rows = np.flatnonzero((plane > threshold).any(axis=1))
    cols = np.flatnonzero((plane > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def _centre_of_mass(plane):
    rows, cols = np.indices(plane.shape)
    return (rows * plane).sum() / plane.sum(), (cols * plane).sum() / plane.sum()


def test_dark_on_white_digit_is_inverted_and_centred(tmp_path):
    image = read_image(_save(tmp_path, _seven(), "seven.png"))
    x = prepare_image(image, (1, 28, 28))
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    plane = x[0]
    assert (
        plane[0].max() == 0 and plane[-1].max() == 0 and plane[:, 0].max() == 0
    )  # dark background
    assert plane.max() == 1.0 and plane.mean() < 0.3  # light ink
    height, width = _ink_box(plane)
    assert height == 20 and width < 20  # the longer side fits the 20x20 box, aspect kept
    assert abs(width / height - 37 / 67) < 0.1
    row, col = _centre_of_mass(plane)
    assert abs(row - 13.5) <= 1 and abs(col - 13.5) <= 1


def test_light_on_dark_digit_is_not_inverted(tmp_path):
    light = read_image(_save(tmp_path, _seven(ink=255, paper=0), "light.png"))
    dark = read_image(_save(tmp_path, _seven(), "dark.png"))
    x = prepare_image(light, (1, 28, 28))
    assert x[0, 0, 0] == 0 and x.max() == 1.0
    np.testing.assert_allclose(x, prepare_image(dark, (1, 28, 28)), atol=1e-5)
    # Forced either way, the paper stays light: nothing stands out above it, so it is resized.
    assert prepare_image(light, (1, 28, 28), invert=True)[0, 0, 0] == 1.0
    assert prepare_image(dark, (1, 28, 28), invert=False)[0, 0, 0] == 1.0


def test_digit_box_scales_with_the_frame(tmp_path):
    image = read_image(_save(tmp_path, _seven(), "seven.png"))
    x = prepare_image(image, (1, 56, 42))
    height, width = _ink_box(x[0])
    assert height == 40 and width <= 30  # 20/28 of each side
    row, col = _centre_of_mass(x[0])
    assert abs(row - 27.5) <= 1 and abs(col - 20.5) <= 1


def test_prepare_colour_image_is_a_plain_resize(tmp_path):
    rng = np.random.default_rng(0)
    image = read_image(
        _save(tmp_path, rng.integers(200, 256, (30, 40, 3), dtype=np.uint8), "c.png"), 3
    )
    x = prepare_image(image, (3, 16, 16))
    np.testing.assert_allclose(x, resize_image(image, 16), atol=1e-6)  # light, yet not inverted
    gray_model = prepare_image(image, (1, 16, 16), fit="resize", invert=False)
    assert gray_model.shape == (1, 16, 16)


def test_prepare_blank_page_gives_an_empty_frame(tmp_path):
    image = read_image(_save(tmp_path, np.full((50, 50), 255, dtype=np.uint8), "blank.png"))
    np.testing.assert_array_equal(prepare_image(image, (1, 28, 28)), np.zeros((1, 28, 28)))


def test_prepare_image_argument_checks():
    image = np.zeros((1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="prepare_image: fit must be one of"):
        prepare_image(image, (1, 28, 28), fit="crop")
    with pytest.raises(ValueError, match="fit='digit' needs a single-channel model"):
        prepare_image(image, (3, 28, 28), fit="digit")
    with pytest.raises(TypeError, match="prepare_image: invert must be True, False or None"):
        prepare_image(image, (1, 28, 28), invert="yes")
    with pytest.raises(ValueError, match=r"expected a \(C, H, W\) image"):
        prepare_image(np.zeros((8, 8)), (1, 28, 28))
    with pytest.raises(ValueError, match="input_shape must be"):
        prepare_image(image, (28, 28))


def test_photo_of_a_digit_on_grey_paper(tmp_path):
    # Grey, noisy paper, dark ink, JPEG artefacts: as a phone photo of a written digit.
    from PIL import ImageFilter, ImageFont

    picture = Image.new("L", (150, 200), 200)
    draw = ImageDraw.Draw(picture)
    try:
        font = ImageFont.load_default(size=120)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font, scaled up below
        font = ImageFont.load_default()
    draw.text((20, 30), "3", fill=40, font=font)
    noise = np.random.default_rng(0).normal(0, 8, (200, 150))
    pixels = np.clip(np.asarray(picture.filter(ImageFilter.GaussianBlur(1))) + noise, 0, 255)
    path = _save(tmp_path, pixels.astype(np.uint8), "photo.jpg", quality=80)
    x = prepare_image(read_image(path), (1, 28, 28))[0]
    border = np.concatenate([x[:2].ravel(), x[-2:].ravel(), x[:, :2].ravel(), x[:, -2:].ravel()])
    assert border.max() < 0.1 and x.max() == 1.0  # inverted, paper removed
    height, width = _ink_box(x, threshold=0.3)
    assert max(height, width) in (19, 20, 21)
    row, col = _centre_of_mass(x)
    assert abs(row - 13.5) <= 1.5 and abs(col - 13.5) <= 1.5


def test_preparation_for_each_dataset_frames_like_its_training_images(tmp_path):
    from cnnlab.data import load_dataset, preparation_for

    assert preparation_for("MNIST") == {"fit": "digit", "box": 20 / 28}
    assert preparation_for("/home/me/photos") == {"fit": "resize", "invert": False}
    # A dark-on-white digit prepared for 'digits' fills the frame as the digits' training images do.
    image = read_image(_save(tmp_path, _seven(), "seven.png"))
    x = prepare_image(image, (1, 28, 28), **preparation_for("digits"))[0]
    assert _ink_box(x)[0] == 28
    train = load_dataset("digits", image_size=28).train.images[:50, 0] / 255.0
    assert all(_ink_box(picture)[0] >= 26 for picture in train)
