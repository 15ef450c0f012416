"""WebRTC: the packet track aiortc sends as-is, the fan-out to viewers, the peer lifecycle."""
