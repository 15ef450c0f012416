"""One exam's session (``session.py``) and the sealed signalling envelope of docs/protocol.md
(``seal.py``)."""
