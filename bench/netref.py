"""The libwebrtc reference line of `make bench-network`: Chromium sending to Chromium.

The same scenario and rig as the box's line, with a Chromium page in the box's place: a canvas
of the box's size at 30 frames/s (a moving speckled texture that costs an encoder bits like a
moving picture, and the architecture's time strip drawn with the capture time, so the viewer's
probe measures latency the same way), VP8, at most the box's 4 Mbit/s, its size kept
(``contentHint = "detail"``: libwebrtc lowers the frame rate and the quality instead; at a
smaller size the time strip could not be read), sent to a second page that shows it in a
``<video>`` with the same probe. So each scenario shows the box next to libwebrtc's own
congestion control (GCC with transport-cc, as Chromium negotiates it with itself) on the same
bottleneck. VP8, not the box's H.264: Chromium's H.264 encoder here (OpenH264) encoded 6 of the
canvas's 30 frames a second on a clean link, reporting no limitation, while VP8 (libwebrtc's
default) encoded 26; the congestion control is the same.

Both pages are on 127.0.0.1 (Chromium gathers no other address here), so the rig impairs the
sender's one UDP port (``Impairment(src="127.0.0.1", sport=...)``): the offer is gathered
first (no trickle), its one host candidate gives the port, the rig is set, and only then does
the answer go back. Candidates other than UDP on 127.0.0.1 are left out of both descriptions.
Chromium gathers host candidates only for an origin granted a camera or microphone, so both
pages are a blank page served on 127.0.0.1 in a browser context granted the camera (never
opened).
Every 0.2 s the sender's page samples what it sent (RTP bytes with headers, retransmissions
included), its bandwidth estimate (``availableOutgoingBitrate``), the RTT and the frame size.
"""

from __future__ import annotations

import http.server
import re
import threading
from typing import Any


class _Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"<!doctype html><title>libwebrtc reference</title><body></body>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass


SENDER_JS = """async ([width, height, maxBitrate, stripRemb]) => {
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  document.body.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  const tile = document.createElement("canvas");
  tile.width = 256; tile.height = 256;
  const tctx = tile.getContext("2d");
  const noise = tctx.createImageData(256, 256);
  for (let i = 0; i < noise.data.length; i += 4) {
    const v = 108 + Math.floor(Math.random() * 40);  // speckle, as an ultrasound picture has
    noise.data[i] = noise.data[i + 1] = noise.data[i + 2] = v; noise.data[i + 3] = 255;
  }
  tctx.putImageData(noise, 0, 0);
  const pattern = ctx.createPattern(tile, "repeat");
  let n = 0;
  const draw = () => {
    n += 1;
    ctx.save();
    ctx.translate((n * 3) % 256, (n * 2) % 256);
    ctx.fillStyle = pattern;
    ctx.fillRect(-256, -256, width + 512, height + 512);
    ctx.restore();
    ctx.fillStyle = "rgba(20, 20, 20, 0.55)";
    ctx.beginPath();
    ctx.arc(width / 2 + Math.sin(n / 20) * width / 4, height / 2, height / 4, 0, 2 * Math.PI);
    ctx.fill();
    let t = Date.now() % 2 ** 48;  // the time strip (docs: the architecture's format)
    for (let i = 47; i >= 0; i--) {
      const bit = t % 2; t = Math.floor(t / 2);
      ctx.fillStyle = bit ? "rgb(235,235,235)" : "rgb(16,16,16)";
      ctx.fillRect(i * 16, 0, 16, 16);
      ctx.fillStyle = bit ? "rgb(16,16,16)" : "rgb(235,235,235)";
      ctx.fillRect(i * 16, 16, 16, 16);
    }
  };
  draw();
  setInterval(draw, 1000 / 30);
  const stream = canvas.captureStream(30);
  // keep the size (the time strip must be read at full size): libwebrtc lowers the frame rate
  // and the quality instead, as the box's ladder does first
  stream.getVideoTracks()[0].contentHint = "detail";
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.pc = pc;
  const tr = pc.addTransceiver(stream.getVideoTracks()[0],
                               { direction: "sendonly", streams: [stream] });
  const caps = RTCRtpSender.getCapabilities("video").codecs;
  const first = caps.filter((c) => c.mimeType === "video/VP8");
  const rest = caps.filter((c) => c.mimeType !== "video/VP8");
  if (first.length) tr.setCodecPreferences([...first, ...rest]);
  const params = tr.sender.getParameters();
  params.encodings = params.encodings.length ? params.encodings : [{}];
  params.encodings[0].maxBitrate = maxBitrate;
  params.degradationPreference = "maintain-resolution";
  await tr.sender.setParameters(params);
  const offer = await pc.createOffer();
  if (stripRemb) offer.sdp = offer.sdp.replace(/a=rtcp-fb:\\d+ goog-remb\\r\\n/g, "");
  await pc.setLocalDescription(offer);
  await new Promise((ok) => {
    if (pc.iceGatheringState === "complete") return ok();
    pc.addEventListener("icegatheringstatechange",
                        () => pc.iceGatheringState === "complete" && ok());
    setTimeout(ok, 3000);
  });
  window.refstats = [];
  return pc.localDescription.sdp;
}"""

