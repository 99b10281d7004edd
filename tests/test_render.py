"""Rendering with PSF grids: orientation, blend, energy, seams, colour, resampling, backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clients import LocalPSFModel, blur, fetch_psf_grid, linear_to_srgb, render, resample_kernels, srgb_to_linear
from clients._render._weights import tent_weights

RNG = np.random.default_rng(7)


def gaussian(k: int, sigma: float) -> np.ndarray:
    r = np.arange(k) - k // 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def scatter_reference(image: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per source pixel: blend the grid kernels bilinearly, then splat (kernel index k//2 = no shift)."""
    height, width = image.shape
    ny, nx, k, _ = grid.shape
    wy, wx = tent_weights(height, ny), tent_weights(width, nx)
    out = np.zeros((height + 2 * k, width + 2 * k))
    for r in range(height):
        for c in range(width):
            kernel = np.einsum("j,i,jiab->ab", wy[:, r], wx[:, c], grid)
            top, left = r + k - k // 2, c + k - k // 2
            out[top:top + k, left:left + k] += image[r, c] * kernel
    return out[k:k + height, k:k + width]


@pytest.mark.parametrize("k", [5, 6])
def test_blur_is_a_scatter_with_bilinearly_blended_kernels(k: int) -> None:
    image = RNG.random((19, 27)).astype(np.float32)
    grid = RNG.random((3, 4, k, k)).astype(np.float32)
    out = blur(image, grid, padding="zero")
    np.testing.assert_allclose(out, scatter_reference(image, grid), atol=2e-6)


def test_an_asymmetric_psf_moves_light_right_and_up() -> None:
    k = 9
    kernel = np.zeros((k, k), dtype=np.float32)
    kernel[k // 2 - 2, k // 2 + 3] = 1.0  # row 0 is +y: two rows above centre, three columns right
    image = np.zeros((30, 40), dtype=np.float32)
    image[15, 10] = 1.0
    out = blur(image, kernel[None, None], padding="zero")
    assert np.unravel_index(np.argmax(out), out.shape) == (13, 13)
    assert out[13, 13] == pytest.approx(1.0, abs=1e-6)


def test_energy_is_conserved() -> None:
    grid = np.stack([np.stack([gaussian(11, s) for s in (0.8, 1.5, 2.5)]) for _ in range(2)])  # [2, 3, 11, 11]
    image = np.zeros((40, 60), dtype=np.float32)
    image[12:28, 15:45] = RNG.random((16, 30))
    out = blur(image, grid, padding="zero")
    assert out.sum() == pytest.approx(image.sum(), rel=1e-5)  # nothing leaves the frame, nothing is made
    assert out.min() >= -1e-6


def test_a_flat_image_stays_flat_with_the_models_psfs(trained_store: Path) -> None:
    model = LocalPSFModel.from_store(trained_store, "ci")
    flat = np.full((450, 600, 3), 0.4, dtype=np.float32)  # a quarter of the sensor's resolution
    out = render(flat, model, depth=3.0, grid=(8, 6), srgb=False, distortion=False, illumination=False)
    assert out.shape == flat.shape and out.dtype == np.float32
    # PSFs centred on the chief ray whose coma changes across the field move a little light sideways;
    # on the real sensor geometry that is well under 1 %
    deviation = np.abs(out[10:-10, 10:-10] - 0.4).max() / 0.4
    assert deviation < 0.01, f"flat image deviates by {deviation:.2%}"
    # shaded, the flat field falls off as the served relative illumination (sensor pixels 4x the image's)
    shaded = render(flat, model, depth=3.0, grid=(8, 6), srgb=False, distortion=False)
    for row, col in ((225, 300), (20, 20), (430, 580)):
        light = model.geometry(px=4 * col + 1.5, py=4 * row + 1.5, depth=3.0, wavelength=550.0).illumination[0]
        assert shaded[row, col, 1] / out[row, col, 1] == pytest.approx(light, rel=0.01)


def test_the_blend_has_no_seams_where_tiles_meet() -> None:
    """Stripes blurred by a grid whose blur grows to the right: their contrast must fade smoothly."""
    sigmas = (0.6, 1.2, 1.8, 2.4)
    grid = np.stack([gaussian(15, s) for s in sigmas])[None]  # [1, 4, k, k]
    rows = np.arange(48)[:, None]
    image = np.repeat(0.5 + 0.5 * np.sin(2 * np.pi * rows / 6), 160, axis=1).astype(np.float32)

    def steps(out: np.ndarray) -> tuple[float, float]:
        contrast = out[12:-12].std(axis=0)[10:-10]
        return float(np.abs(np.diff(contrast)).max()), float(contrast.max() - contrast.min())

    ours_step, ours_range = steps(blur(image, grid))
    # the same grid applied tile by tile (DeepLens's conv_psf_map): a seam at every tile border
    block = np.concatenate([blur(image[:, 40 * i:40 * i + 40], grid[:, i:i + 1]) for i in range(4)], axis=1)
    block_step, block_range = steps(block)
    assert block_step > 0.2 * block_range, "the seam detector does not see the seams of block rendering"
    assert ours_step < 0.03 * ours_range, f"a jump of {ours_step / ours_range:.0%} of the contrast range"


def test_a_uniform_grid_is_a_plain_convolution() -> None:
    kernel = RNG.random((7, 7)).astype(np.float32)
    image = RNG.random((33, 45, 2)).astype(np.float32)
    tiled = blur(image, np.broadcast_to(kernel, (5, 3, 7, 7)), padding="zero")
    single = blur(image, kernel[None, None], padding="zero")
    np.testing.assert_allclose(tiled, single, rtol=2e-6, atol=2e-6)


def test_torch_backend_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    image = RNG.random((30, 50, 3)).astype(np.float32)
    grid = RNG.random((2, 3, 3, 8, 8)).astype(np.float32)
    expected = blur(image, grid)
    np.testing.assert_allclose(blur(image, grid, backend="torch"), expected, rtol=2e-6, atol=2e-6)
    tensor_out = blur(torch.from_numpy(image), grid)
    assert isinstance(tensor_out, torch.Tensor) and tuple(tensor_out.shape) == image.shape
    np.testing.assert_allclose(tensor_out.numpy(), expected, rtol=2e-6, atol=2e-6)


def test_srgb_transfer_functions() -> None:
    values = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=2e-6)
    assert float(srgb_to_linear(np.float32(0.5))) == pytest.approx(0.21404, abs=1e-4)
    assert float(linear_to_srgb(np.float32(0.0031308 / 2))) == pytest.approx(0.0031308 / 2 * 12.92, rel=1e-5)


