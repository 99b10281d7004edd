"""HTTP service answering PSF queries from the model store (FastAPI + onnxruntime, no torch)."""
