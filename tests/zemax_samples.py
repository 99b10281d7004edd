"""Zemax files written for the lens-reader tests: the Cooke triplet of lenses/cooke_triplet.json
(f = 50 mm, f/5, SK16 / F2 / SK16) as OpticStudio writes a .zmx, and edits of it, one per kind of file
users bring (see issue 19). Nothing here is taken from another project's files.
"""

from __future__ import annotations

from pathlib import Path

TRIPLET = """\
VERS 190513 80 123457 L123457
MODE SEQ
NAME Cooke triplet, f = 50 mm, f/5 (written for the tests)
PFIL 0 0 0
UNIT MM X W X CM MR CPMM
ENPD 10
ENVD 2.0E+1 1 0
GCAT SCHOTT
FTYP 0 0 3 3 0 0 0
XFLN 0 0 0 0 0 0 0 0 0 0 0 0
YFLN 0 14 20 0 0 0 0 0 0 0 0 0
FWGN 1 1 1 1 1 1 1 1 1 1 1 1
WAVM 1 0.4861327 1
WAVM 2 0.5875618 1
WAVM 3 0.6562725 1
WAVM 4 0.55 1
WAVM 5 0.55 1
PWAV 2
SURF 0
  TYPE STANDARD
  CURV 0.0 0 0 0 0 ""
  DISZ INFINITY
SURF 1
  TYPE STANDARD
  CURV 4.542664E-02 0 0 0 0 ""
  DISZ 3.25896
  GLAS SK16 0 0 1.62041 60.32 0 0 0 0 0 0
  DIAM 7.6 1 0 0 1 ""
SURF 2
  TYPE STANDARD
  CURV -2.294842E-03 0 0 0 0 ""
  DISZ 6.007551
  DIAM 7.6 1 0 0 1 ""
SURF 3
  TYPE STANDARD
  CURV -4.501811E-02 0 0 0 0 ""
  DISZ 0.99997
  GLAS F2 0 0 1.62004 36.37 0 0 0 0 0 0
  DIAM 5.2 1 0 0 1 ""
SURF 4
  TYPE STANDARD
  CURV 4.928063E-02 0 0 0 0 ""
  DISZ 1.0
  DIAM 5.2 1 0 0 1 ""
SURF 5
  STOP
  TYPE STANDARD
  CURV 0.0 0 0 0 0 ""
  DISZ 3.750409
  DIAM 3.93 1 0 0 1 ""
SURF 6
  TYPE STANDARD
  CURV 1.254965E-02 0 0 0 0 ""
  DISZ 2.952076
  GLAS SK16 0 0 1.62041 60.32 0 0 0 0 0 0
  DIAM 7.0 1 0 0 1 ""
SURF 7
  TYPE STANDARD
  CURV -5.441199E-02 0 0 0 0 ""
  DISZ 42.20778
  DIAM 7.0 1 0 0 1 ""
SURF 8
  TYPE STANDARD
  CURV 0.0 0 0 0 0 ""
  DISZ 0
  DIAM 18.0 0 0 0 1 ""
TOL TOFF   0   0              0              0   0 0 0
MNUM 1 1
"""


def edited(old: str, new: str, text: str = TRIPLET) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    return path
