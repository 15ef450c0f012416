"""Sound sources by config string (``audio.source``) and the Opus encoder."""
