# NormScope dashboard: docker build -t normscope . && docker run -p 8501:8501 normscope
# Datasets are read from /data (cifar10-jpeg/, torchvision's cifar-10-batches-py/ ...); results, uploads and
# jobs live in /cache. To keep them and see the CIFAR-10 zoo:
#   docker run -p 8501:8501 -v /path/to/datasets:/data:ro -v normscope-cache:/cache normscope
# Without /data the app starts on the built-in dataset.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NORMSCOPE_DATA=/data \
    NORMSCOPE_CACHE=/cache

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY core/ core/
COPY ui/ ui/
COPY views/ views/
COPY scripts/ scripts/
COPY checkpoints/ checkpoints/
COPY .streamlit/ .streamlit/
COPY app.py .

RUN mkdir -p /data /cache
EXPOSE 8501
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health')"
CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0", \
     "--server.headless", "true", "--browser.gatherUsageStats", "false"]
