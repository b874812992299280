# pgenrm scoring gateway. CPU-only image with the exact versions the test suite passed with:
# requirements/server.lock (pgenrm's runtime dependencies, hash-checked; ./scripts/lock writes it,
# README "Refreshing the lock"), PyTorch on its CPU build so no CUDA wheels are pulled; the LLM
# runs in vLLM (docker-compose.yml).
#   docker build -t pgenrm .
#   docker build --build-arg TORCH_INDEX_URL=https://mirror.example/whl/cpu -t pgenrm .
# Settings are PGENRM_* environment variables (service/core/config.py, deploy/README.md).

FROM python:3.11-slim AS builder
# Where the CPU torch wheel comes from (PyPI has no `+cpu` builds).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Torch first, in its own layer: the largest download, and torch.lock changes only with its pin.
# Every install checks each file against the lock's hashes, and --no-deps installs nothing else.
COPY requirements/torch.lock ./requirements/
RUN pip install --require-hashes --no-deps --extra-index-url "$TORCH_INDEX_URL" \
      -r requirements/torch.lock
COPY requirements/server.lock ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/server.lock
COPY pyproject.toml README.md ./
COPY service ./service
COPY prototypes ./prototypes
# A regular (non-editable) install of the project alone: its dependencies are all in the lock
# (pip check fails the build if not: run ./scripts/lock), none of its [dev] extras.
RUN pip install --no-deps . \
    && pip check \
    && if pip list 2>/dev/null | grep -qiE '^(nvidia|triton)'; then \
         echo "CUDA packages were installed; the torch pin did not hold" >&2; exit 1; \
       fi

FROM python:3.11-slim
# Same base image as the builder: the venv's interpreter links stay valid.
COPY --from=builder /opt/venv /opt/venv
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin pgenrm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    PGENRM_HOST=0.0.0.0
USER 10001
WORKDIR /home/pgenrm
EXPOSE 8000
# /readyz: healthy once the embedder and backend are loaded (503 before, which urlopen raises).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=3)"]
CMD ["pgenrm", "serve"]
