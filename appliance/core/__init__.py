"""The core: the state machine (machine.py: the dispatch; base.py: the state and its views;
lifecycle.py: the session's life; seat.py: the seat; relaycalls.py: the relay calls run beside
it), its events and staff commands (events.py), its one queue (inbox.py), its settings
(settings.py), what it needs of the layers below (ports.py) and the typed views the pages read
(views.py)."""

from .events import (
    Admit,
    End,
    EndSession,
    Event,
    Extend,
    OpenSession,
    Pause,
    Press,
    Refuse,
    RelayCall,
    RelayDone,
    Release,
    Resume,
    SetSound,
    StaffCommand,
    VerifiedKnock,
    ViewerAnswered,
    ViewerBye,
    ViewerCancel,
    ViewerLeft,
    ViewerLink,
    ViewerTalk,
)
from .inbox import Inbox
from .machine import Core, Signalling, ViewerPool
from .settings import CoreSettings
from .views import SessionView, Status, ViewerView

__all__ = [
    "Admit",
    "Core",
    "CoreSettings",
    "End",
    "EndSession",
    "Event",
    "Extend",
    "Inbox",
    "OpenSession",
    "Pause",
    "Press",
    "Refuse",
    "Release",
    "RelayCall",
    "RelayDone",
    "Resume",
    "SetSound",
    "SessionView",
    "Signalling",
    "StaffCommand",
    "Status",
    "VerifiedKnock",
    "ViewerAnswered",
    "ViewerBye",
    "ViewerCancel",
    "ViewerLeft",
    "ViewerLink",
    "ViewerTalk",
    "ViewerPool",
    "ViewerView",
]
