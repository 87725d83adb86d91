"""Miniature copies of each dataset's official on-disk layout, for tests and end-to-end dry runs.

Each builder writes a few tiny JPEGs and the real annotation files (MATLAB files with the real
variable names and struct layout via ``scipy.io.savemat``, plain text, VOC XML, IDX) into a folder,
and returns a :class:`Layout` saying what a correct loader must find there: the class names, and
for every split the records (path, label, box) in the loader's conventions. Every class has images
in every split, as in the real datasets.

Usage: ``layout = build_layout("cub200", tmp_path / "cub")``, then
``build_dataset(layout.dataset, layout.root, split="train", **layout.options)``.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

Box = tuple[float, float, float, float]
IMAGE_SIZE = (64, 48)  # width, height: big enough for boxes that are not the whole image


@dataclass
class Layout:
    """What a builder wrote.

    Attributes:
        dataset: the registered loader name.
        root: the folder to pass as the data root.
        classes: the full class list the loader must return.
        records: split -> [(path, label, bbox)] the loader must return for that split ("all" included).
        annotation_files: files of the layout (relative to root) whose absence the loader must report.
        options: extra loader keyword arguments this layout needs.
    """

    dataset: str
    root: Path
    classes: list[str]
    records: dict[str, list[tuple[str, int, Box | None]]]
    annotation_files: list[str]
    options: dict = field(default_factory=dict)


@cache
def jpeg_bytes(seed: int = 0, size: tuple[int, int] = IMAGE_SIZE) -> bytes:
    """A small JPEG of smooth colour (so it survives compression), different per seed."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.random.default_rng(seed).integers(0, 200, 3)
    pixels = np.stack([(base[c] + x * (c + 1) + y) % 256 for c in range(3)], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_jpeg(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(seed % 7))


def write_text(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def cell(strings) -> np.ndarray:
    """A MATLAB Nx1 cell array of strings, as savemat writes an object array."""
    array = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        array[i, 0] = s
    return array


def with_all(records: dict[str, list], order: tuple[str, ...]) -> dict[str, list]:
    records["all"] = [r for split in order for r in records[split]]
    return records


# -- Stanford Cars ---------------------------------------------------------------------------------
CARS_CLASSES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"]


def cars_annos(rows, omit: tuple[str, ...] = ()) -> np.ndarray:
    """cars_*_annos.mat's 1xN struct array: bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname (less ``omit``)."""
    names = [n for n in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname") if n not in omit]
    annos = np.zeros((1, len(rows)), dtype=[(n, object) for n in names])
    for i, (fname, label, (x1, y1, x2, y2)) in enumerate(rows):
        values = dict(zip(("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"), (x1, y1, x2, y2)))
        values = {k: np.array([[v]], dtype=np.uint16) for k, v in values.items()}
        values.update({"class": np.array([[label]], dtype=np.uint8), "fname": fname})
        annos[0, i] = tuple(values[n] for n in names)
    return annos


def make_stanford_cars(root: Path) -> Layout:
    boxes = [(5, 6, 40, 30), (1, 1, 64, 48), (10, 12, 50, 44), (3, 4, 33, 24)]
    train = [(f"{i + 1:05d}.jpg", i % 3 + 1, boxes[i % 4]) for i in range(4)]
    test = [(f"{i + 1:05d}.jpg", (i + 1) % 3 + 1, boxes[(i + 2) % 4]) for i in range(3)]
    (root / "devkit").mkdir(parents=True, exist_ok=True)
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": np.array([CARS_CLASSES], dtype=object)})
    savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": cars_annos(train)})
    savemat(root / "devkit" / "cars_test_annos.mat", {"annotations": cars_annos(test, omit=("class",))})
    savemat(root / "cars_test_annos_withlabels.mat", {"annotations": cars_annos(test)})
    records = {}
    for split, folder, rows in (("train", "cars_train", train), ("test", "cars_test", test)):
        for i, (fname, _, _) in enumerate(rows):
            write_jpeg(root / folder / fname, i)
        records[split] = [(f"{folder}/{f}", c - 1, (x1 - 1.0, y1 - 1.0, x2, y2)) for f, c, (x1, y1, x2, y2) in rows]
    annotation_files = ["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat"]
    return Layout("stanford_cars", root, CARS_CLASSES, with_all(records, ("train", "test")), annotation_files)


# -- Stanford Dogs ---------------------------------------------------------------------------------
DOGS_FOLDERS = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]


def _voc_xml(folder: str, name: str, boxes) -> str:
    objects = "".join(
        f"<object><name>{folder.split('-', 1)[1]}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>"
        for x0, y0, x1, y1 in boxes
    )
    return (
        f"<annotation><folder>{folder.split('-')[0][1:]}</folder><filename>{name}</filename>"
        "<source><database>ImageNet database</database></source>"
        f"<size><width>{IMAGE_SIZE[0]}</width><height>{IMAGE_SIZE[1]}</height><depth>3</depth></size>"
        f"<segment>0</segment>{objects}</annotation>"
    )


def make_stanford_dogs(root: Path) -> Layout:
    records: dict[str, list] = {"train": [], "test": []}
    lists: dict[str, tuple[list, list, list]] = {"train": ([], [], []), "test": ([], [], [])}
    serial = 0
    for label, folder in enumerate(DOGS_FOLDERS):
        wnid = folder.split("-")[0]
        for split, count in (("train", 2), ("test", 1)):
            for _ in range(count):
                serial += 1
                name = f"{wnid}_{1000 + serial}"
                write_jpeg(root / "Images" / folder / f"{name}.jpg", serial)
                boxes = [(2, 3, 30, 40)] if serial % 2 else [(1, 1, 10, 10), (5, 8, 60, 45)]  # largest is kept
                box: Box | None = (float(boxes[-1][0] - 1), float(boxes[-1][1] - 1), boxes[-1][2], boxes[-1][3])
                if serial == 4:
                    box = None  # this image's annotation file is absent
                else:
                    write_text(root / "Annotation" / folder / name, [_voc_xml(folder, name, boxes)])
                records[split].append((f"Images/{folder}/{name}.jpg", label, box))
                files, annotations, labels = lists[split]
                files.append(f"{folder}/{name}.jpg")
                annotations.append(f"{folder}/{name}")
                labels.append(label + 1)
    for split, (files, annotations, labels) in lists.items():
        (root / "lists").mkdir(parents=True, exist_ok=True)
        savemat(
            root / "lists" / f"{split}_list.mat",
            {
                "file_list": cell(files),
                "annotation_list": cell(annotations),
                "labels": np.array(labels, dtype=np.float64)[:, None],
            },
        )
    classes = [f.split("-", 1)[1] for f in DOGS_FOLDERS]
    annotation_files = ["Images", "Annotation", "lists/train_list.mat", "lists/test_list.mat"]
    return Layout("stanford_dogs", root, classes, with_all(records, ("train", "test")), annotation_files)


# -- Oxford Flowers 102 ----------------------------------------------------------------------------
def make_flowers102(root: Path) -> Layout:
    from datasets.flowers102 import _class_names

    labels = [c for c in range(1, 103) for _ in range(4)]  # image k (1-based) has label labels[k - 1]
    ids = {"trnid": [], "valid": [], "tstid": []}
    for image_id in range(1, len(labels) + 1):
        key = ("trnid", "valid", "tstid", "tstid")[(image_id - 1) % 4]
        ids[key].append(image_id)
        write_jpeg(root / "jpg" / f"image_{image_id:05d}.jpg", image_id)
    savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(root / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in ids.items()})
    records = {
        split: [(f"jpg/image_{i:05d}.jpg", labels[i - 1] - 1, None) for i in ids[key]]
        for split, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid"))
    }
    records = with_all(records, ("train", "val", "test"))
    return Layout("flowers102", root, _class_names(), records, ["imagelabels.mat", "setid.mat"])


# -- CUB-200-2011 ----------------------------------------------------------------------------------
CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub200(root: Path) -> Layout:
    images, labels, splits, boxes = [], [], [], []
    records: dict[str, list] = {"train": [], "test": []}
    image_id = 0
    for label, folder in enumerate(CUB_CLASSES):
        for is_train in (1, 0, 1):
            image_id += 1
            name = f"{folder}/{folder.split('.')[1]}_00{image_id:02d}_{790 + image_id}.jpg"
            write_jpeg(root / "images" / name, image_id)
            images.append(f"{image_id} {name}")
            labels.append(f"{image_id} {label + 1}")
            splits.append(f"{image_id} {is_train}")
            box = (float(image_id), 2.0, 30.0 + image_id, 20.0)
            if image_id != 5:  # one image without a box line
                boxes.append(f"{image_id} {box[0]} {box[1]} {box[2]} {box[3]}")
            bbox = None if image_id == 5 else (box[0], box[1], box[0] + box[2], box[1] + box[3])
            records["train" if is_train else "test"].append((f"images/{name}", label, bbox))
    write_text(root / "classes.txt", [f"{i} {c}" for i, c in enumerate(CUB_CLASSES, 1)])
    write_text(root / "images.txt", images)
    write_text(root / "image_class_labels.txt", labels)
    write_text(root / "train_test_split.txt", splits)
    write_text(root / "bounding_boxes.txt", boxes)
    classes = [c.split(".", 1)[1] for c in CUB_CLASSES]
    annotation_files = [
        "images",
        "images.txt",
        "image_class_labels.txt",
        "classes.txt",
        "train_test_split.txt",
        "bounding_boxes.txt",
    ]
    return Layout("cub200", root, classes, with_all(records, ("train", "test")), annotation_files)


# -- Caltech-256 -----------------------------------------------------------------------------------
CALTECH_FOLDERS = ["001.ak47", "002.american-flag", "003.backpack", "257.clutter"]


def make_caltech256(root: Path) -> Layout:
    top = root / "256_ObjectCategories"
    records = []
    for label, folder in enumerate(CALTECH_FOLDERS):
        for i in range(1, 3):
            write_jpeg(top / folder / f"{folder[:3]}_{i:04d}.jpg", i + label)
            records.append((f"256_ObjectCategories/{folder}/{folder[:3]}_{i:04d}.jpg", label, None))
    write_jpeg(top / "002.american-flag" / "greg" / "vision309.jpg")  # a nested folder: not a record
    write_text(top / "003.backpack" / "RENAME2", ["stray file"])  # a stray non-image: not a record
    without_clutter = [r for r in records if not r[0].startswith("256_ObjectCategories/257")]
    classes = [f.split(".", 1)[1] for f in CALTECH_FOLDERS[:3]]
    return Layout(
        "caltech256", root, classes, {"train": without_clutter, "all": without_clutter}, ["256_ObjectCategories"]
    )


# -- Insect-30 (class folders) ---------------------------------------------------------------------
INSECT_CLASSES = ["Apis_mellifera", "Coccinella_septempunctata", "Danaus_plexippus"]


def make_insect30(root: Path) -> Layout:
    records = []
    for label, name in enumerate(INSECT_CLASSES):
        for i in range(2):
            write_jpeg(root / name / f"{name.lower()}_{i}.jpg", label * 2 + i)
            records.append((f"{name}/{name.lower()}_{i}.jpg", label, None))
    write_text(root / ".DS_Store", ["finder junk"])
    return Layout("insect30", root, INSECT_CLASSES, {"train": records, "all": records}, [])


# -- AFHQ v1 ---------------------------------------------------------------------------------------
def make_afhq(root: Path) -> Layout:
    records: dict[str, list] = {"train": [], "val": []}
    for split, count in (("train", 2), ("val", 1)):
        for label, name in enumerate(("cat", "dog", "wild")):
            for i in range(count):
                file = f"{split}/{name}/flickr_{name}_{i:06d}.jpg"
                write_jpeg(root / file, label + i)
                records[split].append((file, label, None))
    return Layout("afhq", root, ["cat", "dog", "wild"], with_all(records, ("train", "val")), ["train/cat", "val/wild"])


# -- Places365 -------------------------------------------------------------------------------------
PLACES_CATEGORIES = ["/a/airfield", "/a/alley", "/a/apartment_building/outdoor", "/b/badlands"]


def make_places365(root: Path) -> Layout:
    write_text(root / "categories_places365.txt", [f"{c} {i}" for i, c in enumerate(PLACES_CATEGORIES)])
    train, challenge, val, records = [], [], [], {"train": [], "val": []}
    for label, category in enumerate(PLACES_CATEGORIES):
        for i in range(1, 4):
            file = f"{category}/{i:08d}.jpg"
            write_jpeg(root / "data_256" / file.lstrip("/"), label + i)
            challenge.append(f"{file} {label}")
            if i < 3:  # the standard list is a subset of the challenge list
                train.append(f"{file} {label}")
                records["train"].append((f"data_256{file}", label, None))
        name = f"Places365_val_{label + 1:08d}.jpg"
        write_jpeg(root / "val_256" / name, label)
        val.append(f"{name} {label}")
        records["val"].append((f"val_256/{name}", label, None))
    write_text(root / "places365_train_standard.txt", train)
    write_text(root / "places365_train_challenge.txt", challenge)
    write_text(root / "places365_val.txt", val)
    classes = [c.split("/", 2)[2] for c in PLACES_CATEGORIES]
    annotation_files = [
        "categories_places365.txt",
        "places365_train_standard.txt",
        "places365_val.txt",
        "data_256",
        "val_256",
    ]
    return Layout("places365", root, classes, with_all(records, ("train", "val")), annotation_files)


# -- MNIST -----------------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: two zero bytes, the type code 0x08 (uint8), the rank, big-endian sizes, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_mnist(root: Path) -> Layout:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    records = {}
    for split, prefix, per_class, gz in (("train", "train", 2, True), ("test", "t10k", 1, False)):
        labels = np.array([d for d in range(10) for _ in range(per_class)], dtype=np.uint8)
        images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + label : 10 + label, 6:22] = 255  # a bar whose height encodes the digit
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
        records[split] = [(f"{split}/{i:05d}", int(label), None) for i, label in enumerate(labels)]
    annotation_files = ["MNIST/raw/train-images-idx3-ubyte.gz", "MNIST/raw/t10k-labels-idx1-ubyte"]
    return Layout("mnist", root, [str(d) for d in range(10)], with_all(records, ("train", "test")), annotation_files)


BUILDERS: dict[str, Callable[[Path], Layout]] = {
    "stanford_cars": make_stanford_cars,
    "stanford_dogs": make_stanford_dogs,
    "flowers102": make_flowers102,
    "cub200": make_cub200,
    "caltech256": make_caltech256,
    "insect30": make_insect30,
    "afhq": make_afhq,
    "places365": make_places365,
    "mnist": make_mnist,
}


# The image-folder data sets (folder, lmdb, the named 10-shot sets) have their own module, which adds them.
import tests.datasets.image_folder_layouts  # noqa: E402, F401


def build_layout(dataset: str, root: str | Path) -> Layout:
    """Write the miniature layout of ``dataset`` into ``root`` (created) and say what it holds."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return BUILDERS[dataset](root)
