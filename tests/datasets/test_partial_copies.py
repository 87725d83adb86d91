"""Data that is not where or what a suite expects: a partial copy, an archive passed as the root."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.io import savemat

import datasets  # noqa: F401  (registers every loader)
from benchmark.errors import BenchmarkError
from datasets import build_dataset
from datasets.inspect import format_inspection, inspect_dataset
from tests.datasets.layouts import build_layout, write_jpeg


def partial_flowers(root, n_classes: int = 3, per_class: int = 4):
    """Flowers 102 whose labels cover only the first ``n_classes`` classes (an interrupted copy)."""
    labels = [c for c in range(1, n_classes + 1) for _ in range(per_class)]
    for image_id in range(1, len(labels) + 1):
        write_jpeg(root / "jpg" / f"image_{image_id:05d}.jpg", image_id)
    savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    ids = np.arange(1, len(labels) + 1, dtype=np.uint16)
    savemat(root / "setid.mat", {"trnid": ids[None, ::3], "valid": ids[None, 1::3], "tstid": ids[None, 2::3]})
    return root


def test_inspecting_a_partial_copy_reports_counts_and_the_empty_classes(tmp_path):
    root = partial_flowers(tmp_path / "flowers")
    report = inspect_dataset("flowers102", root, split="all")
    assert report["n_images"] == 12 and report["n_classes"] == 102
    assert list(report["per_class"].values())[:4] == [4, 4, 4, 0]
    assert len(report["empty_classes"]) == 99 and report["empty_classes"][0] == report["classes"][3]
    problem = report["problems"][0]
    assert problem.startswith(
        f"99 of 102 classes have no images (a partial copy, or the wrong split?): {report['classes'][3]}, "
    )
    assert "(+89 more); a suite that asks for one of them stops" in problem
    text = format_inspection(report)
    assert text.splitlines()[0] == "flowers102 (all split): 12 images in 102 classes"
    assert "problems (1):" in text and "99 of 102 classes have no images" in text


def test_a_suite_asking_for_an_empty_class_stops_in_one_abbreviated_line(tmp_path):
    root = partial_flowers(tmp_path / "flowers")
    assert len(build_dataset("flowers102", root, split="all", classes=[0, 1, 2]).records()) == 12
    with pytest.raises(BenchmarkError) as info:
        build_dataset("flowers102", root, split="all").records()
    message = str(info.value)
    assert "no images left for class(es) " in message and "(+94 more) (99 of 102 classes)" in message
    assert "inspect-data flowers102" in message and len(message) < 400


def test_a_data_root_that_is_an_archive_says_to_extract_it(tmp_path):
    archive = tmp_path / "256_ObjectCategories.tar"
    archive.write_bytes(b"\0" * 1024)
    with pytest.raises(BenchmarkError) as info:
        build_dataset("caltech256", archive)
    assert "data root " in str(info.value) and (
        "256_ObjectCategories.tar is a file, not a folder: extract the archive and pass the folder it extracts to"
    ) in str(info.value)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(BenchmarkError, match="is a file, not a folder: pass the folder the dataset was extracted to"):
        build_dataset("caltech256", notes)


def test_a_root_holding_the_archive_unextracted_says_so(tmp_path):
    (tmp_path / "256_ObjectCategories.tar").write_bytes(b"\0" * 1024)
    with pytest.raises(BenchmarkError, match=r"The root holds 256_ObjectCategories.tar: extract it there"):
        build_dataset("caltech256", tmp_path).records()
    layout = build_layout("caltech256", tmp_path / "whole")
    assert build_dataset("caltech256", layout.root).records()  # extracted: no hint needed, nothing refused


@pytest.mark.parametrize(
    "dataset, folder, problem",
    [
        ("caltech256", "256_ObjectCategories", "no classes found under"),  # no category folders
        ("insect30", "", "no images found under"),  # class folders, all empty
        ("afhq", "", "no images found under"),
    ],
)
def test_an_empty_data_folder_is_a_problem_naming_the_folder_not_zero_images_and_no_problems(
    tmp_path, dataset, folder, problem
):
    root = tmp_path / dataset
    build_layout(dataset, root)
    for path in sorted((p for p in root.rglob("*") if p.is_file()), reverse=True):
        path.unlink()
    if folder:
        for path in (root / folder).iterdir():
            shutil.rmtree(path)
    report = inspect_dataset(dataset, root, split="train")
    text = format_inspection(report)
    assert report["n_images"] == 0 and "no problems found" not in text
    assert report["problems"][0].startswith(f"{problem} {root}"), text
    with pytest.raises(BenchmarkError, match=f"{problem} {root}"):
        build_dataset(dataset, root).records()
    if problem == "no classes found under":  # a suite that picks classes by number (caltech-fewshot) too
        with pytest.raises(BenchmarkError, match=f"{problem} {root}.*picks class 0 by number"):
            build_dataset(dataset, root, classes=[0, 1]).records()


def test_empty_class_folders_are_named_and_a_dataset_without_breed_folders_says_so(tmp_path):
    root = build_layout("insect30", tmp_path / "insect").root
    first = sorted(p for p in root.iterdir() if p.is_dir())[0]
    for image in first.iterdir():
        image.unlink()
    report = inspect_dataset("insect30", root)
    assert f"{first.name} ({first})" in report["problems"][0]
    with pytest.raises(BenchmarkError, match=f"in {first};"):
        build_dataset("insect30", root).records()
    (tmp_path / "mine" / "b").mkdir(parents=True)  # the folder data set: one class per sub-folder, b empty
    write_jpeg(tmp_path / "mine" / "a" / "x.jpg")
    assert f"b ({tmp_path / 'mine' / 'b'})" in inspect_dataset("folder", tmp_path / "mine")["problems"][0]
    dogs = build_layout("stanford_dogs", tmp_path / "dogs").root
    for path in (dogs / "Images").iterdir():
        shutil.rmtree(path)
    with pytest.raises(BenchmarkError, match=f"no breed folders in {dogs / 'Images'}"):
        inspect_dataset("stanford_dogs", dogs)


def test_class_names_match_as_typed_and_a_near_miss_gets_the_nearest_names(tmp_path):
    """A folder written on macOS (NFD "é") matches a name typed in NFC with spaces around it, from a suite or
    ``inspect-data --classes``; a name that still matches nothing lists the nearest valid ones."""
    import unicodedata

    root = build_layout("insect30", tmp_path / "insect").root
    nfd = unicodedata.normalize("NFD", "Coléoptère_doré")
    (root / "Apis_mellifera").rename(root / nfd)
    loader = build_dataset("insect30", root, classes=["  Coléoptère_doré ", "Danaus_plexippus"])
    assert loader.class_names() == [nfd, "Danaus_plexippus"] and len(loader.records()) == 4
    assert inspect_dataset("insect30", root, classes=["Coléoptère_doré\t"])["n_images"] == 2
    with pytest.raises(BenchmarkError, match="unknown class 'Danaus_plexipus'; did you mean 'Danaus_plexippus'"):
        build_dataset("insect30", root, classes=["Danaus_plexipus"]).records()


def _afhq_v2(root):
    """AFHQ v1's test layout re-shaped as v2: test/ for val/, PNG for JPEG."""
    build_layout("afhq", root)
    (root / "val").rename(root / "test")
    for image in list(root.rglob("*.jpg")):
        image.rename(image.with_suffix(".png"))
    return root


