"""AFHQ (Choi et al. 2020, StarGAN v2): 16,130 animal faces at 512 px in three classes.

The protocols name AFHQ v1 (``afhq.zip``: ``train/`` and ``val/``, JPEG). AFHQ v2 (``afhq_v2.zip``)
holds the same animals re-processed (PNG, a different resampling) split into ``train/`` and
``test/``; it is a different data set for FID, so a v2 copy passed where v1 is asked for is refused,
naming the version found, and read only when a target asks for it (``version: v2``). The
classes are fixed by the release (cat, dog, wild), so a missing class folder is reported as a
missing part of the layout rather than silently giving a two-class dataset.
"""

from __future__ import annotations

from benchmark.errors import BenchmarkError
from datasets.annotations import require
from datasets.base import DATASETS, DatasetLoader, Record
from datasets.folders import image_files

CLASSES = ("cat", "dog", "wild")
# Each version's held-out split folder and its images' file type, and how a copy of it is told apart.
VERSIONS = {
    "v1": ("val", (".jpg", ".jpeg"), "AFHQ v1 (train/ and val/ of JPEG images, afhq.zip)"),
    "v2": ("test", (".png",), "AFHQ v2 (train/ and test/ of PNG images, afhq_v2.zip)"),
}


@DATASETS.register()
class AFHQ(DatasetLoader):
    """The official train (14,630) and held-out (1,500: "val", in v2's test/ folder) splits, or both ("all");
    classes cat, dog, wild. Per-class counts (train): cat 5,153, dog 4,739, wild 4,738 (afhq.zip v1);
    held-out: 500 each.

    Args:
        version: "v1" (the protocols' release; held-out split "val") or "v2" (held-out split "test").
    """

    name = "afhq"
    layout = "train/{cat,dog,wild}/*.jpg and val/{cat,dog,wild}/*.jpg (afhq.zip v1 extracted)"
    homepage = "https://github.com/clovaai/stargan-v2#animal-faces-hq-dataset-afhq"
    splits = ("train", "val", "all")  # "val": the held-out split, val/ in v1 and test/ in v2
    smallest_class = {"train": 4738, "val": 500}
    marker = "train"
    subfolders = ("afhq", "afhq_v2")

    def __init__(self, root, split: str = "train", classes=None, version: str = "v1"):
        super().__init__(root, split=split, classes=classes)
        if version not in VERSIONS:
            raise BenchmarkError(f"{self.name}: unknown version {version!r}; choose one of {', '.join(VERSIONS)}")
        self.version = version

    def found_version(self) -> tuple[str, str] | None:
        """The version the files are (and the evidence), from the images' file type, else the split folders."""
        for version, (_, suffixes, _) in VERSIONS.items():
            for name in CLASSES:
                folder = self.root / "train" / name
                files = image_files(folder)[:20] if folder.is_dir() else []
                if files and all(f.lower().endswith(suffixes) for f in files):
                    return version, f"train/{name}/ holds {suffixes[0].lstrip('.').upper()} files"
        held = [v for v, (folder, _, _) in VERSIONS.items() if (self.root / folder).is_dir()]
        if len(held) == 1:
            return held[0], f"it has {VERSIONS[held[0]][0]}/"
        return None

    def check_release(self) -> None:
        found = self.found_version()
        if found is not None and found[0] != self.version:
            version, evidence = found
            raise BenchmarkError(
                f"{self.name}: {self.root} holds {VERSIONS[version][2]}: {evidence}; the suite asks for "
                f"{VERSIONS[self.version][2]}. Get {self.version} ({self.homepage}), or set the target's option "
                f"version: {version} to run on {version} (its numbers are not comparable with {self.version}'s)"
            )

    def load_all(self) -> tuple[list[Record], list[str]]:
        held_out = VERSIONS[self.version][0]
        records = []
        for split in ("train", held_out) if self.split == "all" else ("train" if self.split == "train" else held_out,):
            for label, name in enumerate(CLASSES):
                folder = require(self, f"{split}/{name}")
                self.class_dirs.setdefault(name, folder)
                records += [Record(f"{split}/{name}/{file}", label) for file in image_files(folder)]
        return records, list(CLASSES)
