"""Oxford Flowers 102 (Nilsback & Zisserman 2008): 8,189 images of 102 flower species, no boxes.

torchvision's ``Flowers102`` reads the same three files but wants them under ``flowers-102/`` and
checks their MD5 sums, so it cannot read a re-packed copy (or a test's miniature one); the files
are read here directly. The official download carries no class names, only numbers; the names are
the list torchvision ships with its class.
"""

from __future__ import annotations

from datasets.annotations import integers, malformed, read_mat, require
from datasets.base import DATASETS, DatasetLoader, Record

_SET_IDS = {"train": ("trnid",), "val": ("valid",), "test": ("tstid",), "all": ("trnid", "valid", "tstid")}


def _class_names() -> list[str]:
    from torchvision.datasets import Flowers102 as TorchvisionFlowers

    names = getattr(TorchvisionFlowers, "classes", None)  # a class attribute since torchvision 0.17
    return list(names) if names and len(names) == 102 else [f"flower_{i:03d}" for i in range(1, 103)]


@DATASETS.register()
class Flowers102(DatasetLoader):
    """The official splits of setid.mat: train (trnid, 1,020), val (valid, 1,020), test (tstid, 6,149), or "all".

    The train and val splits hold 10 images per class; few-shot GAN work usually draws from "all".

    Per-class counts: "each class consists of between 40 and 258 images" (the data set's page,
    https://www.robots.ox.ac.uk/~vgg/data/flowers/102/), train and val 10 each, so the smallest class
    holds 40 images in "all" and 20 in "test".
    """

    name = "flowers102"
    layout = "jpg/image_00001.jpg ..., imagelabels.mat (labels), setid.mat (trnid, valid, tstid)"
    homepage = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
    splits = ("train", "val", "test", "all")
    smallest_class = {"train": 10, "val": 10, "test": 20, "all": 40}
    marker = "imagelabels.mat"
    subfolders = ("flowers-102",)
    look_alikes = tuple(
        (path, "the Udacity/Kaggle re-split copy (train/ and valid/ folders per class number, cat_to_name.json), "
         "whose splits are not the official setid.mat ones")
        for path in ("cat_to_name.json", "flower_data", "valid")
    )  # fmt: skip

    def load_all(self) -> tuple[list[Record], list[str]]:
        require(self, "jpg")
        labels_path, setid_path = self.root / "imagelabels.mat", self.root / "setid.mat"
        labels = integers(self, labels_path, "labels", read_mat(self, "imagelabels.mat", ["labels"])["labels"])
        setid = read_mat(self, "setid.mat", _SET_IDS[self.split])
        names = _class_names()
        records = []
        for key in _SET_IDS[self.split]:
            for image_id in integers(self, setid_path, key, setid[key]):
                if not 1 <= image_id <= len(labels):
                    raise malformed(self, setid_path, f"{key} names image {image_id}, beyond the {len(labels)} labels")
                label = labels[image_id - 1] - 1
                if not 0 <= label < len(names):
                    raise malformed(self, labels_path, f"label {label + 1} of image {image_id} is outside 1..102")
                records.append(Record(f"jpg/image_{image_id:05d}.jpg", label))
        return records, names