def test_afhq_v2_is_not_read_as_v1_and_each_version_names_the_other(tmp_path):
    v2 = _afhq_v2(tmp_path / "v2")
    with pytest.raises(BenchmarkError) as err:
        inspect_dataset("afhq", v2)
    message = str(err.value)
    assert message.startswith(f"afhq: {v2} holds AFHQ v2 (train/ and test/ of PNG images, afhq_v2.zip)")
    assert "the suite asks for AFHQ v1 (train/ and val/ of JPEG images, afhq.zip)" in message
    assert "version: v2" in message and "\n" not in message
    assert len(build_dataset("afhq", v2, split="all", version="v2").records()) == 9
    v1 = build_layout("afhq", tmp_path / "v1").root
    with pytest.raises(BenchmarkError, match="holds AFHQ v1 .* the suite asks for AFHQ v2"):
        build_dataset("afhq", v1, version="v2").records()
    assert [r.path[:5] for r in build_dataset("afhq", v2, split="val", version="v2").records()] == ["test/"] * 3


@pytest.mark.parametrize(
    "dataset, look_alike, found",
    [
        ("places365", "places365_standard/train/airfield", "Places365's easy-format archive"),
        ("stanford_cars", "car_data/train/AM General Hummer SUV 2000", "Kaggle's re-packaging by class folder"),
        ("stanford_cars", "car_ims", "the single-folder release (car_ims/ and cars_annos.mat"),
        ("flowers102", "flower_data/valid/1", "the Udacity/Kaggle re-split copy"),
        ("cub200", "lists/files.txt", "CUB-200 (2010"),
        ("caltech256", "101_ObjectCategories/accordion", "Caltech-101"),
        ("stanford_dogs", "images/Images/n02085620-Chihuahua", "Kaggle's copy (images/Images/"),
    ],
)
def test_another_release_of_a_data_set_is_named_for_what_it_is(tmp_path, dataset, look_alike, found):
    root = tmp_path / dataset
    (root / look_alike).parent.mkdir(parents=True)
    (root / look_alike).mkdir() if "." not in look_alike else (root / look_alike).write_text("x\n")
    with pytest.raises(BenchmarkError) as err:
        inspect_dataset(dataset, root)
    message = str(err.value)
    assert message.startswith(f"{dataset}: {root} holds {found}") and "not the release this loader reads" in message


