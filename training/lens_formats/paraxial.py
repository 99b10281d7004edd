"""First-order (paraxial) optics of a prescription, independent of DeepLens.

The y-nu trace (W. Smith, Modern Optical Engineering): at a surface of curvature c between indices n
and n', the reduced slope w = n u becomes w' = w - y c (n' - n), and the height after a gap t is
y + t w' / n'. Rays start in air in front of the first surface (z = 0). This is how the reader turns
the file's system data into what DeepLens needs (the stop's semi-diameter from ENPD / FNUM, the image
height from field angles, semi-diameters the file leaves out), and it gives the file's own focal
length, against which the traced lens is checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Element:
    c: float        # curvature [1/mm]
    d_next: float   # gap to the next surface (the last one: to the file's image plane) [mm]
    n: float        # index after the surface


@dataclass(frozen=True)
class Ray:
    heights: list[float]   # at each surface
    y: float               # at the last surface
    u: float               # slope after the last surface


def trace(elements: list[Element], y: float, u: float) -> Ray:
    """A paraxial ray that meets the first surface at height y with slope u (in air)."""
    n, w, heights = 1.0, u, []
    for i, e in enumerate(elements):
        heights.append(y)
        w = w - y * e.c * (e.n - n)
        n = e.n
        if i < len(elements) - 1:
            y = y + e.d_next * w / n
    return Ray(heights, y, w / n)


def focal_length(elements: list[Element]) -> float:
    """Effective focal length [mm] (image space in air); inf for an afocal system."""
    u = trace(elements, 1.0, 0.0).u
    return math.inf if u == 0 else -1.0 / u


@dataclass(frozen=True)
class Pupil:
    """Heights at the stop per unit ray: a (parallel ray of unit height) and b (unit slope through the
    vertex of the first surface). The entrance pupil lies at z = b / a with radius r_stop / |a|."""

    a: float
    b: float

    @property
    def z(self) -> float:
        return self.b / self.a


def pupil(elements: list[Element], stop: int) -> Pupil:
    return Pupil(trace(elements, 1.0, 0.0).heights[stop], trace(elements, 0.0, 1.0).heights[stop])


def marginal_ray(elements: list[Element], entrance_radius: float, object_distance: float | None, p: Pupil) -> Ray:
    """The ray from the axial object point through the edge of the entrance pupil."""
    if object_distance is None:
        return trace(elements, entrance_radius, 0.0)
    u = entrance_radius / (object_distance + p.z)
    return trace(elements, u * object_distance, u)


def chief_ray(elements: list[Element], slope: float, p: Pupil) -> Ray:
    """The ray through the centre of the entrance pupil (so the centre of the stop) with this slope."""
    return trace(elements, -slope * p.z, slope)


def image_gap(ray: Ray) -> float:
    """Distance from the last surface to where the marginal ``ray`` crosses the axis (the paraxial image)."""
    return math.inf if ray.u == 0 else -ray.y / ray.u


def height_at(ray: Ray, gap: float) -> float:
    return ray.y + gap * ray.u
