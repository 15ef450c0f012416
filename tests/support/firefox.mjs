// Drives Debian's firefox-esr over WebDriver BiDi (puppeteer-core, which downloads no browser)
// as a co-parent's phone, for tests/browser/test_firefox.py. Confined like the project's Chromium:
// no telemetry, updates, captive-portal or connectivity checks, safe browsing, Normandy, plugin
// downloads (no OpenH264), prefetching or DNS over HTTPS; ICE on loopback, host addresses as they
// are (no mDNS). The test runs it inside a loopback-only network namespace anyway, which for
// watching has a default route through loopback (Firefox's ICE gathers on that route's interface).
//
//   node tests/support/firefox.mjs '{"mode": "unsupported" | "watch", "link": "...", "h264": bool}'
//
// It prints one JSON line per step ({"step": ...}) and, in "watch" mode, waits for a line on
// stdin before the steps that need the box ("admitted", "ended"). Once live it taps "Tap for
// sound" and reports the loudest band it hears ("heard").

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

const args = JSON.parse(process.argv[2]);
const FIREFOX = process.env.APPLIANCE_FIREFOX || "/usr/bin/firefox-esr";
const PROBE = readFileSync(new URL("./probe.js", import.meta.url), "utf8");

const CONFINED = {
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.unified": false,
  "toolkit.telemetry.server": "",
  "toolkit.telemetry.archive.enabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "browser.ping-centre.telemetry": false,
  "app.update.enabled": false,
  "app.update.auto": false,
  "app.normandy.enabled": false,
  "app.normandy.api_url": "",
  "app.shield.optoutstudies.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.safebrowsing.downloads.enabled": false,
  "browser.safebrowsing.downloads.remote.enabled": false,
  "browser.safebrowsing.blockedURIs.enabled": false,
  "browser.safebrowsing.provider.mozilla.updateURL": "",
  "extensions.update.enabled": false,
  "extensions.blocklist.enabled": false,
  "services.settings.server": "",
  "browser.search.update": false,
  "browser.region.network.url": "",
  "geo.provider.network.url": "",
  "media.gmp-manager.url": "",
  "media.gmp-manager.updateEnabled": false,
  "media.gmp-gmpopenh264.enabled": false,
  "media.gmp-gmpopenh264.autoupdate": false,
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "network.http.speculative-parallel-limit": 0,
  "network.trr.mode": 5,
  "security.OCSP.enabled": 0,
  "browser.startup.homepage": "about:blank",
  "browser.newtabpage.enabled": false,
  // WebRTC on loopback only, host candidates as they are (no mDNS names)
  "media.peerconnection.ice.loopback": true,
  "media.peerconnection.ice.obfuscate_host_addresses": false,
  "media.navigator.permission.disabled": true,
  "media.autoplay.default": 0,
  "media.autoplay.block-webaudio": false,  // the test's analyser runs without a gesture of its own
};
// Test-only: Firefox as shipped decodes no H.264 in WebRTC without Cisco's OpenH264 plugin (a
// download); these let it use the system's libavcodec instead.
const H264 = {
  "media.webrtc.hw.h264.enabled": true,
  "gfx.blacklist.webrtc.hw.acceleration.h264": 1,
};

// The loudest band of what the page plays, over about 1.5 s (in the page).
async function loudestBand() {
  const ctx = new AudioContext();
  // (a context with no output device may never say it resumed: do not wait on it for ever)
  await Promise.race([ctx.resume(), new Promise((r) => setTimeout(r, 2000))]);
  const source = ctx.createMediaStreamSource(document.getElementById("video").srcObject);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  const sum = new Float32Array(analyser.frequencyBinCount);
  const bins = new Float32Array(analyser.frequencyBinCount);
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatFrequencyData(bins);
    bins.forEach((db, k) => { if (Number.isFinite(db)) sum[k] += Math.pow(10, db / 10); });
  }
  let best = 1;
  for (let k = 1; k < sum.length; k++) if (sum[k] > sum[best]) best = k;
  const hz = best * ctx.sampleRate / analyser.fftSize;
  const context = { state: ctx.state, time: ctx.currentTime };
  await ctx.close();
  return { hz, energy: sum[best], sound: document.body.dataset.sound, context };
}

const say = (step, extra = {}) => process.stdout.write(JSON.stringify({ step, ...extra }) + "\n");
let lines = null;
async function expectLine(word) {
  lines = lines || createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { value, done } = await lines.next();
  if (done || value.trim() !== word) throw new Error(`expected ${word}, got ${value}`);
}

async function until(page, expression, timeout = 20000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    // evaluate() runs in the page as a function: the page's CSP allows no eval of strings
    const value = await page.evaluate(new Function(`return (${expression});`)).catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) {
      const seen = await page.evaluate(() => JSON.stringify({ viewer: window.viewer, message: document.getElementById("message").textContent, ice: window.viewer.pc && window.viewer.pc.iceConnectionState, conn: window.viewer.pc && window.viewer.pc.connectionState, cands: window.viewer.pc && (window.viewer.pc.localDescription.sdp.match(/a=candidate.*/g) || []).join(" | "), remote: window.viewer.pc && window.viewer.pc.remoteDescription && (window.viewer.pc.remoteDescription.sdp.match(/a=candidate.*/g) || []).join(" | ") })).catch((e) => String(e));
      throw new Error(`still not met after ${timeout} ms: ${expression}; the page: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: FIREFOX,
  headless: true,
  protocol: "webDriverBiDi",
  extraPrefsFirefox: { ...CONFINED, ...(args.h264 ? H264 : {}) },
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 390, height: 844 });
  await page.evaluateOnNewDocument(PROBE);
  const h264 = await page.evaluate(() =>
    RTCRtpReceiver.getCapabilities("video").codecs.some((c) => /h264/i.test(c.mimeType)));
  say("browser", { version: await browser.version(), h264 });
  await page.goto(args.link);
  if (args.mode === "unsupported") {
    await until(page, "window.viewer && window.viewer.state !== 'connecting'");
    say("shown", {
      state: await page.evaluate(() => window.viewer.state),
      message: await page.evaluate(() => document.getElementById("message").textContent),
      url: page.url(),
    });
  } else {
    await until(page, "window.viewer && window.viewer.state === 'join'");
    await page.click("#join-button");
    await until(page, "window.viewer.state === 'admission' && window.viewer.code");
    say("code", { code: await page.evaluate(() => window.viewer.code), url: page.url() });
    await expectLine("admitted");
    await until(page, "window.viewer.state === 'live' && window.probe.stamped >= 30", 30000);
    const stamps = await page.evaluate(() => window.probe.frames.filter((f) => f.stamp !== null).map((f) => f.stamp));
    const codec = await page.evaluate(() => window.probeCodec());
    say("live", { stamps: stamps.slice(-30), codec, quality: await page.evaluate(() => window.viewer.quality) });
    // the scanner's sound: muted until the co-parent taps (a real click, the page's own handler
    // unmutes), then a WebAudio analyser on the video's stream finds the loudest band
    await until(page, "document.body.dataset.sound === 'muted'");
    await page.click("#sound");
    await until(page, "document.body.dataset.sound === 'on' && !document.getElementById('video').muted");
    say("heard", await page.evaluate(loudestBand));
    await page.reload();
    await until(page, "window.viewer && window.viewer.state === 'live' && window.probe.stamped >= 10", 30000);
    say("back", { url: page.url(), stamped: await page.evaluate(() => window.probe.stamped) });
    await expectLine("ended");
    await until(page, "window.viewer.state === 'ended'");
    say("ended");
  }
} catch (err) {
  say("error", { message: String(err && err.stack || err) });
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
