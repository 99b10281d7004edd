"""The fields of a valid manifest, for tests that publish to a store without training."""

from __future__ import annotations

from datetime import UTC, datetime


def manifest_fields():
    return {
        "created": datetime.now(UTC),
        "lens": {"file": "lens.json", "sha256": "0" * 64, "focal_length_mm": 50.0, "f_number": 5.0,
                 "sensor_size_mm": [28.8, 21.6], "sensor_resolution": [2400, 1800], "pixel_pitch_um": 12.0,
                 "half_diagonal_mm": 18.0, "focus_m": 10.0},
        "conditions": [{"name": "field", "unit": "1", "min": 0, "max": 1},
                       {"name": "depth", "unit": "m", "min": 2, "max": 100},
                       {"name": "wavelength", "unit": "nm", "min": 450, "max": 650}],
        "kernel_size": 16, "latent_size": 4,
        "graphs": {role: {"file": f"{role}.onnx", "inputs": ["condition"], "outputs": ["psf"]}
                   for role in ("psf", "prior", "decoder", "encoder")},
        "training": {"steps": 1, "ray_traced_samples": 1, "spp": 1, "wall_time_s": 0.1, "config": {}},
    }