def test_resampling_kernels_to_coarser_pixels() -> None:
    kernel = np.zeros((8, 8), dtype=np.float32)
    kernel[4, 4] = 0.5
    kernel[4, 5] = 0.5  # half the light one sensor pixel right of centre
    coarse = resample_kernels(kernel, 2.0)
    c = coarse.shape[0] // 2
    assert coarse.shape[0] % 2 == 1 and coarse.sum() == pytest.approx(1.0)
    # a 2x coarser pixel centred on the old centre spans offsets -1..+1: it holds 1/2 + 1/4 of the light
    assert coarse[c, c] == pytest.approx(0.75) and coarse[c, c + 1] == pytest.approx(0.25)
    same = resample_kernels(np.eye(5, dtype=np.float32) / 5, 1.0)
    c = same.shape[0] // 2
    np.testing.assert_allclose(same[c - 2:c + 3, c - 2:c + 3], np.eye(5) / 5, atol=1e-7)
    assert same.sum() == pytest.approx(1.0)


def test_spectra_average_grids_and_depth_maps_pick_layers(trained_store: Path) -> None:
    model = LocalPSFModel.from_store(trained_store, "ci")
    mixed = fetch_psf_grid(model, 2, 2, depth=5.0, wavelengths=[[(500.0, 1.0), (600.0, 3.0)]])
    expected = (0.25 * model.psf_grid(2, 2, depth=5.0, wavelength=500.0)
                + 0.75 * model.psf_grid(2, 2, depth=5.0, wavelength=600.0))
    assert mixed.shape == (2, 2, 1, 16, 16) and mixed.meta == model.meta
    np.testing.assert_allclose(mixed[:, :, 0], expected, atol=1e-7)

    image = RNG.random((60, 80)).astype(np.float32)
    options = {"grid": (4, 3), "srgb": False, "pixel_pitch_um": 12.0, "wavelengths": [550.0]}
    flat = render(image, model, depth=3.0, **options)
    np.testing.assert_allclose(render(image, model, depth_map=np.full((60, 80), 3.0), **options), flat, atol=1e-6)
    near_far = np.where(np.arange(80)[None, :] < 40, 2.0, 50.0) * np.ones((60, 1))
    split = render(image, model, depth_map=near_far, layers=2, **options)
    np.testing.assert_allclose(split[:, :25], render(image, model, depth=2.0, **options)[:, :25], atol=1e-5)
    np.testing.assert_allclose(split[:, 55:], render(image, model, depth=50.0, **options)[:, 55:], atol=1e-5)


