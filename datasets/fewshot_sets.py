"""The 10-shot targets of CDC (Ojha et al. 2021) and AdAM / RICK (Zhao et al. 2022, 2023), as named data sets.

Each is one class in two splits: ``train``, the 10 images the papers adapt to, and ``full``, the
whole set their FID is computed against, where one was released (Babies, Sunglasses and Sketches
from CDC; AFHQ and MetFaces from their own releases). The 10 training images are part of that
reference set (../shared/PROTOCOLS.md, "CDC 2021"), so a suite writes ``split: train`` and
``eval_split: full``; without a full set, FID is only against the 10 images and these targets are
scored by intra-cluster LPIPS in the papers.

The data root holds ``train/`` and ``full/``, each a folder of images (at any depth, so an
archive extracted as it is works) or an LMDB folder written by ``prepare_data.py`` (the CDC
README's "processed" downloads). The root may also be a folder holding ``<name>/train`` and so on
for several sets, as one ``--data-root`` serves a whole suite. The links below are the ones the
official READMEs give (github.com/utkarshojha/few-shot-gan-adaptation, github.com/yunqing-me/AdAM);
none is downloaded by this code.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets.base import DATASETS, Record
from datasets.folder import ImageFolderLoader

CDC = "CDC's README (github.com/utkarshojha/few-shot-gan-adaptation)"
ADAM = "AdAM's README (github.com/yunqing-me/AdAM)"
ADAM_TARGETS = "https://drive.google.com/drive/folders/10skBzKjr8jJbWvTXKgA0yj-gT-aojRIE"  # "Target Samples"


def drive(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}/view"


@dataclass(frozen=True)
class FewShotSet:
    """One published 10-shot target.

    Args:
        name: the data set's registered name.
        title: as the papers name it.
        source: the source GAN the papers adapt from.
        train: where the 10 images come from (links as the official README gives them).
        full: where the whole set for FID comes from; None when none was released.
        full_size: its size, as the papers or releases state it.
    """

    name: str
    title: str
    source: str
    train: str
    full: str | None = None
    full_size: str = ""


def _cdc(images: str, processed: str) -> str:
    if images == processed:
        return f"{CDC}: images {drive(images)} (its 'images' and 'processed' links are the same file)"
    return f"{CDC}: images {drive(images)}, or as an LMDB ('processed') {drive(processed)}"


SETS = (
    FewShotSet(
        "babies",
        "Babies",
        "FFHQ",
        f"{_cdc('1JygAunIzpMyRA9kPXobWSuwzVw7oOHU6', '1YjL9X5IbGVKinpqcL8o-H69g4skmOIfV')}; "
        f"{ADAM}: {drive('1P8JMLq2Kk61MbEZDgwytqXxfrhG-NqcR')}",
        f"{CDC} 'test set' {drive('1JmjKBq_wylJmpCQ2OWNMy211NFJhHHID')}; "
        f"{ADAM} 'entire' set {drive('1xBpBRmPRoVXsWerv_zx4kQ4nDQUOsqu_')}",
        "~2.7k images",
    ),
    FewShotSet(
        "sunglasses",
        "Sunglasses",
        "FFHQ",
        _cdc("1sKPDlARZeWaHBJ3t3IIrSp295J_ct1cC", "1sKPDlARZeWaHBJ3t3IIrSp295J_ct1cC"),
        f"{CDC} 'test set' {drive('1Uu5y_y8Rjxbj2VEzvT3aBHyn4pltFgyX')}",
        "~2.5k images",
    ),
    FewShotSet(
        "sketches",
        "Sketches",
        "FFHQ",
        _cdc("1hC5mYgaamaLU9Jyi-WKtK1MoLhyc26kD", "1fe9VVAv2yTP2WMrXLBZXxZUAEfUXzQOK"),
        f"{CDC} 'test set' {drive('1vgsB7ji-cLVzRhx43DvNSDgV5Up3jFJ2')}",
    ),
    FewShotSet(
        "amedeo",
        "Amedeo Modigliani's paintings",
        "FFHQ",
        _cdc("1D5X2hr7Z6EnY9HoxaGJb_vEvDVpSzjbz", "1y7wZ4BxqmCnBM9DqS1gBnkPawttWdcJ_"),
    ),
    FewShotSet(
        "raphael",
        "Raphael's paintings (CDC's README: Rafael)",
        "FFHQ",
        _cdc("1EyRl-kR51ijOeGLR3ooc4t7iXlzW_VEc", "1NP44jz9zRPiWegFNY3KieaKYftxgmC-r"),
    ),
    FewShotSet(
        "otto",
        "Otto Dix's paintings",
        "FFHQ",
        _cdc("1O7sizhlHPfeAYVT84gACgPNrD7tdk0Y_", "1O7sizhlHPfeAYVT84gACgPNrD7tdk0Y_"),
    ),
    FewShotSet(
        "haunted",
        "Haunted houses",
        "LSUN Church",
        _cdc("1dbW-HTDT82t0ORkA0vlHcOX6dCyccqgu", "1K1s7Mi8D-k7U-W6BQ7f02TpA14OPnEDl"),
    ),
    FewShotSet(
        "van_gogh",
        "Van Gogh houses",
        "LSUN Church",
        _cdc("1k5x76NvJRFd-XDSoZTDRtL_IdWD8_VKK", "1wJMwtMifGMDI8Io5tCeXhjiuYjOFhhD7"),
    ),
    FewShotSet(
        "landscapes",
        "Landscapes",
        "LSUN Church",
        _cdc("1zYw3iTc2NM6LStHpM8sscq24EDwNkEsy", "1VBuh37h6Og5Qr_T3EvEYJYtH5pwTbE0B"),
    ),
    FewShotSet(
        "wrecked_cars",
        "Wrecked cars",
        "LSUN Cars",
        _cdc("1IBv1cwPaCFDUDvn9fo8KoCSaZ3s6bsFX", "1KJXoXk_7qdJookTeqqpHiWrDTtR2EKLL"),
    ),
    FewShotSet(
        "maps",
        "Google Maps",
        "hand gestures (CDC's own source)",
        _cdc("1qwVK2i7F7N4DJP3UdT-qkM7eTDmD7EJH", "1jDWaIuOfxk21ReD1UFY5zcXLB1XW-K9a"),
    ),
    FewShotSet(
        "metfaces",
        "MetFaces",
        "FFHQ",
        f"{ADAM}, 'Target Samples' folder {ADAM_TARGETS}",
        "the MetFaces release's images/ (https://github.com/NVlabs/metfaces-dataset); AdAM's README links "
        "no full set, so which copy AdAM and RICK scored against is not stated",
        "1,336 images",
    ),
    FewShotSet(
        "afhq_cat",
        "AFHQ-Cat",
        "FFHQ",
        f"{ADAM}: {drive('1zgacEE0jiiDxttbK81fk6miY_4Ithhw-')}",
        f"{ADAM} 'entire' set {drive('1_-cDkzqz3LlotXSYMBXZLterSQe4fR7S')}",
    ),
    FewShotSet(
        "afhq_dog",
        "AFHQ-Dog",
        "FFHQ",
        f"{ADAM}, 'Target Samples' folder {ADAM_TARGETS}",
        "AFHQ's dog images (the 'afhq' data set: https://github.com/clovaai/stargan-v2); AdAM's README links "
        "no full set for this target, so which split was scored against is not stated",
    ),
    FewShotSet(
        "afhq_wild",
        "AFHQ-Wild",
        "FFHQ",
        f"{ADAM}, 'Target Samples' folder {ADAM_TARGETS}",
        "AFHQ's wild images (the 'afhq' data set: https://github.com/clovaai/stargan-v2); AdAM's README links "
        "no full set for this target, so which split was scored against is not stated",
    ),
)

PART = "a folder of images or an LMDB from prepare_data.py"


class NamedFewShotSet(ImageFolderLoader):
    """A published 10-shot target: split ``train`` (its 10 images) and, where released, ``full`` (its FID set).

    Args:
        root: the set's folder (holding ``train/`` and ``full/``), or a folder holding it as ``<name>/``.
        size: for an LMDB, the stored size to read (default: the largest).
    """

    spec: FewShotSet
    marker = "train"

    def __init__(self, root, split: str = "train", classes=None, size: int | None = None):
        super().__init__(root, split, classes)
        self.size = size

    def holds_split(self, split: str) -> bool:
        """The full set holds copies of the 10 training images (the papers score against both together)."""
        return self.split == "full" and split == "train"

    def load_all(self) -> tuple[list[Record], list[str]]:
        from datasets.annotations import require

        self._reset_listing()
        part = require(self, self.split)
        records = [Record(p, 0) for p in self._read_class(part, f"{self.split}/")]
        if not records:
            raise self._no_images(part)
        return records, [self.name]


def _loader(spec: FewShotSet) -> type[NamedFewShotSet]:
    paper = "AdAM 2022, RICK 2023" if spec.name.startswith(("afhq", "metfaces")) else "CDC 2021"
    if spec.full:
        size = f", {spec.full_size}" if spec.full_size else ""
        parts = f"train/ = the 10 images, full/ = the FID set{size}, holding the 10; each {PART}"
    else:
        parts = f"train/ = the 10 images, {PART}; no full set was released (intra-LPIPS only)"
    homepage = f"10 images: {spec.train}" + (f"; full set: {spec.full}" if spec.full else "")
    attrs = {
        "__doc__": f"{spec.title}, 10-shot (source: {spec.source}). {NamedFewShotSet.__doc__}",
        "spec": spec,
        "name": spec.name,
        "layout": f"{spec.title}, 10-shot ({paper}; {spec.source} source): {parts}",
        "homepage": homepage,
        "splits": ("train", "full") if spec.full else ("train",),
        "subfolders": (spec.name,),
    }
    return DATASETS.register()(type(f"FewShot_{spec.name}", (NamedFewShotSet,), attrs))


LOADERS = {spec.name: _loader(spec) for spec in SETS}
