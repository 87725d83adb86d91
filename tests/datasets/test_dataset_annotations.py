"""Malformed annotation files give one-line errors naming the file and the problem, never a traceback."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from scipy.io import savemat

import datasets  # noqa: F401  (registers every loader)
from benchmark.errors import BenchmarkError
from datasets import build_dataset
from tests.datasets.layouts import build_layout, cars_annos, cell, write_text


def load_error(name: str, root, **options) -> str:
    with pytest.raises(BenchmarkError) as excinfo:
        build_dataset(name, root, **options).records()
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith(f"{name}: "), message
    return message


@pytest.fixture
def layout(request, tmp_path):
    return build_layout(request.param, tmp_path / request.param)


@pytest.mark.parametrize("layout", ["stanford_cars"], indirect=True)
def test_stanford_cars_mat_files(layout):
    meta = layout.root / "devkit" / "cars_meta.mat"
    savemat(meta, {"names": np.array([["a", "b"]], dtype=object)})
    message = load_error("stanford_cars", layout.root)
    assert "cars_meta.mat is malformed" in message and "no variable 'class_names'" in message and "names" in message

    meta.write_bytes(b"\x00garbage, not MATLAB" * 20)
    assert "not a readable MATLAB file" in load_error("stanford_cars", layout.root)

    build_layout("stanford_cars", layout.root)
    annos = cars_annos([("00001.jpg", 1, (1, 1, 5, 5))], omit=("bbox_x1", "bbox_x2", "bbox_y2"))
    savemat(layout.root / "devkit" / "cars_train_annos.mat", {"annotations": annos})
    message = load_error("stanford_cars", layout.root)
    assert "cars_train_annos.mat" in message and "lacks field(s) bbox_x1, bbox_x2, bbox_y2" in message

    annos = cars_annos([("00001.jpg", 9, (1, 1, 5, 5))])
    savemat(layout.root / "devkit" / "cars_train_annos.mat", {"annotations": annos})
    assert "class 9 of 00001.jpg is outside 1..3" in load_error("stanford_cars", layout.root)

    (layout.root / "cars_test_annos_withlabels.mat").unlink()
    message = load_error("stanford_cars", layout.root, split="test")
    assert "cars_test_annos_withlabels.mat or devkit/cars_test_annos_withlabels.mat not found" in message


@pytest.mark.parametrize("layout", ["stanford_dogs"], indirect=True)
def test_stanford_dogs_lists_and_xml(layout):
    lists = layout.root / "lists" / "train_list.mat"
    savemat(lists, {"file_list": cell(["n02085620-Chihuahua/x.jpg"]), "annotation_list": cell(["x"])})
    assert "train_list.mat is malformed: no variable 'labels'" in load_error("stanford_dogs", layout.root)

    savemat(
        lists,
        {"file_list": cell(["n02085620-Chihuahua/x.jpg"]), "annotation_list": cell(["x"]), "labels": np.array([[2.0]])},
    )
    message = load_error("stanford_dogs", layout.root)
    assert "label 2 of n02085620-Chihuahua/x.jpg does not match the Images/ folder order" in message

    savemat(
        lists,
        {"file_list": cell(["n02085620-Chihuahua/x.jpg"]), "annotation_list": cell(["x"]), "labels": cell(["one"])},
    )
    assert "variable 'labels' holds <U3 values, expected numbers" in load_error("stanford_dogs", layout.root)

    build_layout("stanford_dogs", layout.root)
    xml = next(p for p in (layout.root / "Annotation").rglob("*") if p.is_file())
    xml.write_text("<annotation><object><bndbox><xmin>3</xmin></bndbox>")
    message = load_error("stanford_dogs", layout.root, split="all")
    assert str(xml) in message and "not valid XML" in message

    xml.write_text("<annotation><object><bndbox><xmin>3</xmin><ymin>a</ymin></bndbox></object></annotation>")
    assert "lacks a numeric xmin, ymin, xmax or ymax" in load_error("stanford_dogs", layout.root, split="all")


@pytest.mark.parametrize("layout", ["flowers102"], indirect=True)
def test_flowers_mat_files(layout):
    savemat(layout.root / "setid.mat", {"trnid": np.array([[1, 2]]), "valid": np.array([[3]])})
    message = load_error("flowers102", layout.root, split="test")
    assert "setid.mat is malformed: no variable 'tstid'" in message and "trnid, valid" in message

    savemat(
        layout.root / "setid.mat", {"trnid": np.array([[1, 99999]]), "valid": np.array([[3]]), "tstid": np.array([[4]])}
    )
    assert "trnid names image 99999, beyond the 408 labels" in load_error("flowers102", layout.root)


@pytest.mark.parametrize("layout", ["cub200"], indirect=True)
def test_cub_text_files(layout):
    labels = layout.root / "image_class_labels.txt"
    lines = labels.read_text().splitlines()
    write_text(labels, [lines[0], "2 two", *lines[2:]])
    message = load_error("cub200", layout.root)
    assert "image_class_labels.txt is malformed: line 2 is '2 two', expected <image_id> <class_id>" in message

    write_text(labels, lines[1:])
    assert "image_class_labels.txt is malformed: no line for image 1" in load_error("cub200", layout.root)

    write_text(labels, lines)
    write_text(layout.root / "classes.txt", ["2 002.Laysan_Albatross", "1 001.Black_footed_Albatross"])
    assert "class ids are not 1, 2, 3, ... in order" in load_error("cub200", layout.root)

    (layout.root / "classes.txt").write_bytes(b"\xff\xfe\x00binary")
    assert "classes.txt is malformed: not a text file" in load_error("cub200", layout.root)


@pytest.mark.parametrize("layout", ["places365"], indirect=True)
def test_places_text_files(layout):
    train = layout.root / "places365_train_standard.txt"
    original = train.read_text()
    train.write_text(original + "/a/alley/00000009.jpg 1 extra\n")
    message = load_error("places365", layout.root)
    assert "places365_train_standard.txt is malformed: expected '<image> <category index>' lines" in message

    train.write_text(original + "/a/alley/00000009.jpg one\n")
    assert "places365_train_standard.txt is malformed" in load_error("places365", layout.root)

    train.write_text(original + "/a/alley/00000009.jpg 400\n")
    assert "a category index is outside 0..3" in load_error("places365", layout.root)

    train.write_text(original)
    write_text(layout.root / "categories_places365.txt", ["/a/airfield 0", "/a/alley"])
    message = load_error("places365", layout.root)
    assert "categories_places365.txt is malformed: line 2 is '/a/alley', expected <category> <index>" in message


@pytest.mark.parametrize("layout", ["mnist"], indirect=True)
def test_mnist_idx_files(layout):
    raw = layout.root / "MNIST" / "raw"
    labels = raw / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    assert "header says (10,) but 7 bytes follow" in load_error("mnist", layout.root, split="test")

    labels.write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00\x00\x00\x00")
    assert "not an IDX file of 1-D unsigned bytes" in load_error("mnist", layout.root, split="test")

    images = raw / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    message = load_error("mnist", layout.root)
    assert "train-images-idx3-ubyte.gz is malformed: cannot be read (EOFError" in message


def test_boxes_that_disagree_with_their_image_are_counted_by_inspect_data_and_handled_by_the_stated_rule(
    tmp_path, caplog
):
    """CUB's boxes for 64 x 48 images: one wholly outside (it cropped the image's corner as "the object"),
    one empty, one reaching past the right edge; a Stanford Dogs box declared for a 128 x 96 image. Wholly
    outside, empty and foreign-size boxes fall back to the centre crop; the one reaching past is clipped."""
    from datasets.inspect import inspect_dataset
    from datasets.preprocess import crop_and_resize, prepare_images

    cub = build_layout("cub200", tmp_path / "cub").root
    lines = (cub / "bounding_boxes.txt").read_text().splitlines()
    bad = {"1": "1 500.0 400.0 20.0 20.0", "2": "2 10.0 10.0 0.0 10.0", "3": "3 50.0 10.0 30.0 20.0"}
    write_text(cub / "bounding_boxes.txt", [bad.get(line.split()[0], line) for line in lines])
    report = inspect_dataset("cub200", cub, split="all")
    assert report["box_problems"] == {
        "empty or inverted": 1,
        "reaches past the image (clipped)": 1,
        "wholly outside the image": 1,
    }
    assert any(p.startswith("1 object box(es) wholly outside the image: images/001.") for p in report["problems"])

    dogs = build_layout("stanford_dogs", tmp_path / "dogs").root
    xml = next((dogs / "Annotation").rglob("*_1001"))
    xml.write_text(
        xml.read_text().replace("<width>64</width><height>48</height>", "<width>128</width><height>96</height>")
    )
    assert inspect_dataset("stanford_dogs", dogs)["box_problems"] == {"declared for another image size": 1}

    for name, root, wrong in (("cub200", cub, ("_0001_", "_0002_")), ("stanford_dogs", dogs, ("_1001",))):
        loader = build_dataset(name, root, split="all" if name == "cub200" else "train")
        with caplog.at_level("WARNING", logger="datasets.preprocess"):
            prepared = prepare_images(loader, 16, 3, crop="bbox", progress=False)
        assert f"{name}: {3 if name == 'cub200' else 1} of {len(loader.records())} object boxes disagree" in caplog.text
        for record, image in zip(loader.records(), prepared.images):
            if any(w in record.path for w in wrong):
                centre = crop_and_resize(loader.open_image(record), 16, 3, "center")
                assert np.array_equal(image.numpy(), centre), record.path
        caplog.clear()
