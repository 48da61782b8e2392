# The pipeline: `docker run` reproduces it in /repo (mount a clone there to keep its DVC cache and outputs).
#   docker build -f dockerfiles/train.Dockerfile -t fer-train .
#   docker run --rm -v "$PWD":/repo fer-train                 # dvc repro
#   docker run --rm --gpus all -v "$PWD":/repo fer-train dvc exp run -S train.device=cuda
# PYTHON_IMAGE: another base with Python 3.11, e.g. a registry mirror's
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /repo
COPY pyproject.toml README.md requirements-nodeps.txt ./
COPY fer ./fer
RUN pip install --no-cache-dir torch==2.14.1 torchvision==0.29.1 && pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt
COPY . .
RUN git config --global --add safe.directory /repo && mkdir -p data
CMD ["dvc", "repro"]
