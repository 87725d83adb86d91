"""Finding a pretrained network's weights file: an option, else an environment variable, else a default place.

Nothing is downloaded at run time (a benchmark machine may have no network, and a silent download
hides which file a number came from); a missing file is a BenchmarkError that says where to put it
and where it comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.errors import BenchmarkError


def find_weights_file(
    option: str | os.PathLike | None, env_var: str, default: Path, filename: str, what: str, url: str
) -> Path:
    """The weights file to load.

    Args:
        option: the extractor's ``path`` option (a file, or a folder holding ``filename``); wins when set.
        env_var: the environment variable consulted next (same file-or-folder rule).
        default: where the file is looked for last (the place its own library downloads it to).
        filename: the file's canonical name.
        what: a short description for the error ("clean-fid's Inception").
        url: where the file comes from.
    """
    if option:
        source, candidate = "the 'path' option", Path(option)
    elif os.environ.get(env_var):
        source, candidate = f"${env_var}", Path(os.environ[env_var])
    else:
        source, candidate = "the default location", default
    candidate = candidate.expanduser()
    if candidate.is_dir():
        candidate = candidate / filename
    if candidate.is_file():
        return candidate
    raise BenchmarkError(
        f"{what}: no weights file at {candidate} ({source}); download {url} and put it there, "
        f"or point ${env_var} (or the feature extractor's 'path' option) at it; the default location is {default} "
        f"(see docs/pretrained_files.md)"
    )
