#!/usr/bin/env bash
# Set up a fresh clone: a virtual environment in .venv with fer and its test tools, and the data/
# folder that the fetch stage watches (data.dvc tracks it; it is empty until you bring a dataset).
set -euo pipefail
cd "$(dirname "$0")/.."
# PYTHON picks the interpreter (default: python3 on the PATH); .ci/run sets it to an optimised build when there is one.
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned, so pip takes these exact releases instead of resolving a newer CUDA build.
# TORCH_INDEX_URL picks a wheel index, e.g. https://download.pytorch.org/whl/cpu on a GPU-less CI runner.
.venv/bin/python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
mkdir -p data
