"""The reconstruction-loss spec string, e.g. ``1*L1+1e3*MSE``: parsed and checked without torch (the
config checks it; training/losses.py computes the terms)."""

from __future__ import annotations

import re

TERM_NAMES = ("L1", "MSE", "CE")
_TERM_RE = re.compile(r"^\s*(?:([0-9.eE+-]+)\s*\*\s*)?([A-Za-z0-9_]+)\s*$")


def parse_loss(spec: str) -> list[tuple[float, str]]:
    """'1*L1+1e3*MSE' -> [(1.0, 'L1'), (1000.0, 'MSE')]; raises ValueError naming the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("loss spec is empty; write e.g. '1*L1+1e3*MSE'")
    # split on '+' that is not part of an exponent such as 1e+3 (a '+' after the E of "CE" splits)
    parts = re.split(r"(?<![0-9.][eE])\+", spec)
    terms = []
    for part in parts:
        match = _TERM_RE.match(part)
        if not match:
            raise ValueError(f"cannot read loss term {part.strip()!r} in {spec!r}; write WEIGHT*NAME, e.g. 1e3*MSE")
        weight_text, name = match.groups()
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(f"loss term {part.strip()!r}: {weight_text!r} is not a number") from None
        if name not in TERM_NAMES:
            raise ValueError(f"loss term {name!r} is unknown; known: {', '.join(TERM_NAMES)}")
        if weight < 0:
            raise ValueError(f"loss term {part.strip()!r}: weights must be >= 0")
        terms.append((weight, name))
    return terms
