"""Lens prescription files: the seam every lens reader sits behind (see ``training.lens_formats``).

Kept as the name the rest of training imports: a lens file is checked before DeepLens sees it, so a
user's lens fails with a message that names the file, the surface and what is supported, not with a
trace from inside the ray tracer.
"""

from __future__ import annotations

from .lens_formats import (
    FORMATS,
    LensDescription,
    LensFileError,
    LensMismatchError,
    check_lens_file,
    read_lens,
    require_pixel_grid,
)

__all__ = ["FORMATS", "LensDescription", "LensFileError", "LensMismatchError", "check_lens_file", "read_lens",
           "require_pixel_grid"]
