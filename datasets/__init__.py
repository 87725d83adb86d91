"""Dataset loaders, one module per on-disk format; importing this package registers them all."""

from datasets import (  # noqa: F401  (registers)
    afhq,
    caltech256,
    cub,
    digits,
    fewshot_sets,
    flowers102,
    folder,
    insect30,
    lmdb_images,
    mnist,
    mnist5k,
    places365,
    stanford_cars,
    stanford_dogs,
)
from datasets.base import DATASETS, DatasetLoader, Record, build_dataset

__all__ = ["DATASETS", "DatasetLoader", "Record", "build_dataset"]
