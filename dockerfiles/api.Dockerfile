# The prediction API with the champion model baked in. Build after `dvc repro` (or `dvc pull`), so that
# outputs/champion.pt exists:
#   docker build -f dockerfiles/api.Dockerfile -t fer-api .
#   docker run --rm -p 8000:8000 -v fer-logs:/app/logs fer-api
# PYTHON_IMAGE: another base with Python 3.11, e.g. a registry mirror's (scripts/image_sizes.sh)
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fer ./fer
# The CPU wheels: serving one face at a time needs no CUDA libraries.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url ${TORCH_INDEX_URL} torch==2.14.1 torchvision==0.29.1 \
    && pip install --no-cache-dir .
COPY params.yaml ./
# metrics/champion.json: the served model's name, hash and test metrics
COPY metrics ./metrics
COPY outputs/champion.pt ./outputs/champion.pt
RUN useradd --create-home fer && mkdir logs && chown fer logs
USER fer
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["fer", "serve", "--host", "0.0.0.0", "--port", "8000", "--log", "logs/predictions.sqlite"]
