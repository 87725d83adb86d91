"""Few-shot subsets drawn by (shots per class, seed) and written as a manifest of file names.

A manifest is plain JSON listing the chosen images per class, so a split is reproducible from
its seed, inspectable by eye, and identical for every method of a suite at that seed. Each
class draws from its own generator seeded by (seed, class index), so adding a class to a target
leaves the other classes' picks unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmark.errors import BenchmarkError
from benchmark.io import write_json
from datasets.preprocess import PreparedImages


def few_shot_manifest(prepared: PreparedImages, shots: int | None, seed: int, dataset: str = "") -> dict:
    """Pick ``shots`` images per class (all of them when ``shots`` is None).

    Args:
        prepared: the full target split (only readable images, so a pick is never a corrupt file).
        shots: images per class; a class with fewer images is an error naming it.
        seed: the split seed.
    """
    labels = prepared.labels.numpy()
    files: dict[str, list[str]] = {}
    for index, name in enumerate(prepared.class_names):
        members = sorted(prepared.paths[i] for i in np.flatnonzero(labels == index))
        if shots is not None:
            if len(members) < shots:
                raise BenchmarkError(
                    f"{dataset or 'target'}: class {name!r} has {len(members)} images, "
                    f"fewer than the {shots} shots asked"
                )
            order = np.random.default_rng([seed, index]).permutation(len(members))[:shots]
            members = [members[i] for i in sorted(order)]
        files[name] = members
    return {
        "dataset": dataset,
        "shots_per_class": shots,
        "seed": seed,
        "classes": list(prepared.class_names),
        "files": files,
    }


def manifest_indices(prepared: PreparedImages, manifest: dict) -> list[int]:
    """Indices into ``prepared`` of the manifest's files, in manifest order."""
    position = {path: i for i, path in enumerate(prepared.paths)}
    try:
        return [position[path] for name in manifest["classes"] for path in manifest["files"][name]]
    except KeyError as err:
        raise BenchmarkError(f"few-shot manifest names {err} which is not in the prepared dataset") from None


def write_manifest(manifest: dict, path: str | Path) -> Path:
    return write_json(manifest, path)


def read_manifest(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
