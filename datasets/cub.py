"""CUB-200-2011 (Wah et al. 2011): 11,788 images of 200 bird species, one box per bird.

Everything is in plain text files keyed by a 1-based image id. Boxes are given as
``<x> <y> <width> <height>`` in pixels and stored as (x, y, x + width, y + height).
"""

from __future__ import annotations

from datasets.annotations import malformed, read_rows, require
from datasets.base import DATASETS, DatasetLoader, Record

_SPLIT_FLAG = {"train": (1,), "test": (0,), "all": (0, 1)}


@DATASETS.register()
class CUB200(DatasetLoader):
    """The official split of train_test_split.txt: train (5,994), test (5,794), or "all".

    Class names drop the number prefix of classes.txt ("001.Black_footed_Albatross" ->
    "Black_footed_Albatross"); labels follow the class ids.

    Per-class counts: 11,788 images over 200 classes (Wah et al. 2011; 58.9 on average);
    most classes hold 60 images, the smallest 41 (counted from image_class_labels.txt, as issue 21
    reports them: 25 shots are up to 60% of a class).
    """

    name = "cub200"
    layout = (
        "images.txt, image_class_labels.txt, classes.txt, bounding_boxes.txt, train_test_split.txt, "
        "images/<NNN.Class_name>/*.jpg (CUB_200_2011.tgz extracted)"
    )
    homepage = "https://www.vision.caltech.edu/datasets/cub_200_2011/"
    splits = ("train", "test", "all")
    smallest_class = {"all": 41}
    has_bboxes = True
    marker = "images.txt"
    subfolders = ("CUB_200_2011",)
    look_alikes = (
        ("lists/files.txt", "CUB-200 (2010: 6,033 images, lists/ and annotations-mat/), not CUB-200-2011"),
        ("annotations-mat", "CUB-200 (2010: 6,033 images, lists/ and annotations-mat/), not CUB-200-2011"),
    )

    def load_all(self) -> tuple[list[Record], list[str]]:
        require(self, "images")
        classes = read_rows(self, "classes.txt", (int, str), "<class_id> <class_name>")
        if [c for c, _ in classes] != list(range(1, len(classes) + 1)):
            raise malformed(self, self.root / "classes.txt", "class ids are not 1, 2, 3, ... in order")
        names = [name.split(".", 1)[-1] for _, name in classes]
        images = read_rows(self, "images.txt", (int, str), "<image_id> <image_name>")
        labels = dict(read_rows(self, "image_class_labels.txt", (int, int), "<image_id> <class_id>"))
        flags = dict(read_rows(self, "train_test_split.txt", (int, int), "<image_id> <is_training_image>"))
        boxes = {
            i: (x, y, x + w, y + h)
            for i, x, y, w, h in read_rows(
                self, "bounding_boxes.txt", (int, float, float, float, float), "<image_id> <x> <y> <width> <height>"
            )
        }
        records = []
        for image_id, file in images:
            for table, what in ((labels, "image_class_labels.txt"), (flags, "train_test_split.txt")):
                if image_id not in table:
                    raise malformed(self, self.root / what, f"no line for image {image_id} ({file})")
            if not 1 <= labels[image_id] <= len(names):
                raise malformed(self, self.root / "image_class_labels.txt", f"image {image_id} has unknown class")
            if flags[image_id] in _SPLIT_FLAG[self.split]:
                records.append(Record(f"images/{file}", labels[image_id] - 1, boxes.get(image_id)))
        return records, names
