"""Ultrasound live-share appliance: HDMI in, end-to-end encrypted WebRTC out, one viewer."""

__version__ = "0.1.0"
