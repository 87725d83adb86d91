"""Dataset loaders, one module per on-disk format; importing this package registers them all."""

from datasets import digits  # noqa: F401  (registers)
from datasets.base import DATASETS, DatasetLoader, Record, build_dataset

__all__ = ["DATASETS", "DatasetLoader", "Record", "build_dataset"]
