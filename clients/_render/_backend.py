"""The few array operations the blur needs, for numpy (always) and torch (when installed).

The blur itself is written once against these; torch is imported only when a torch backend is asked
for or a torch tensor is passed in, so ``import clients`` never loads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._color import is_torch


class NumpyOps:
    name = "numpy"

    def array(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def pad(self, x: np.ndarray, before: int, after: int, mode: str) -> np.ndarray:
        edges = ((0, 0), (before, after), (before, after))
        return np.pad(x, edges, mode="reflect" if mode == "reflect" else "constant")

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.float32)

    def rfft2(self, x: np.ndarray, s: tuple[int, int]) -> np.ndarray:
        return np.fft.rfft2(x, s=s)

    def irfft2(self, x: np.ndarray, s: tuple[int, int]) -> np.ndarray:
        return np.fft.irfft2(x, s=s)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return x


class TorchOps:
    name = "torch"

    def __init__(self, device: Any = None) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F, self.device = torch, F, device

    def array(self, x: Any) -> Any:
        return self.torch.as_tensor(x, dtype=self.torch.float32, device=self.device)

    def pad(self, x: Any, before: int, after: int, mode: str) -> Any:
        edges = (before, after, before, after)
        return self.F.pad(x[None], edges, mode="reflect" if mode == "reflect" else "constant")[0]

    def zeros(self, shape: tuple[int, ...]) -> Any:
        return self.torch.zeros(shape, dtype=self.torch.float32, device=self.device)

    def rfft2(self, x: Any, s: tuple[int, int]) -> Any:
        return self.torch.fft.rfft2(x, s=s)

    def irfft2(self, x: Any, s: tuple[int, int]) -> Any:
        return self.torch.fft.irfft2(x, s=s)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()


def ops_for(image: Any, backend: str | None) -> NumpyOps | TorchOps:
    """``backend`` "numpy" or "torch"; None picks torch for torch tensors, numpy for anything else."""
    if backend is None:
        backend = "torch" if is_torch(image) else "numpy"
    if backend == "numpy":
        return NumpyOps()
    if backend == "torch":
        try:
            return TorchOps(image.device if is_torch(image) else None)
        except ImportError as exc:
            raise ImportError("backend='torch' needs torch (pip install torch); 'numpy' needs nothing") from exc
    raise ValueError(f"backend={backend!r} is not allowed: use 'numpy', 'torch' or None")