RECEIVER_JS = """async ([offer, stripRemb]) => {
  const video = document.createElement("video");
  video.autoplay = true; video.muted = true; video.playsInline = true;
  document.body.appendChild(video);
  const pc = new RTCPeerConnection({ iceServers: [] });
  window.viewer = { pc };
  pc.addEventListener("track",
                      (e) => { video.srcObject = e.streams[0] || new MediaStream([e.track]); });
  await pc.setRemoteDescription({ type: "offer", sdp: offer });
  const answer = await pc.createAnswer();
  if (stripRemb) answer.sdp = answer.sdp.replace(/a=rtcp-fb:\\d+ goog-remb\\r\\n/g, "");
  await pc.setLocalDescription(answer);
  await new Promise((ok) => {
    if (pc.iceGatheringState === "complete") return ok();
    pc.addEventListener("icegatheringstatechange",
                        () => pc.iceGatheringState === "complete" && ok());
    setTimeout(ok, 3000);
  });
  return pc.localDescription.sdp;
}"""

#: Every 0.2 s on the sender: time (epoch ms), bytes sent with headers, the estimate, RTT, size.
SAMPLE_JS = """() => {
  window.refTimer = setInterval(async () => {
    const row = { t: Date.now(), bytes: 0, estimate: null, rtt: null, width: 0, height: 0,
                  codec: "" };
    const stats = await window.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "outbound-rtp" && s.kind === "video") {
        row.bytes += (s.bytesSent || 0) + (s.headerBytesSent || 0);
        row.width = s.frameWidth || 0; row.height = s.frameHeight || 0;
        const codec = s.codecId && stats.get(s.codecId);
        row.codec = codec ? codec.mimeType : "";
      }
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded")
        row.estimate = s.availableOutgoingBitrate ?? null;
      if (s.type === "remote-inbound-rtp" && s.kind === "video") row.rtt = s.roundTripTime ?? null;
    }
    window.refstats.push(row);
  }, 200);
}"""


def keep_local_udp(sdp: str) -> str:
    """``sdp`` with only its UDP candidates on 127.0.0.1 (no IPv6, no TCP candidates)."""
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            fields = line.split()
            if fields[2].lower() != "udp" or fields[4] != "127.0.0.1":
                continue
        lines.append(line)
    return "\r\n".join(lines)


def candidate_port(sdp: str) -> int:
    """The port of the one UDP host candidate on 127.0.0.1 (the sender's socket)."""
    ports = {
        int(m.group(1)) for m in re.finditer(r"a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 (\d+)", sdp)
    }
    if len(ports) != 1:
        raise RuntimeError(f"expected one UDP candidate on 127.0.0.1, found {len(ports)}")
    return ports.pop()


class Reference:
    """A sender page and a receiver page in ``chromium``'s one context, connected on loopback."""

    def __init__(self, chromium: Any, width: int, height: int, probe_js: str) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.context = chromium.new_context(permissions=["camera"])
        self.sender = self.context.new_page()
        self.receiver = self.context.new_page()
        self.receiver.add_init_script(probe_js)
        for page in (self.sender, self.receiver):
            page.goto(origin + "/")
        self.width, self.height = width, height
        self.offer = ""

    def offer_port(self, max_bps: int, strip_remb: bool) -> int:
        """Start the sender; its UDP port (for the rig) once its offer is gathered."""
        args = [self.width, self.height, max_bps, strip_remb]
        self.offer = keep_local_udp(self.sender.evaluate(SENDER_JS, args))
        return candidate_port(self.offer)

    def connect(self, strip_remb: bool) -> None:
        """Answer in the receiver, hand the answer back, wait for the first stamped frame."""
        from tests.support.browser import wait_js

        answer = keep_local_udp(self.receiver.evaluate(RECEIVER_JS, [self.offer, strip_remb]))
        set_answer = "(sdp) => window.pc.setRemoteDescription({type: 'answer', sdp})"
        self.sender.evaluate(set_answer, answer)
        wait_js(self.receiver, "window.probe.frames.find(f => f.stamp !== null)", 30)

    def start_sampling(self) -> None:
        self.receiver.evaluate("window.probe.frames.length = 0")
        self.sender.evaluate(SAMPLE_JS)

    def series(self, t0: float, seconds: float) -> list[dict[str, Any]]:
        """The sender's samples as the box's decisions: t (s from t0), sent (bit/s), target."""
        rows = self.sender.evaluate("window.refstats")
        out = []
        for a, b in zip(rows, rows[1:], strict=False):
            t = b["t"] / 1000 - t0
            dt = (b["t"] - a["t"]) / 1000
            if 0 <= t <= seconds and dt > 0:
                out.append(
                    {
                        "t": round(t, 2),
                        "sent": (b["bytes"] - a["bytes"]) * 8 / dt,
                        "target": b["estimate"] or 0,
                        "step": f"{b['width']}x{b['height']}",
                        "stalled": False,
                        "rtt": b["rtt"],
                        "codec": b["codec"],
                    }
                )
        return out

    def close(self) -> None:
        self.context.close()
        self.server.shutdown()
        self.server.server_close()
