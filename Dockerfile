# NormScope dashboard: docker build -t normscope . && docker run -p 8501:8501 normscope
# Datasets are read from /data (cifar10-jpeg/, torchvision's cifar-10-batches-py/ ...); results, uploads and
# jobs live in the /cache volume. To keep them and see the CIFAR-10 zoo:
#   docker run -p 8501:8501 -v /path/to/datasets:/data:ro -v normscope-cache:/cache normscope
# A public demo server (read-only for visitors, limits per request; README "Serving it"): add -e NORMSCOPE_PUBLIC=1.
# Without /data the app starts on the built-in dataset. compose.yaml serves it with both volumes.
#
# CUDA variant (README "The image"): the same file on a CUDA runtime base with the matching torch wheel,
#   docker build -t normscope:cuda --build-arg BASE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 .
#   docker run --gpus all -p 8501:8501 -v normscope-cache:/cache normscope:cuda
# The default (python:3.11-slim) installs the CPU wheels: the image is a fifth of the CUDA one's size.
# scripts/replay_image.sh replays these steps without Docker (CI runs it).
ARG BASE=python:3.11-slim
FROM ${BASE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NORMSCOPE_DATA=/data \
    NORMSCOPE_CACHE=/cache \
    HOME=/home/normscope

# A CUDA base image brings no Python of its own; the slim one has it already.
RUN command -v python3 >/dev/null || (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*)
RUN useradd --create-home --uid 10001 normscope && python3 -m venv /venv && mkdir -p /data /cache \
    && chown normscope:normscope /cache
ENV PATH=/venv/bin:$PATH

WORKDIR /app
COPY requirements.txt .
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt

COPY core/ core/
COPY ui/ ui/
COPY views/ views/
COPY scripts/ scripts/
COPY checkpoints/ checkpoints/
COPY .streamlit/ .streamlit/
COPY app.py .

USER normscope
VOLUME ["/cache"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0", \
     "--server.headless", "true", "--browser.gatherUsageStats", "false"]
