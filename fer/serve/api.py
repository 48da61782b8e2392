"""The prediction API: POST /predict, GET /health, GET /model, and the upload page at GET /."""

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from fer.core.errors import FerError, one_line
from fer.data.photos import decode_photo
from fer.serve.http_guard import RefuseAmbiguousLength
from fer.serve.predict import Predictor
from fer.serve.prediction_log import PredictionLog

logger = logging.getLogger("uvicorn.error")  # uvicorn's own log, shown at its warning level
# Room for the multipart envelope around the image itself.
MULTIPART_OVERHEAD = 64 * 1024


class BodyLimit:
    """Refuse a request body over max_bytes with 413 as its bytes arrive, declared length or not.

    A chunked upload has no Content-Length: counting is the only way to stop it before the multipart parser
    spools all of it to disk. (Pure ASGI: it must see each chunk of the body as the server receives it.)
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await JSONResponse(self._over(int(declared)), 413)(scope, receive, send)
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # Raised inside the body parser, an HTTPException passes through FastAPI as this response.
                raise HTTPException(413, self._over(received, "more than ")["detail"])
            return message

        await self.app(scope, counting_receive, send)

    def _over(self, size: int, prefix: str = "") -> dict:
        return {"detail": f"upload of {prefix}{size} bytes is over the {self.max_bytes}-byte limit"}


def create_app(predictor: Predictor, card: dict, log: PredictionLog | None = None) -> FastAPI:
    limits = predictor.limits
    # Each decode may hold up to max_megapixels of pixels, and detection works on what it decoded, so only
    # max_decodes threads ever do that work: fewer at once, and only their malloc arenas hold the smaller
    # buffers, rather than one arena per request thread (the large ones are mapped: fer serve calls
    # fer.core.malloc.map_large_blocks).
    decoders = ThreadPoolExecutor(predictor.settings.max_decodes, thread_name_prefix="fer-decode")
    app = FastAPI(title="fer", summary="facial-expression recognition with the pipeline's champion model")
    app.add_middleware(BodyLimit, max_bytes=limits["max_bytes"] + MULTIPART_OVERHEAD)
    app.add_middleware(RefuseAmbiguousLength)  # added last, so it runs first
    page = resources.files(__package__).joinpath("static/index.html").read_text()

    @app.exception_handler(FerError)
    async def refused(_request: Request, err: FerError):
        # A BadPhoto is the client's (4xx); any other FerError, such as NaN outputs, is the server's.
        return JSONResponse({"detail": one_line(err)}, status_code=getattr(err, "status", 500))

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, err: RequestValidationError):
        # One line, as for every other refusal (FastAPI's list of problems shows as [object Object] on the page).
        problem = err.errors()[0]
        field = ".".join(str(part) for part in problem["loc"] if part != "body")
        return JSONResponse(
            {
                "detail": f"{field}: {problem['msg'].lower()}; expected a photo in the form field "
                "'file' (multipart/form-data)"
            },
            422,
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> str:
        return page

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": card["name"]}

    @app.get("/model")
    def model() -> dict:
        return card

    def predict_photo(data: bytes, name: str) -> dict:
        photo = decode_photo(data, name, **limits)
        faces = predictor.predict(photo.grey, name, photo.scale)
        if log is not None:
            try:
                log.record(predictor.name, [face.log_row() for face in faces])
            except (sqlite3.Error, OSError) as err:
                # The log serves drift detection later; a full disk must not cost the user this answer.
                logger.warning("prediction log %s: not written (%s)", log.path, one_line(err))
        height, width = (round(side * photo.scale) for side in photo.grey.shape)
        return {"model": predictor.name, "width": width, "height": height, "faces": [face.as_dict() for face in faces]}

    @app.post("/predict")
    async def predict(file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, WebP, ...")]) -> dict:
        data = await file.read(limits["max_bytes"] + 1)
        return await asyncio.get_running_loop().run_in_executor(
            decoders, predict_photo, data, file.filename or "upload"
        )

    return app
