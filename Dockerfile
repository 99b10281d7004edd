# The PSF server image: `python -m serving --host 0.0.0.0` on port 8000, as a non-root user, models
# read from the store volume /store (PSF_STORE).
#
#   docker build -t psf-surrogate .                                 # GPU: onnxruntime-gpu on CUDA 12 + cuDNN 9
#   docker build --build-arg EXTRA=serve -t psf-surrogate:cpu .     # CPU only (onnxruntime)
#   docker run --gpus all -p 8000:8000 -v "$PWD/store:/store:ro" psf-surrogate
#
# BASE may be any image with Python >= 3.12 and python3-venv, or a Debian/Ubuntu one without Python
# (then it is installed from the distribution). The GPU base is Ubuntu 24.04 (Python 3.12).
ARG BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE}

# which extra of pyproject.toml to install: gpu (onnxruntime-gpu) or serve (CPU)
ARG EXTRA=gpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Python (when the base lacks it), a virtual environment, and the user the server runs as
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv \
    && groupadd --system --gid 10001 psf \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/psf --create-home --shell /usr/sbin/nologin psf \
    && install -d -o psf -g psf /store /var/cache/psf

# Dependencies first, from pyproject.toml alone (no package folders yet), so a change of the
# source does not reinstall them. Package index settings may come in as build arguments and the
# index's CA file as the secret "pip-ca" (see tests/test_container.py).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
WORKDIR /src
COPY pyproject.toml README.md ./
# versions are bounded in pyproject.toml
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    pip install ".[${EXTRA}]"

# The source: only what serving needs (see .dockerignore; serving never imports training), without reinstalling dependencies
COPY models_store ./models_store
COPY serving ./serving
RUN --mount=type=cache,target=/root/.cache/pip --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    pip install --no-deps --force-reinstall . \
    && rm -rf /src/build /src/*.egg-info

ENV PSF_STORE=/store \
    PSF_HOST=0.0.0.0 \
    PSF_PORT=8000 \
    PSF_TRT_CACHE=/var/cache/psf/trt
VOLUME ["/store"]
EXPOSE 8000
USER 10001:10001
WORKDIR /var/lib/psf
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "serving.healthcheck"]
# uvicorn handles SIGTERM itself (also as PID 1): in-flight requests get PSF_GRACEFUL_TIMEOUT_S
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "serving"]
CMD ["--host", "0.0.0.0"]
