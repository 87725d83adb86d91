"""Stanford Cars (Krause et al. 2013): 16,185 images of 196 car models, with a box around each car.

torchvision's ``StanfordCars`` reads the same files but drops the boxes, so the devkit's struct
arrays are read here directly. The box fields are 1-based inclusive pixel indices; records store
them as (x0, y0, x1, y1) = (bbox_x1 - 1, bbox_y1 - 1, bbox_x2, bbox_y2), 0-based with exclusive
ends, so that x1 - x0 is the box width in pixels.
"""

from __future__ import annotations

from benchmark.errors import BenchmarkError
from datasets.annotations import first_existing, malformed, read_mat, require, struct_fields, vector
from datasets.base import DATASETS, DatasetLoader, Record

_BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


@DATASETS.register()
class StanfordCars(DatasetLoader):
    """The official train (8,144) and test (8,041) splits, or both ("all"); class names from cars_meta.mat.

    Per-class counts: the devkit and the data set's page give only the totals (16,185 images of 196
    classes, 82.6 per class on average) and that "each class has been split roughly in a 50-50
    split", so the train split holds about 42 images per class and no smallest class is stated here
    (``smallest_class`` is empty); the dry run counts the user's files.

    The test labels are not in the devkit: they ship as cars_test_annos_withlabels.mat, read from
    the root (where torchvision puts it) or from devkit/.
    """

    name = "stanford_cars"
    layout = (
        "devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat, "
        "cars_train/*.jpg, cars_test/*.jpg (the devkit, image archives and test labels extracted side by side)"
    )
    homepage = (
        "https://ai.stanford.edu/~jkrause/cars/car_dataset.html (no longer served; copies of the same files circulate)"
    )
    splits = ("train", "test", "all")
    has_bboxes = True
    marker = "devkit"
    subfolders = ("stanford_cars",)
    look_alikes = (
        ("car_data", "Kaggle's re-packaging by class folder (car_data/train/<class name>/, anno_train.csv, names.csv)"),
        ("anno_train.csv", "Kaggle's re-packaging by class folder (car_data/train/<class name>/, anno_train.csv)"),
        ("cars_annos.mat", "the single-folder release (car_ims/ and cars_annos.mat, its own train/test flags)"),
        ("car_ims", "the single-folder release (car_ims/ and cars_annos.mat, its own train/test flags)"),
    )

    def load_all(self) -> tuple[list[Record], list[str]]:
        meta_path = "devkit/cars_meta.mat"
        meta = read_mat(self, meta_path, ["class_names"])
        names = [str(n) for n in vector(self, self.root / meta_path, "class_names", meta["class_names"])]
        records: list[Record] = []
        if self.split in ("train", "all"):
            records += self._split_records("devkit/cars_train_annos.mat", "cars_train", len(names))
        if self.split in ("test", "all"):
            annos = first_existing(
                self, ["cars_test_annos_withlabels.mat", "devkit/cars_test_annos_withlabels.mat"]
            ).relative_to(self.root)
            records += self._split_records(annos, "cars_test", len(names))
        return records, names

    def _split_records(self, annos_path, image_dir: str, n_classes: int) -> list[Record]:
        require(self, image_dir)
        nested = self.root / image_dir / image_dir
        if nested.is_dir():  # Kaggle's copy (jessicali9530) nests each image folder in one of the same name
            raise BenchmarkError(
                f"{self.name}: the images are one folder deeper than the devkit lists them ({nested}, as Kaggle's "
                f"copy nests them): move the files of {image_dir}/{image_dir}/ up into {image_dir}/"
            )
        path = self.root / annos_path
        mat = read_mat(self, annos_path, ["annotations"])
        fields = struct_fields(self, path, "annotations", mat["annotations"], _BOX_FIELDS)
        records = []
        for x1, y1, x2, y2, cls, fname in zip(*(fields[f] for f in _BOX_FIELDS)):
            try:
                label, box = int(cls) - 1, (float(x1) - 1, float(y1) - 1, float(x2), float(y2))
            except (TypeError, ValueError):
                raise malformed(self, path, f"the annotation of {fname} has a non-numeric box or class") from None
            if not 0 <= label < n_classes:
                raise malformed(self, path, f"class {label + 1} of {fname} is outside 1..{n_classes}")
            records.append(Record(f"{image_dir}/{fname}", label, box))
        return records
