"""The event log on the pairing page: shown, and exported as JSON or CSV."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .export import events_to_csv, export_name
from .page import Page, call


class EventRoutes:
    """The box's accountability record (no personal data), for the staff."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def register(self, bp: Blueprint) -> None:
        bp.get("/api/events")(self.events_api)
        bp.get("/events.json")(self.events_json)
        bp.get("/events.csv")(self.events_csv)

    def events_api(self) -> Response:
        return jsonify(call(self.page.backend.events))

    def events_json(self) -> Response:
        response = jsonify(call(self.page.backend.events))
        return self._attachment(response, "json")

    def events_csv(self) -> Response:
        response = Response(events_to_csv(call(self.page.backend.events)), mimetype="text/csv")
        return self._attachment(response, "csv")

    def _attachment(self, response: Response, kind: str) -> Response:
        name = export_name(self.page.room_name, kind)
        response.headers["Content-Disposition"] = f"attachment; filename={name}"
        return response
