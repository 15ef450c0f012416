"""The box's web side: the viewer page, local signalling, (later) the staff pairing page."""