def test_render_refuses_an_async_source_with_a_way_out() -> None:
    from clients import AsyncPSFClient

    source = AsyncPSFClient("http://127.0.0.1:9")
    with pytest.raises(TypeError, match="blur"):
        render(np.zeros((8, 8, 3), dtype=np.float32), source, depth=5.0)


def einsum_resample_reference(psfs: np.ndarray, fx: float, fy: float, n: int) -> np.ndarray:
    """The area-weighted resampling written as one direct sum over every input pixel (float64)."""
    from clients._render._kernels import _overlap

    k = psfs.shape[-1]
    out = np.einsum("ar,...rc,bc->...ab", _overlap(k, n, fy), psfs.astype(np.float64), _overlap(k, n, fx))
    return out / out.sum(axis=(-2, -1), keepdims=True)


@pytest.mark.parametrize(("fx", "fy"), [(2.0, 2.0), (0.6, 0.48), (0.27, 0.3)])
def test_resampling_matches_the_direct_sum_and_is_square(fx: float, fy: float) -> None:
    from clients._render._kernels import RESAMPLE_CHUNK, resampled_size

    psfs = RNG.random((3, RESAMPLE_CHUNK // 2 + 1, 2, 12, 12)).astype(np.float32)  # more kernels than one chunk
    out = resample_kernels(psfs, fx, fy)
    n = max(resampled_size(12, fx), resampled_size(12, fy))
    assert out.shape == (*psfs.shape[:-2], n, n) and n % 2 == 1  # square even when the factors differ
    np.testing.assert_allclose(out, einsum_resample_reference(psfs, fx, fy, n), rtol=1e-5, atol=1e-8)
    image = RNG.random((40, 50)).astype(np.float32)
    blurred = blur(image, out[:2, :2, 0], padding="zero")  # blur takes what resampling gives
    assert blurred.shape == image.shape


BIG_RENDER = """
import resource, sys
import numpy as np
from clients import blur, resample_kernels
k_in, factor, backend = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
image = rng.random((1800, 2400, 3), dtype=np.float32)
grid = rng.random((12, 16, 3, k_in, k_in), dtype=np.float32)
kernels = resample_kernels(grid, factor)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = blur(image, kernels, backend=backend)
assert out.shape == image.shape and np.isfinite(out).all()
print(kernels.shape[-1], before * 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


@pytest.mark.slow  # 5-20 s: a full-size image
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_big_kernels_render_a_full_size_image_in_bounded_memory(backend: str) -> None:
    """2400 x 1800 RGB through a 16 x 12 grid of 32 px kernels resampled onto pixels 4x finer (137 px)."""
    import subprocess
    import sys

    if backend == "torch":
        pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-c", BIG_RENDER, "32", "0.25", backend], capture_output=True, text=True,
                          timeout=600, check=False, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    k, before, peak = (int(v) for v in proc.stdout.split())
    image_bytes = 1800 * 2400 * 3 * 4
    assert k >= 128, f"the resampled kernels are {k} px, not big"
    assert peak < 6 * 2**30, f"peak resident memory {peak / 2**30:.2f} GiB"
    # the blur's own working set: a few image-sized buffers, whatever the grid (not one per tile)
    assert peak - before < 24 * image_bytes, f"the blur added {(peak - before) / image_bytes:.1f} image sizes"
