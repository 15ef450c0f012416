"""Local signalling served by the box, WHEP-style: POST an SDP offer, get the SDP answer.

The transport (this blueprint) is kept apart from what it carries: it hands the body to an
``OfferHandler`` and returns what it gives back, so the sealed protocol can replace plain SDP
without touching the HTTP side.
"""

from __future__ import annotations

import logging
from typing import Protocol

from flask import Blueprint, Response, abort, request, url_for

from ..errors import InvalidStateError, SignallingError
from ..web.facade import LoopBlockedError

logger = logging.getLogger(__name__)

MAX_BODY = 16_384


class OfferHandler(Protocol):
    def offer(self, body: str) -> tuple[str, str]:
        """Handle a viewer's offer; returns (resource id, answer body)."""

    def hangup(self, resource_id: str) -> bool:
        """The viewer hangs up; False if there is no such resource."""


def create_blueprint(handler: OfferHandler) -> Blueprint:
    bp = Blueprint("whep", __name__)

    @bp.post("/whep")
    def offer() -> Response:
        if request.mimetype != "application/sdp":
            return _error(415, "the offer must be application/sdp")
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, "the offer is too large")
        body = request.get_data(as_text=True)
        try:
            resource_id, answer = handler.offer(body)
        except InvalidStateError:
            return _error(409, "no-session")
        except SignallingError:
            logger.warning("refused a malformed offer")
            return _error(400, "the offer was refused")
        except LoopBlockedError:
            return _error(503, "busy")
        response = Response(answer, status=201, mimetype="application/sdp")
        response.headers["Location"] = url_for("whep.hangup", resource_id=resource_id)
        return response

    @bp.delete("/whep/<resource_id>")
    def hangup(resource_id: str) -> Response:
        if not handler.hangup(resource_id):
            abort(404)
        return Response(status=204)

    return bp


def _error(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")
