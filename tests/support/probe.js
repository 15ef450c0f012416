// Injected into the viewer page by the browser tests and the benchmarks (never shipped).
// For every frame the <video> presents: decode the time strip from a canvas, note when it was
// presented (requestVideoFrameCallback metadata, on the epoch clock), keep the last few. Also
// reads the click marker below the strip (capture/timestrip.py: MARKER_RECT): true on the frame
// after each whole second, when the synthetic sound clicks.
(() => {
  const BITS = 48, CELL = 16, WIDTH = BITS * CELL, HEIGHT = 2 * CELL;
  const MARKER = { x: 0, y: HEIGHT + 8, w: 4 * CELL, h: 2 * CELL };
  const ROWS = MARKER.y + MARKER.h;
  const probe = { frames: [], presented: 0, stamped: 0, started: false };
  window.probe = probe;

  function readStrip(ctx) {
    const px = ctx.getImageData(0, 0, WIDTH, HEIGHT).data;
    const cell = (row, i) => {
      let sum = 0;
      for (let y = row * CELL + 4; y < row * CELL + 12; y++)
        for (let x = i * CELL + 4; x < i * CELL + 12; x++) sum += px[(y * WIDTH + x) * 4];
      return sum / 64;
    };
    let value = 0;
    for (let i = 0; i < BITS; i++) {
      const top = cell(0, i), bottom = cell(1, i);
      if (Math.abs(top - 128) < 48 || Math.abs(bottom - 128) < 48) return null;
      const bit = top > 128;
      if (bit === (bottom > 128)) return null;
      value = value * 2 + (bit ? 1 : 0);
    }
    return value;
  }

  function readMarker(ctx) {
    const px = ctx.getImageData(MARKER.x + 8, MARKER.y + 8, MARKER.w - 16, MARKER.h - 16).data;
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) sum += px[i];
    return sum / (px.length / 4) > 128;
  }

  function start(video) {
    if (probe.started) return;
    probe.started = true;
    const canvas = document.createElement("canvas");
    canvas.width = WIDTH; canvas.height = ROWS;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const onFrame = (now, meta) => {
      probe.presented += 1;
      let stamp = null, marker = null;
      if (meta.width >= WIDTH && meta.height >= HEIGHT) {
        const rows = Math.min(ROWS, meta.height);
        ctx.drawImage(video, 0, 0, WIDTH, rows, 0, 0, WIDTH, rows);
        stamp = readStrip(ctx);
        if (rows === ROWS) marker = readMarker(ctx);
      }
      const shown = performance.timeOrigin + (meta.expectedDisplayTime || now);
      const modulus = 2 ** 48;
      if (stamp !== null) probe.stamped += 1;
      probe.frames.push({
        stamp, marker, shown, width: meta.width, height: meta.height,
        latency: stamp === null ? null : ((shown - stamp) % modulus + modulus) % modulus,
        presentedFrames: meta.presentedFrames,
      });
      if (probe.frames.length > 4000) probe.frames.splice(0, 1000);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  const attach = () => {
    const video = document.querySelector("video");
    if (video) start(video); else setTimeout(attach, 20);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attach);
  else attach();

  window.probeCodec = async () => {
    const pc = window.viewer && window.viewer.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "inbound-rtp" && s.kind === "video" && s.codecId) {
        const codec = stats.get(s.codecId);
        return codec ? { mimeType: codec.mimeType, fmtp: codec.sdpFmtpLine || "" } : null;
      }
    }
    return null;
  };
})();
