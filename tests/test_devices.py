"""Where training traces and trains: CUDA when torch sees a GPU, the CPU otherwise (the choice itself is
tested here, with torch's answer to "is there a GPU" swapped; no GPU is needed)."""

from __future__ import annotations

import pytest
import torch

from training.config import ConfigError, load_config
from training.raytrace import LensTracer, pick_device


@pytest.mark.parametrize(("requested", "gpu", "expected"), [
    ("auto", True, "cuda"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("cpu", False, "cpu"), ("cuda", True, "cuda"),
])
def test_the_device_follows_the_request_and_the_machine(monkeypatch, requested, gpu, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert pick_device(requested) == expected


def test_asking_for_cuda_without_a_gpu_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="data.trace_device = 'cuda', but torch sees no CUDA GPU"):
        pick_device("cuda")


def test_the_tracer_of_a_run_opens_the_lens_on_the_chosen_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    tracer = LensTracer.for_run(load_config("configs/ci.yml"))
    assert tracer.device == "cpu" and str(tracer.lens.device) == "cpu"
    assert tracer.points([0.5], [5.0]).device.type == "cpu"


def test_a_bad_trace_device_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"data.trace_device: .*'auto', 'cpu' or 'cuda'.*'tpu'"):
        load_config("configs/ci.yml", ["data.trace_device=tpu"])
