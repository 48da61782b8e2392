"""The prediction API: POST /predict, GET /health, GET /model, and the upload page at GET /."""

from importlib import resources
from typing import Annotated

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse

from fer.core.errors import FerError, one_line
from fer.data.photos import decode_photo
from fer.serve.predict import Predictor
from fer.serve.prediction_log import PredictionLog

# Room for the multipart envelope around the image itself.
MULTIPART_OVERHEAD = 64 * 1024


def create_app(predictor: Predictor, card: dict, log: PredictionLog | None = None) -> FastAPI:
    max_bytes, max_pixels = predictor.limits["max_bytes"], predictor.limits["max_pixels"]
    app = FastAPI(title="fer", summary="facial-expression recognition with the pipeline's champion model")
    page = resources.files(__package__).joinpath("static/index.html").read_text()

    @app.middleware("http")
    async def refuse_oversized_bodies(request: Request, call_next):
        # Refuse on the declared length, before the multipart parser spools the body to disk.
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
            return JSONResponse({"detail": f"upload of {declared} bytes is over the {max_bytes}-byte limit"}, 413)
        return await call_next(request)

    @app.exception_handler(FerError)
    async def refused(_request: Request, err: FerError):
        # A BadPhoto is the client's (4xx); any other FerError, such as NaN outputs, is the server's.
        return JSONResponse({"detail": one_line(err)}, status_code=getattr(err, "status", 500))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def upload_page() -> str:
        return page

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": card["name"]}

    @app.get("/model")
    def model() -> dict:
        return card

    @app.post("/predict")
    def predict(file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, WebP, ...")]) -> dict:
        data = file.file.read(max_bytes + 1)
        name = file.filename or "upload"
        grey = decode_photo(data, name, max_bytes, max_pixels)
        faces = predictor.predict(grey, name)
        if log is not None:
            log.record(predictor.name, [face.log_row() for face in faces])
        height, width = grey.shape
        return {"model": predictor.name, "width": width, "height": height,
                "faces": [face.as_dict() for face in faces]}

    return app
