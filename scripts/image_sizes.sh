#!/usr/bin/env bash
# The API images before and after torch leaves them (docs/export.md): builds dockerfiles/api.Dockerfile (torch) and
# dockerfiles/api-onnx.Dockerfile (onnxruntime, no torch) on one base, checks that each answers /predict on a real
# photo, and prints each image's size and its part above the base. Run it after `dvc repro`, so that
# outputs/champion.pt and outputs/champion.onnx exist; it needs a Docker engine, the package index and port 8000.
#   PYTHON_IMAGE     the base (default: the Dockerfiles' own)
#   TORCH_INDEX_URL  where the torch image gets torch (default: the Dockerfile's, PyTorch's CPU wheels)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${PYTHON_IMAGE:-$(sed -n 's/^ARG PYTHON_IMAGE=//p' dockerfiles/api.Dockerfile)}
url=http://127.0.0.1:8000
photo=$(mktemp --suffix .jpg)
trap 'rm -f "$photo"; docker rm -f fer-image-check >/dev/null 2>&1 || true' EXIT
.venv/bin/python -c "import sys, skimage.data, skimage.io; skimage.io.imsave(sys.argv[1], skimage.data.astronaut())" "$photo"

# The host's network: RUN steps reach the package index, and the check reaches the server on the images' own port,
# also where the engine has no bridge network.
docker build --network host --build-arg PYTHON_IMAGE="$base" \
    ${TORCH_INDEX_URL:+--build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL"} -f dockerfiles/api.Dockerfile -t fer-api .
docker build --network host --build-arg PYTHON_IMAGE="$base" -f dockerfiles/api-onnx.Dockerfile -t fer-api-onnx .

answers_predict() {
    if curl -sf "$url/health" >/dev/null; then
        echo "error: $url already answers; stop that server so that the check reaches $1's" >&2
        exit 1
    fi
    docker run -d --rm --name fer-image-check --network host "$1" >/dev/null
    for _ in $(seq 120); do
        curl -sf "$url/health" >/dev/null && break
        sleep 1
    done
    if ! curl -sf "$url/health" >/dev/null; then
        echo "error: $1 did not answer $url/health within 120 s; its log:" >&2
        docker logs fer-image-check 2>&1 | tail -5 >&2
        exit 1
    fi
    curl -sf -F "file=@$photo" "$url/predict" | .venv/bin/python -c "
import json, sys
faces = json.load(sys.stdin)['faces']
if not faces:
    sys.exit('error: $1: /predict found no face on the astronaut')
print('$1: /predict found', len(faces), 'face(s),', faces[0]['emotion'])"
    docker rm -f fer-image-check >/dev/null
}
answers_predict fer-api
answers_predict fer-api-onnx

size_mb() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f", $1 / 1e6}'; }
base_mb=$(size_mb "$base")
echo "| image | MB | MB above the base ($base, $base_mb MB) |"
echo "|---|---:|---:|"
for image in fer-api fer-api-onnx; do
    echo "| $image | $(size_mb "$image") | $(( $(size_mb "$image") - base_mb )) |"
done
