"""Signalling: how a viewer's offer reaches the box (locally, or through the relay)."""
