"""The ``folder`` data set (your own images), rosinality's LMDB format, and the named 10-shot sets.

The generic loader checks (records, missing parts, damaged files) run over these loaders too, in
test_dataset_loaders.py, from the layouts in image_folder_layouts.py; here is what is particular
to them: how a folder becomes classes, what a listing skips, the LMDB key schemes and damage, and
where the named sets' parts live.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

import datasets  # noqa: F401  (registers every loader)
from benchmark.errors import BenchmarkError
from datasets import DATASETS, build_dataset
from datasets.fewshot_sets import SETS
from datasets.inspect import format_inspection, inspect_dataset
from datasets.preprocess import prepare_images
from tests.datasets.image_folder_layouts import encoded, image_array, write_lmdb
from tests.datasets.layouts import build_layout, write_jpeg


def paths(loader) -> list[tuple[str, int]]:
    return [(r.path, r.label) for r in loader.records()]


def one_line(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# -- folder ----------------------------------------------------------------------------------------
def test_a_folder_of_images_is_one_class_named_after_it_nested_images_included(tmp_path):
    root = tmp_path / "my-ten"
    for i in range(7):
        write_jpeg(root / f"img{i}.jpg", i)
    for i in range(3):
        write_jpeg(root / "more" / "deeper" / f"x{i}.JPEG", i)
    (root / "README.txt").write_text("my images")
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "._img0.jpg").write_bytes(b"\0")  # a macOS resource fork: hidden, not a damaged image
    write_jpeg(root / "__MACOSX" / "img0.jpg")
    loader = build_dataset("folder", root)
    assert loader.class_names() == ["my-ten"]
    assert paths(loader) == [(f"img{i}.jpg", 0) for i in range(7)] + [(f"more/deeper/x{i}.JPEG", 0) for i in range(3)]
    notes = loader.listing_notes()
    assert "skipped 2 hidden file(s) or folder(s)" in notes
    assert "skipped 1 file(s) that are not images, e.g. README.txt" in notes


def test_a_folder_of_folders_is_one_class_per_subfolder_an_lmdb_one_among_them(tmp_path):
    layout = build_layout("folder", tmp_path / "pets")
    write_lmdb(layout.root / "birds", 3)
    loader = build_dataset("folder", layout.root)
    assert loader.class_names() == ["birds", "cats", "dogs"]
    assert paths(loader)[:3] == [(f"birds/32-{i:05d}", 0) for i in range(3)]
    assert ("cats/more/deeper/c.jpg", 1) in paths(loader)
    prepared = prepare_images(loader, 16, progress=False)
    assert len(prepared) == 9 and prepared.skipped == []
    assert "read birds/ from an LMDB at 32 px (3 images)" in loader.listing_notes()


def test_images_beside_class_folders_read_as_one_class_and_say_how_to_split_them(tmp_path):
    write_jpeg(tmp_path / "top.jpg")
    write_jpeg(tmp_path / "a" / "one.jpg")
    loader = build_dataset("folder", tmp_path)
    assert loader.class_names() == [tmp_path.name] and len(loader.records()) == 2
    assert any("move those images into one" in note for note in loader.listing_notes())


def test_any_format_pil_opens_counts_as_an_image(tmp_path):
    for i, (name, fmt) in enumerate([("a.PNG", "PNG"), ("b.bmp", "BMP"), ("c.tif", "TIFF"), ("d.webp", "WEBP")]):
        (tmp_path / name).write_bytes(encoded(image_array(i, 12), fmt))
    (tmp_path / "e.gif").write_bytes(encoded(image_array(4, 12)[..., 0], "GIF"))
    (tmp_path / "f.svg").write_text("<svg/>")  # PIL cannot open SVG: not an image here
    loader = build_dataset("folder", tmp_path)
    assert [p for p, _ in paths(loader)] == ["a.PNG", "b.bmp", "c.tif", "d.webp", "e.gif"]
    prepared = prepare_images(loader, 8, progress=False)
    assert prepared.images.shape == (5, 3, 8, 8) and prepared.skipped == []


def test_a_folder_without_images_is_a_one_line_error_naming_what_it_skipped(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".DS_Store").write_text("x")
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("folder", tmp_path).records()
    one_line(excinfo, "folder: no images under", "skipped 1 hidden and 1 non-image files, e.g. notes.txt", ".png")


def test_an_empty_class_folder_is_reported_by_inspection_and_refused_by_a_suite(tmp_path):
    write_jpeg(tmp_path / "a" / "one.jpg")
    (tmp_path / "b").mkdir()
    report = inspect_dataset("folder", tmp_path)
    assert report["per_class"] == {"a": 1, "b": 0} and report["empty_classes"] == ["b"]
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("folder", tmp_path).records()
    one_line(excinfo, "no images left for class(es) b")


def test_damaged_images_are_listed_by_inspection_and_skipped_by_preprocessing(tmp_path, caplog):
    for i in range(4):
        write_jpeg(tmp_path / f"{i}.jpg", i)
    (tmp_path / "4.jpg").write_bytes(b"<html>not found</html>")
    report = inspect_dataset("folder", tmp_path)
    assert report["n_images"] == 5 and report["n_problems"] == 1
    assert report["problems"][0].startswith("4.jpg: unreadable (UnidentifiedImageError")
    text = format_inspection(report)
    assert "problems (1):" in text and "note:" not in text  # nothing was skipped by the listing
    with caplog.at_level(logging.WARNING):
        prepared = prepare_images(build_dataset("folder", tmp_path), 16, progress=False)
    assert len(prepared) == 4 and [p for p, _ in prepared.skipped] == ["4.jpg"]


# -- lmdb ------------------------------------------------------------------------------------------
def test_lmdb_reads_rosinalitys_keys_at_the_largest_size_or_the_one_asked(tmp_path):
    root = write_lmdb(tmp_path / "babies_lmdb", 3, sizes=(16, 32))
    loader = build_dataset("lmdb", root)
    assert loader.class_names() == ["babies_lmdb"]
    assert paths(loader) == [("32-00000", 0), ("32-00001", 0), ("32-00002", 0)]
    prepared = prepare_images(loader, 32, crop="none", progress=False)
    assert np.array_equal(prepared.images[1].permute(1, 2, 0).numpy(), image_array(1, 32))  # the stored pixels
    small = build_dataset("lmdb", root, size=16)
    assert paths(small)[0] == ("16-00000", 0) and small.open_image(small.records()[0]).size == (16, 16)
    assert build_dataset("lmdb", root / "data.mdb").root == root  # the file itself names its folder
    assert not (root / "lock.mdb").exists(), "opened read-only, without a lock file"


def test_an_lmdb_loader_pickles_and_reopens_its_database(tmp_path):
    import pickle

    loader = build_dataset("lmdb", write_lmdb(tmp_path / "db", 2))
    copy = pickle.loads(pickle.dumps(loader))
    assert copy.open_image(copy.records()[1]).size == (32, 32)


def test_lmdb_reads_adams_unsized_keys(tmp_path):
    root = write_lmdb(tmp_path / "adam", 2, sizes=(32,), scheme="adam")
    loader = build_dataset("lmdb", root)
    assert paths(loader) == [("000000", 0), ("000001", 0)]
    assert loader.open_image(loader.records()[1]).size == (32, 32)


def test_lmdb_on_a_read_only_file_system_reads(tmp_path):
    root = write_lmdb(tmp_path / "ro", 2)
    os.chmod(root, 0o555)
    try:
        assert len(prepare_images(build_dataset("lmdb", root), 8, progress=False)) == 2
    finally:
        os.chmod(root, 0o755)


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda p: p.mkdir(), ("data.mdb not found in", "prepare_data.py", "'folder' data set")),
        (lambda p: write_lmdb(p, 2, length=-1) and _drop_length(p), ("has no 'length' key", "prepare_data.py")),
        (lambda p: write_lmdb(p, 0, length=3), ("says it holds 3 images but has no key like '256-00000'",)),
        (lambda p: _damage(p), ("cannot be opened",)),
    ],
    ids=["no-database", "no-length", "no-image-keys", "damaged"],
)
def test_lmdb_problems_are_one_line_errors_naming_the_fix(tmp_path, make, fragments):
    make(tmp_path / "db")
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("lmdb", tmp_path / "db").records()
    one_line(excinfo, "lmdb:", *fragments)


def _drop_length(path):
    import lmdb

    with lmdb.open(str(path)) as env, env.begin(write=True) as txn:
        txn.delete(b"length")
    (path / "lock.mdb").unlink()
    return True


def _damage(path):
    path.mkdir()
    (path / "data.mdb").write_bytes(b"\0" * 100)


def test_lmdb_size_not_stored_is_a_one_line_error_listing_the_sizes(tmp_path):
    root = write_lmdb(tmp_path / "db", 1, sizes=(128, 256))
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("lmdb", root, size=64).records()
    one_line(excinfo, "stores no images of size 64; sizes stored: 128, 256")


def test_lmdb_missing_and_damaged_entries_are_reported_and_skipped(tmp_path, caplog):
    root = write_lmdb(tmp_path / "db", 5, skip=(2,), garbage=(3,))
    report = inspect_dataset("lmdb", root)
    # the headline counts what is there: the missing entry is a problem and n_missing, not an image
    assert report["n_images"] == 4 and report["n_missing"] == 1 and report["n_problems"] == 2
    assert report["problems"][0] == "32-00002: file missing"
    assert report["problems"][1].startswith("32-00003: unreadable (UnidentifiedImageError")
    with caplog.at_level(logging.WARNING):
        prepared = prepare_images(build_dataset("lmdb", root), 16, progress=False)
    assert sorted(p for p, _ in prepared.skipped) == ["32-00002", "32-00003"] and len(prepared) == 3


def test_the_image_cache_notices_a_rewritten_lmdb(tmp_path):
    root = write_lmdb(tmp_path / "db", 2)
    first = prepare_images(build_dataset("lmdb", root), 8, cache_dir=tmp_path / "cache", progress=False)
    write_lmdb(root, 3)
    second = prepare_images(build_dataset("lmdb", root), 8, cache_dir=tmp_path / "cache", progress=False)
    assert (len(first), len(second)) == (2, 3)


def test_a_folder_that_is_an_lmdb_is_one_class(tmp_path):
    root = write_lmdb(tmp_path / "sketches", 4)
    loader = build_dataset("folder", root)
    assert loader.class_names() == ["sketches"] and len(loader.records()) == 4
    assert len(prepare_images(loader, 8, progress=False)) == 4


# -- the named 10-shot sets -----------------------------------------------------------------------
CDC_SETS = {"babies", "sunglasses", "sketches", "amedeo", "raphael", "otto", "haunted", "van_gogh", "landscapes"}
ADAM_SETS = {"metfaces", "afhq_cat", "afhq_dog", "afhq_wild"}
WITH_FULL_SETS = {"babies", "sunglasses", "sketches", "metfaces", "afhq_cat", "afhq_dog", "afhq_wild"}


def test_every_published_target_is_a_named_set_saying_where_it_comes_from():
    names = {spec.name for spec in SETS}
    assert names >= CDC_SETS | ADAM_SETS
    for spec in SETS:
        cls = DATASETS.get(spec.name)
        assert cls.splits == (("train", "full") if spec.name in WITH_FULL_SETS else ("train",)), spec.name
        assert "train/ = the 10 images" in cls.layout and "LMDB" in cls.layout
        assert ("full/ = the FID set" in cls.layout) == (spec.name in WITH_FULL_SETS)
        readme = (
            "github.com/yunqing-me/AdAM" if spec.name in ADAM_SETS else "github.com/utkarshojha/few-shot-gan-adaptation"
        )
        assert readme in cls.homepage, spec.name  # every link traced to the official README that gives it
        assert cls.subfolders == (spec.name,)


def test_a_named_set_reads_an_lmdb_train_part_and_a_folder_full_part_under_a_shared_root(tmp_path):
    write_lmdb(tmp_path / "babies" / "train", 10, sizes=(256,))  # CDC's "processed" download
    for i in range(12):
        write_jpeg(tmp_path / "babies" / "full" / "babies" / f"{i:04d}.png", i)
    write_jpeg(tmp_path / "sunglasses" / "train" / "0.jpg")
    train = build_dataset("babies", tmp_path)  # the folder holding several sets
    assert train.class_names() == ["babies"]
    assert paths(train)[0] == ("train/256-00000", 0) and len(train.records()) == 10
    full = build_dataset("babies", tmp_path / "babies", split="full")
    assert paths(full)[0] == ("full/babies/0000.png", 0) and len(full.records()) == 12
    assert len(prepare_images(train, 8, progress=False)) == 10
    assert build_dataset("sunglasses", tmp_path).records()[0].path == "train/0.jpg"


def test_a_named_set_without_its_parts_names_the_layout_and_the_download(tmp_path):
    write_jpeg(tmp_path / "0.jpg")  # the 10 images straight in the root, not in train/
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("otto", tmp_path).records()
    one_line(excinfo, "otto: train not found under", "train/ = the 10 images", "drive.google.com")
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("otto", tmp_path, split="full")
    one_line(excinfo, "otto: unknown split 'full'; choose one of train")
