"""The FastAPI app: the page (static/), the models it offers and one decoding endpoint per task.
Every error is JSON {"error": "one line"} with a 4xx status, or 503 when the model is busy.

    POST /api/translate {model, text, beam_size, nbest, extract (argmax|threshold), threshold}
    POST /api/caption   {model, image (base64 or data URL), beam_size, nbest}
    POST /api/answer    {model, story (bAbI lines; the last question is answered), beam_size, nbest}
    -> {model, task, hypotheses: [{text, score, log_prob, finished, target, alpha, words, ...}], ...}
A translation's `words` holds its word-level attention and the word links `seqattn align` extracts.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from torch import Tensor

from seqattn.alignment import EXTRACT
from seqattn.alignment.links import check_choice
from seqattn.data.subwords import Tokenizer
from seqattn.errors import SeqattnError
from seqattn.search import Hypothesis
from seqattn.serve.models import Busy, Served
from seqattn.serve.words import merge_rows, word_alignment, word_groups

STATIC = Path(__file__).resolve().parent / "static"
MAX_BEAM = 16
MAX_IMAGE_BYTES = 8 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Search(BaseModel):
    model: str
    beam_size: int = Field(5, ge=1, le=MAX_BEAM)
    nbest: int = Field(1, ge=1, le=MAX_BEAM)


class TranslateRequest(Search):
    text: str
    extract: str = "argmax"  # alignment.links.EXTRACT
    threshold: float = Field(0.5, ge=0.0, lt=1.0)


class CaptionRequest(Search):
    image: str


class AnswerRequest(Search):
    story: str


def matrix(alpha: Tensor) -> list[list[float]]:
    return alpha.double().tolist()


def hypothesis_json(served: Served, hyp: Hypothesis) -> dict:
    """A hypothesis's text and scores, its target pieces (EOS when finished) and its attention."""
    task = served.task
    target = task.tgt_tok.pieces(hyp.tokens) + (["</s>"] if hyp.finished else [])
    return {"text": task.text(hyp), "score": hyp.score, "log_prob": hyp.log_prob, "finished": hyp.finished,
            "target": target, "alpha": None if hyp.alpha is None else matrix(hyp.alpha)}


def create_app(served: dict[str, Served], max_chars: int = 1000) -> FastAPI:
    """The app serving `served` (name -> model); inputs over `max_chars` characters are refused."""
    app = FastAPI(title="seqattn attention explorer", docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ApiError)
    def api_error(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(SeqattnError)
    def user_error(request: Request, err: SeqattnError) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in err.errors())
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=422)

    def model_for(req: Search, kind: str) -> Served:
        if req.model not in served:
            raise ApiError(404, f"no model {req.model!r}; choose one of {', '.join(served)}")
        model = served[req.model]
        if model.kind != kind:
            raise ApiError(400, f"model {req.model} is a {model.kind} model, not {kind}")
        if req.nbest > req.beam_size:
            raise ApiError(400, f"n-best {req.nbest} is larger than the beam size {req.beam_size}")
        return model

    def text_input(text: str, what: str) -> str:
        if not text.strip():
            raise ApiError(400, f"empty input: {what}")
        if len(text) > max_chars:
            raise ApiError(413, f"input of {len(text)} characters is over the limit of {max_chars}")
        return text

    def decode(model: Served, item: Any, req: Search, extra: Callable[[], Any] = lambda: None) -> tuple[list[Hypothesis], Any]:
        """The n-best of one input and the task's extras, both computed in the model's turn."""
        try:
            with model.turn():
                return model.predict(item, req.beam_size, req.nbest), extra()
        except Busy as err:
            raise ApiError(503, str(err)) from None
        except SeqattnError as err:
            raise ApiError(400, str(err)) from None

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/models")
    def models() -> dict:
        return {"models": [m.describe() for m in served.values()], "max_chars": max_chars, "max_beam": MAX_BEAM}

    @app.post("/api/translate")
    def translate(req: TranslateRequest) -> dict:
        model = model_for(req, "translation")
        check_choice("extract", req.extract, EXTRACT)
        text = " ".join(text_input(req.text, "type a sentence to translate").split())
        src_ids = model.task.inputs([text])[0]
        hyps, _ = decode(model, src_ids, req)
        source = model.task.src_tok.pieces(src_ids) + ["</s>"]
        subwords = isinstance(model.task.src_tok, Tokenizer)
        out = []
        for hyp in hyps:
            h = hypothesis_json(model, hyp) | {"source": source}
            h["words"] = None if hyp.alpha is None else word_alignment(
                np.asarray(h["alpha"]), source, h["target"], subwords, req.extract, req.threshold)
            out.append(h)
        return {"model": model.name, "task": model.kind, "input": text, "hypotheses": out}

    @app.post("/api/caption")
    def caption(req: CaptionRequest) -> dict:
        from seqattn.data import eval_crop, load_image

        model = model_for(req, "captioning")
        data = image_bytes(req.image)
        with tempfile.NamedTemporaryFile(suffix=".img") as file:
            file.write(data)
            file.flush()
            try:
                seen = eval_crop(model.cfg.backbone.image_size)(load_image(Path(file.name)))
            except SeqattnError:
                raise ApiError(400, "not a readable image: choose a JPEG or PNG file") from None
            hyps, _ = decode(model, Path(file.name), req)
        png = io.BytesIO()
        seen.save(png, format="PNG")
        subwords = isinstance(model.task.tgt_tok, Tokenizer)
        out = []
        for hyp in hyps:
            h = hypothesis_json(model, hyp)
            groups = word_groups(h["target"], subwords)
            h["words"] = None if hyp.alpha is None else {
                "target": [w for w, _ in groups], "alpha": merge_rows(np.asarray(h["alpha"]), groups).tolist()}
            out.append(h)
        L = len(out[0]["alpha"][0]) if out and out[0]["alpha"] else 0
        grid = math.isqrt(L) if math.isqrt(L) ** 2 == L else None
        return {"model": model.name, "task": model.kind, "hypotheses": out, "grid": grid,
                "image": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()}

    @app.post("/api/answer")
    def answer(req: AnswerRequest) -> dict:
        from seqattn.data.babi import parse_babi

        model = model_for(req, "qa")
        lines = text_input(req.story, "paste a bAbI story with a question").splitlines()
        try:
            questions = parse_babi(lines, "story", 0, model.cfg.babi.memory_size, answered=False)
        except SeqattnError as err:
            raise ApiError(400, str(err)) from None
        if not questions:
            raise ApiError(400, "the story has no question: end it with a line `N question?`")
        ex = questions[-1]

        def hops():  # [K, M]; None for a model without hops (KV-MemNN)
            if hasattr(model.model, "hop_attention"):
                return matrix(model.task.hop_attention(model.model, [ex], model.device, 1)[0])

        hyps, p = decode(model, ex, req, hops)
        story = [" ".join(s) for s in ex.memory]
        out = [hypothesis_json(model, h) | {"source": story} for h in hyps]
        return {"model": model.name, "task": model.kind, "hypotheses": out, "story": story,
                "question": " ".join(ex.question) + "?", "support": ex.support, "hops": p}

    return app


def image_bytes(image: str) -> bytes:
    """The bytes of a base64 image, plain or as a data URL; 4xx when empty, oversize or not base64."""
    payload = image.split(",", 1)[1] if image.startswith("data:") else image
    if not payload.strip():
        raise ApiError(400, "empty input: choose an image file")
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:
        raise ApiError(413, f"image over the limit of {MAX_IMAGE_BYTES >> 20} MiB")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "not a readable image: the upload is not base64") from None
