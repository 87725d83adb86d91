"""Stanford Dogs (Khosla et al. 2011): 20,580 ImageNet images of 120 breeds, with boxes around the dogs.

torchvision has no class for it. The split lists are MATLAB files (file_list, annotation_list,
labels), the boxes PASCAL VOC XML files without an extension. An image with several dogs has
several boxes; the record keeps the largest, the dog the image is most about. VOC coordinates are
1-based inclusive, stored as (xmin - 1, ymin - 1, xmax, ymax) like the other loaders' boxes.
"""

from __future__ import annotations

from benchmark.errors import BenchmarkError
from datasets.annotations import first_existing, integers, malformed, read_mat, require, vector, voc_boxes, voc_size
from datasets.base import DATASETS, DatasetLoader, Record
from datasets.folders import class_folders

_LISTS = {"train": ("train_list.mat",), "test": ("test_list.mat",), "all": ("train_list.mat", "test_list.mat")}


@DATASETS.register()
class StanfordDogs(DatasetLoader):
    """The official train (12,000, 100 per breed) and test (8,580) splits, or both ("all").

    Per-class counts: the train list holds exactly 100 images of each breed (lists/train_list.mat;
    Khosla et al. 2011 train on 100 per category); the others go to the test list.

    Class names are the breeds of the ``Images/<wnid>-<breed>`` folders in sorted order, which is
    the order of the lists' 1-based labels (checked for every record).
    """

    name = "stanford_dogs"
    layout = (
        "Images/<wnid>-<breed>/*.jpg, Annotation/<wnid>-<breed>/<image name> (VOC XML), "
        "lists/train_list.mat and lists/test_list.mat (images.tar, annotation.tar and lists.tar extracted together)"
    )
    homepage = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
    splits = ("train", "test", "all")
    smallest_class = {"train": 100}
    marker = "Images"
    subfolders = ("stanford_dogs", "StanfordDogs")
    look_alikes = (("images/Images", "Kaggle's copy (images/Images/ and annotations/Annotation/, without lists/)"),)
    has_bboxes = True

    def load_all(self) -> tuple[list[Record], list[str]]:
        images = require(self, "Images")
        folders = class_folders(images)
        if not folders:
            raise BenchmarkError(
                f"{self.name}: no breed folders in {images} (an empty or unfinished extraction). {self.where_to_get()}"
            )
        self.class_dirs = {f.split("-", 1)[-1]: images / f for f in folders}
        require(self, "Annotation")
        records: list[Record] = []
        for list_name in _LISTS[self.split]:
            records += self._list_records(list_name, folders)
        return records, [f.split("-", 1)[-1] for f in folders]

    def _list_records(self, list_name: str, folders: list[str]) -> list[Record]:
        path = first_existing(self, [f"lists/{list_name}", list_name])
        mat = read_mat(self, path.relative_to(self.root), ["file_list", "annotation_list", "labels"])
        files = vector(self, path, "file_list", mat["file_list"])
        annotations = vector(self, path, "annotation_list", mat["annotation_list"])
        labels = integers(self, path, "labels", mat["labels"])
        if not len(files) == len(annotations) == len(labels):
            raise malformed(self, path, "file_list, annotation_list and labels differ in length")
        records = []
        for file, annotation, label in zip(files, annotations, labels):
            file, index = str(file), label - 1
            if not 0 <= index < len(folders) or folders[index] != file.split("/", 1)[0]:
                raise malformed(self, path, f"label {index + 1} of {file} does not match the Images/ folder order")
            records.append(Record(f"Images/{file}", index, *self._box(f"Annotation/{annotation}")))
        return records

    def _box(self, relpath: str) -> tuple[tuple[float, float, float, float] | None, tuple[int, int] | None]:
        """The largest box of an annotation file and the image size it declares (None, None without one)."""
        path = self.root / relpath
        if not path.is_file():
            return None, None  # the image stays usable; crop="bbox" centre-crops it and inspect-data reports it
        boxes = voc_boxes(self, path)
        if not boxes:
            return None, None
        x0, y0, x1, y1 = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        return (x0 - 1, y0 - 1, x1, y1), voc_size(path)
