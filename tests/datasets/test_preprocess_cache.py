"""The shared preprocessing: resize agrees with PIL, object crops, memory-mapped cache, damaged caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datasets  # noqa: F401  (registers every loader)
from benchmark.errors import BenchmarkError
from datasets import build_dataset, preprocess
from datasets.preprocess import crop_and_resize, prepare_images
from tests.datasets.layouts import build_layout


def test_centre_crops_are_square_whatever_the_rounding():
    for width in range(20, 60):
        for height in (width - 7, width, width + 9):
            left, top, right, bottom = preprocess.crop_box(width, height, "center")
            assert right - left == bottom - top == min(width, height)
            assert min(left, top) >= 0 and right <= width and bottom <= height


def test_resize_agrees_with_pils_antialiased_bicubic():
    rng = np.random.default_rng(0)
    for size, resolution in (((300, 200), 64), ((37, 50), 16), ((8, 8), 32)):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        side = min(size)
        box = ((size[0] - side) // 2, (size[1] - side) // 2, (size[0] + side) // 2, (size[1] + side) // 2)
        expected = np.asarray(image.crop(box).resize((resolution, resolution), Image.Resampling.BICUBIC))
        ours = crop_and_resize(image, resolution, 3, "center").transpose(1, 2, 0)
        assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1


def test_bbox_crop_keeps_the_object(tmp_path):
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[..., 2] = 255  # blue background
    pixels[20:60, 120:160] = (255, 0, 0)  # a red 40 px object at x 120..160, y 20..60
    image = Image.fromarray(pixels)
    crop = crop_and_resize(image, 20, 3, "bbox", bbox=(120, 20, 160, 60))
    assert (crop[0] > 200).all() and (crop[2] < 50).all()
    centre = crop_and_resize(image, 20, 3, "bbox", bbox=(50, 50, 50, 80))  # an empty box counts as none
    assert np.array_equal(centre, crop_and_resize(image, 20, 3, "center"))


def test_stanford_cars_bbox_crop_reads_the_one_based_devkit_boxes(tmp_path):
    layout = build_layout("stanford_cars", tmp_path / "cars")
    loader = build_dataset("stanford_cars", layout.root)
    record = next(r for r in loader.records() if r.bbox == (4.0, 5.0, 40.0, 30.0))
    pixels = np.zeros((48, 64, 3), dtype=np.uint8)
    pixels[5:30, 4:40] = 255  # the box of devkit bbox_x1=5, bbox_y1=6, bbox_x2=40, bbox_y2=30
    Image.fromarray(pixels).save(layout.root / record.path, quality=100)
    prepared = prepare_images(loader, 8, crop="bbox", progress=False)
    crop = prepared.images[prepared.paths.index(record.path)]
    assert crop[:, 2:6, 2:6].float().mean() > 200  # the square around the box is centred on it


def test_bbox_crop_on_a_dataset_without_boxes_is_an_error(tmp_path):
    layout = build_layout("afhq", tmp_path / "afhq")
    with pytest.raises(BenchmarkError, match="afhq has no bounding boxes.*stanford_cars.*use crop='center'"):
        prepare_images(build_dataset("afhq", layout.root), 16, crop="bbox", progress=False)


def test_the_cache_is_memory_mapped_and_skips_decoding(tmp_path, monkeypatch):
    layout = build_layout("afhq", tmp_path / "afhq")
    cache = tmp_path / "cache"
    first = prepare_images(build_dataset("afhq", layout.root), 16, cache_dir=cache, progress=False)
    assert first.images.is_contiguous() and first.images.shape == (6, 3, 16, 16)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache holds this split")

    monkeypatch.setattr(preprocess, "crop_and_resize", no_decoding)
    second = prepare_images(build_dataset("afhq", layout.root), 16, cache_dir=cache, progress=False)
    assert torch.equal(first.images, second.images) and first.paths == second.paths
    assert first.labels.tolist() == second.labels.tolist() and second.class_names == ["cat", "dog", "wild"]
    maps = Path("/proc/self/maps")
    if maps.exists():  # Linux: the cache file is mapped into memory rather than read into a copy
        (cache_file,) = cache.iterdir()
        assert str(cache_file) in maps.read_text()


def test_a_damaged_cache_file_is_rebuilt(tmp_path, caplog):
    layout = build_layout("insect30", tmp_path / "insects")
    cache = tmp_path / "cache"
    first = prepare_images(build_dataset("insect30", layout.root), 16, cache_dir=cache, progress=False)
    (cache_file,) = cache.iterdir()
    cache_file.write_bytes(b"truncated")
    again = prepare_images(build_dataset("insect30", layout.root), 16, cache_dir=cache, progress=False)
    assert torch.equal(first.images, again.images)
    assert "ignoring unreadable image cache" in caplog.text


def test_nothing_readable_is_an_error_with_an_example(tmp_path):
    layout = build_layout("insect30", tmp_path / "insects")
    for path, _, _ in layout.records["train"]:
        (layout.root / path).write_bytes(b"junk")
    with pytest.raises(BenchmarkError, match=r"insect30: none of the 6 images could be read .*; e\.g\. .*cannot"):
        prepare_images(build_dataset("insect30", layout.root), 16, progress=False)


def test_a_loader_canvas_pads_small_images_centred_in_black_and_moves_their_boxes():
    grey = Image.new("RGB", (28, 20), (200, 100, 50))
    padded, box = preprocess.pad_to_canvas(grey, 32, bbox=(0, 0, 10, 5))
    assert padded.size == (32, 32) and box == (2, 6, 12, 11)
    pixels = np.asarray(padded)
    assert (pixels[6:26, 2:30] == (200, 100, 50)).all()
    assert pixels[:6].max() == pixels[26:].max() == pixels[:, :2].max() == pixels[:, 30:].max() == 0
    wide = Image.new("L", (40, 20), 255)  # a side already as long as the canvas is kept
    assert preprocess.pad_to_canvas(wide, 32)[0].size == (40, 32)
    big = Image.new("L", (50, 40), 255)
    assert preprocess.pad_to_canvas(big, 32)[0] is big
    # through crop_and_resize: a palette image is converted before padding, so its border is black
    palette = Image.new("P", (28, 28), 3)
    palette.putpalette([255, 255, 255] * 256)
    out = crop_and_resize(palette, 32, 1, "center", canvas=32)
    assert out.shape == (1, 32, 32) and out[0, 2:30, 2:30].min() == 255 and out[0, :2].max() == 0


def test_the_canvas_is_part_of_the_image_cache_key(tmp_path, monkeypatch):
    layout = build_layout("afhq", tmp_path / "afhq")
    loader = build_dataset("afhq", layout.root)
    plain = preprocess.cache_key(loader, 16, 3, "center")
    monkeypatch.setattr(type(loader), "canvas", 80)
    assert preprocess.cache_key(loader, 16, 3, "center") != plain


def _png16(path: Path, array: np.ndarray) -> None:
    """A 16-bit RGB or RGBA PNG (Pillow cannot write one), from (H, W, C) uint16 values."""
    import struct
    import zlib

    height, width, channels = array.shape
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, {3: 2, 4: 6}[channels], 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_images_deeper_than_8_bits_are_scaled_not_clipped_and_inspect_data_names_their_modes(tmp_path):
    """Half of each type's range must come out mid-grey (128), never white; a float image with no known
    scale is skipped with its reason."""
    from datasets.inspect import format_inspection, inspect_dataset

    folder = tmp_path / "deep" / "grey"
    folder.mkdir(parents=True)
    full = np.ones((8, 8))
    Image.fromarray((full * 32896).astype(np.uint16)).save(folder / "a_16bit.png")  # I;16
    Image.fromarray((full * 2**30).astype(np.int32), "I").save(folder / "b_32bit.tif")
    Image.fromarray((full * 0.5).astype(np.float32)).save(folder / "c_float01.tif")  # F, 0..1
    Image.fromarray((full * 128).astype(np.float32)).save(folder / "d_float255.tif")  # F, 0..255
    _png16(folder / "e_rgb16.png", np.full((8, 8, 3), 32896, dtype=np.uint16))
    _png16(folder / "f_rgba16.png", np.full((8, 8, 4), 32896, dtype=np.uint16))
    Image.fromarray((full * 1000).astype(np.float32)).save(folder / "g_float_unknown.tif")
    loader = build_dataset("insect30", tmp_path / "deep")
    for channels in (1, 3):
        prepared = prepare_images(loader, 8, channels, progress=False)
        assert prepared.paths == [f"grey/{n}" for n in sorted(p.name for p in folder.iterdir())][:-1]
        assert prepared.images.float().mean(dim=(1, 2, 3)).round().tolist() == [128.0] * 6, channels
        ((path, reason),) = prepared.skipped
        assert path == "grey/g_float_unknown.tif" and "values 1000..1000" in reason and "no known scale" in reason
    report = inspect_dataset("insect30", tmp_path / "deep")
    assert report["modes"] == {"F": 3, "I;16": 1, "I": 1, "RGB": 1, "RGBA": 1}
    assert "image modes: 3 F (32-bit float grey" in format_inspection(report)