def test_places365_variants_and_nested_stanford_cars_images_are_named(tmp_path):
    places = build_layout("places365", tmp_path / "places").root
    (places / "places365_train_standard.txt").unlink()
    with pytest.raises(
        BenchmarkError,
        match="places365_train_standard.txt not found .* holds the challenge release's train list .* challenge",
    ):
        build_dataset("places365", places).records()
    assert len(build_dataset("places365", places, variant="challenge").records()) == 12
    cars = build_layout("stanford_cars", tmp_path / "cars").root
    (cars / "cars_train").rename(tmp_path / "nested")
    (cars / "cars_train").mkdir()
    (tmp_path / "nested").rename(cars / "cars_train" / "cars_train")
    with pytest.raises(BenchmarkError, match="one folder deeper .* move the files of cars_train/cars_train/ up"):
        build_dataset("stanford_cars", cars).records()


def test_listed_images_absent_from_disk_are_counted_by_a_stat_and_more_than_a_few_stop_the_suite(tmp_path):
    from types import SimpleNamespace

    from benchmark.runner import check_files_present

    root = build_layout("stanford_dogs", tmp_path / "dogs").root
    target = SimpleNamespace(name="dogs", dataset="stanford_dogs")
    loader = build_dataset("stanford_dogs", root, split="all")
    assert check_files_present(target, "all", loader) == ""
    listed = [r.path for r in loader.records()]
    (root / listed[0]).unlink()
    line = check_files_present(target, "all", build_dataset("stanford_dogs", root, split="all"))
    assert line == f"; 1 listed image(s) absent, skipped: {listed[0]}"
    for path in listed[1:6]:
        (root / path).unlink()
    with pytest.raises(BenchmarkError) as err:
        check_files_present(target, "all", build_dataset("stanford_dogs", root, split="all"))
    assert str(err.value).startswith(
        f"6 of the {len(listed)} images listed for target dogs (all split) are not on disk"
    )
    assert "inspect-data stanford_dogs lists them" in str(err.value)
