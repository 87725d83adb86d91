"""Every registered file-based loader against a miniature copy of its official layout (tests/datasets/layouts.py)."""

from __future__ import annotations

import logging

import pytest

import datasets  # noqa: F401  (registers every loader)
from benchmark.errors import BenchmarkError
from datasets import DATASETS, build_dataset
from datasets.fewshot_sets import SETS as FEWSHOT_SETS
from datasets.preprocess import prepare_images
from tests.datasets.layouts import BUILDERS, build_layout, jpeg_bytes

FILE_LOADERS = [n for n in DATASETS.names() if DATASETS.get(n).needs_root]
# mnist's images live inside IDX files, lmdb's inside its database (tests/datasets/test_folder_and_lmdb.py)
IMAGE_FILE_LOADERS = [n for n in FILE_LOADERS if n not in ("mnist", "lmdb")]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Each layout built once for the read-only tests of this module."""
    root = tmp_path_factory.mktemp("layouts")
    return {name: build_layout(name, root / name) for name in BUILDERS}


def as_tuples(records):
    return sorted((r.path, r.label, None if r.bbox is None else tuple(map(float, r.bbox))) for r in records)


def one_line_error(excinfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_every_file_loader_has_a_miniature_layout():
    assert sorted(FILE_LOADERS) == sorted(BUILDERS)


@pytest.mark.parametrize("name", FILE_LOADERS)
def test_records_classes_and_boxes_match_the_official_layout(name, layouts):
    layout, cls = layouts[name], DATASETS.get(name)
    assert sorted(layout.records) == sorted(cls.splits)
    for split, expected in layout.records.items():
        loader = build_dataset(name, layout.root, split=split, **layout.options)
        assert loader.class_names() == layout.classes, split
        assert as_tuples(loader.records()) == sorted(
            (p, label, None if b is None else tuple(map(float, b))) for p, label, b in expected
        ), split
        if cls.has_bboxes:
            assert any(r.bbox is not None for r in loader.records())
        else:
            assert all(r.bbox is None for r in loader.records())


# One class by design: an LMDB is one class, and so is each published 10-shot set; no subset to reorder.
ONE_CLASS = {"lmdb", *(spec.name for spec in FEWSHOT_SETS)}


@pytest.mark.parametrize("name", [n for n in FILE_LOADERS if n not in ONE_CLASS])
def test_a_class_subset_by_name_and_index_is_relabelled_in_the_order_asked(name, layouts):
    layout = layouts[name]
    assert len(layout.classes) >= 2, f"{name}'s miniature layout has one class: list it in ONE_CLASS"
    loader = build_dataset(name, layout.root, classes=[layout.classes[-1], 0], **layout.options)
    assert loader.class_names() == [layout.classes[-1], layout.classes[0]]
    remap = {len(layout.classes) - 1: 0, 0: 1}
    expected = [(p, remap[label], b) for p, label, b in layout.records["train"] if label in remap]
    assert [(r.path, r.label) for r in loader.records()] == [(p, label) for p, label, _ in expected]


@pytest.mark.parametrize("name", FILE_LOADERS)
def test_an_unknown_class_or_split_is_a_one_line_error(name, layouts):
    layout = layouts[name]
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset(name, layout.root, classes=["no such class"], **layout.options).records()
    one_line_error(excinfo, name, "unknown class")
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset(name, layout.root, split="holdout", **layout.options)
    one_line_error(excinfo, name, "unknown split")


@pytest.mark.parametrize("name", FILE_LOADERS)
def test_a_missing_root_names_the_dataset_the_layout_and_where_to_get_it(name, tmp_path):
    cls = DATASETS.get(name)
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset(name, tmp_path / "nowhere")
    one_line_error(excinfo, name, "does not exist", cls.layout[:30], cls.homepage, *cls.subfolders)


@pytest.mark.parametrize("name", FILE_LOADERS)
def test_each_missing_annotation_file_or_folder_is_named(name, tmp_path):
    files = build_layout(name, tmp_path / "probe").annotation_files
    for i, relpath in enumerate(files):
        layout = build_layout(name, tmp_path / str(i))
        target = layout.root / relpath
        if target.is_dir():
            for path in sorted(target.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            target.rmdir()
        else:
            target.unlink()
        with pytest.raises(BenchmarkError) as excinfo:
            build_dataset(name, layout.root, split=DATASETS.get(name).splits[-1], **layout.options).records()
        one_line_error(excinfo, name, "not found", target.name.removesuffix(".gz"))


@pytest.mark.parametrize("name", IMAGE_FILE_LOADERS)
def test_garbage_truncated_and_missing_images_are_skipped_counted_and_reported(name, tmp_path, caplog):
    layout = build_layout(name, tmp_path / name)
    loader = build_dataset(name, layout.root, **layout.options)
    records = loader.records()
    garbage, missing, truncated = records[0], records[1], records[-1]
    (layout.root / garbage.path).write_bytes(b"this is not a JPEG at all" * 10)
    (layout.root / missing.path).unlink()
    (layout.root / truncated.path).write_bytes(jpeg_bytes(3)[: len(jpeg_bytes(3)) // 2])
    crop = "bbox" if loader.has_bboxes else "center"
    with caplog.at_level(logging.WARNING):
        prepared = prepare_images(loader, 16, crop=crop, progress=False)
    assert len(prepared) == len(records) - 3
    assert prepared.images.shape == (len(records) - 3, 3, 16, 16)
    assert sorted(p for p, _ in prepared.skipped) == sorted([garbage.path, missing.path, truncated.path])
    assert "skipped 3 unreadable image(s)" in caplog.text


def test_mnist_images_come_from_the_idx_files_gzipped_or_not(layouts):
    layout = layouts["mnist"]
    for split, count in (("train", 20), ("test", 10)):
        loader = build_dataset("mnist", layout.root, split=split)
        prepared = prepare_images(loader, 32, channels=1, crop="none", progress=False)
        assert prepared.images.shape == (count, 1, 32, 32)
        for image, label in zip(prepared.images, prepared.labels.tolist()):
            lit_rows = (image[0, :, 16] > 127).nonzero().flatten().tolist()
            assert lit_rows == list(range(6 + label, 12 + label))  # the builder's bar, 2 px down: padded to 32


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("stanford_cars", "stanford_cars"),
        ("flowers102", "flowers-102"),
        ("cub200", "CUB_200_2011"),
        ("caltech256", "caltech256"),
        ("afhq", "afhq"),
    ],
)
def test_the_root_may_be_the_folder_holding_the_dataset(name, folder, tmp_path):
    layout = build_layout(name, tmp_path / folder)
    loader = build_dataset(name, tmp_path)
    assert loader.root == layout.root
    assert len(loader.records()) == len(layout.records["train"])


@pytest.mark.parametrize("sub", ["", "MNIST", "MNIST/raw"])
def test_mnist_root_may_be_torchvisions_root_the_mnist_folder_or_raw(sub, layouts):
    assert len(build_dataset("mnist", layouts["mnist"].root / sub, split="test").records()) == 10


def test_caltech_clutter_is_excluded_unless_asked(layouts):
    root = layouts["caltech256"].root
    loader = build_dataset("caltech256", root, include_clutter=True)
    assert loader.class_names() == ["ak47", "american-flag", "backpack", "clutter"]
    assert sum(r.label == 3 for r in loader.records()) == 2


def test_a_class_left_empty_is_a_clear_error(tmp_path):
    layout = build_layout("caltech256", tmp_path / "caltech")
    for image in (layout.root / "256_ObjectCategories" / "001.ak47").glob("*.jpg"):
        image.unlink()
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("caltech256", layout.root).records()
    one_line_error(excinfo, "caltech256", "no images left for class(es) ak47")


def test_places_challenge_list_image_size_and_category_filter(layouts):
    root = layouts["places365"].root
    assert len(build_dataset("places365", root, variant="challenge").records()) == 12
    loader = build_dataset("places365", root, split="all", classes=["apartment_building/outdoor"])
    assert loader.class_names() == ["apartment_building/outdoor"]
    assert [r.path for r in loader.records()] == [
        "data_256/a/apartment_building/outdoor/00000001.jpg",
        "data_256/a/apartment_building/outdoor/00000002.jpg",
        "val_256/Places365_val_00000003.jpg",
    ]
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("places365", root, images="large").records()
    one_line_error(excinfo, "places365", "data_large/ or data_large_standard/ not found")
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("places365", root, variant="extended")
    one_line_error(excinfo, "places365", "unknown variant 'extended'")


def test_loader_options_that_do_not_exist_are_a_one_line_error(layouts):
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("afhq", layouts["afhq"].root, include_clutter=True)
    one_line_error(excinfo, "afhq", "bad options")


def test_a_class_folder_root_without_class_folders_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("not a dataset")
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset("insect30", tmp_path).records()
    one_line_error(excinfo, "insect30: no class folders under", "one folder per class")
