"""The privacy mask editor's routes: the saved rectangles and the scanner's preview picture."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from ...capture.mask import check_rect
from .auth import check_csrf
from .page import Page, call, error, json_object

logger = logging.getLogger(__name__)

MAX_RECTS = 32


class MaskRoutes:
    """The mask, read and saved as fractions of the picture, and the picture to draw it on."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def register(self, bp: Blueprint) -> None:
        bp.get("/api/mask")(self.mask_get)
        bp.post("/api/mask")(self.mask_set)
        bp.get("/preview.jpg")(self.preview)

    def mask_get(self) -> Response:
        return jsonify({"rects": [list(r) for r in call(self.page.backend.mask)]})

    def mask_set(self) -> Response:
        check_csrf()
        data = json_object()
        raw = data.get("rects") if data is not None else None
        if not isinstance(raw, list):
            return error("mask_bad")
        if len(raw) > MAX_RECTS:
            return error("mask_too_many")
        try:
            rects = [check_rect(r) for r in raw if isinstance(r, list)]
        except ValueError:
            return error("mask_bad")
        if len(rects) != len(raw):
            return error("mask_bad")
        backend = self.page.backend
        try:
            call(lambda: backend.set_mask(rects))
        except ValueError:
            return error("mask_bad")
        logger.info("pairing page: privacy mask saved (%d rectangles)", len(rects))
        self.page.note("mask-saved", count=len(rects))
        return self.mask_get()

    def preview(self) -> Response:
        jpeg = call(self.page.backend.preview_jpeg)
        if jpeg is None:
            return Response(status=204)
        return Response(jpeg, mimetype="image/jpeg")
