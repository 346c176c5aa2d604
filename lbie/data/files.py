"""Reading the files of the real data sets: the error that names a malformed file, and image reading
(shared by :mod:`lbie.data.edit_formats`, :mod:`lbie.data.referring` and :mod:`lbie.data.flowers`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def bad_file(path, problem: str) -> ValueError:
    """The error a reader raises for a malformed file: ``ValueError("<path>: <problem>")``."""
    return ValueError(f"{path}: {problem}")


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; a :func:`bad_file` error when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:
        raise bad_file(path, f"unreadable image ({type(e).__name__}: {e})") from e
