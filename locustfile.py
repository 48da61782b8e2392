"""Load test of `fer serve`: every simulated user uploads a 256x256 photo with one face, without pause.

    fer serve --log '' &
    locust -f locustfile.py --headless --host http://127.0.0.1:8000 -u 4 -r 4 -t 60s --only-summary

FER_PHOTO picks another photo (default: skimage's astronaut, resized to 256x256).
"""

import io
import os

from locust import HttpUser, task
from PIL import Image


def _photo() -> bytes:
    if os.environ.get("FER_PHOTO"):
        with open(os.environ["FER_PHOTO"], "rb") as f:
            return f.read()
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((256, 256)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


PHOTO = _photo()


class Uploader(HttpUser):
    @task
    def predict(self):
        files = {"file": ("astronaut.jpg", PHOTO, "image/jpeg")}
        with self.client.post("/predict", files=files, catch_response=True) as response:
            if response.status_code != 200 or len(response.json()["faces"]) != 1:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
