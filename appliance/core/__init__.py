"""The core: the state machine (machine.py), its events and staff commands (events.py), its one
queue (inbox.py) and the typed views the pages read (views.py)."""

from .events import (
    Admit,
    End,
    EndSession,
    Event,
    Extend,
    Knock,
    OpenSession,
    Pause,
    Press,
    Refuse,
    Release,
    Resume,
    StaffCommand,
    ViewerAnswered,
    ViewerBye,
    ViewerCancel,
    ViewerLeft,
    ViewerLink,
)
from .inbox import Inbox
from .machine import Core, Signalling, ViewerPool
from .views import SessionView, Status, ViewerView

__all__ = [
    "Admit",
    "Core",
    "End",
    "EndSession",
    "Event",
    "Extend",
    "Inbox",
    "Knock",
    "OpenSession",
    "Pause",
    "Press",
    "Refuse",
    "Release",
    "Resume",
    "SessionView",
    "Signalling",
    "StaffCommand",
    "Status",
    "ViewerAnswered",
    "ViewerBye",
    "ViewerCancel",
    "ViewerLeft",
    "ViewerLink",
    "ViewerPool",
    "ViewerView",
]
