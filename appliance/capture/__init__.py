"""Frame sources: synthetic phantom, file clip, HDMI through the TC358743, CSI camera."""
