"""The viewer page on a clinic group's relay (two relay processes on one Redis behind HAProxy,
two coturn: tests/support/relay_group.py), with one coturn and then the page's own relay process
killed: Chromium, forced to relay-only ICE, reaches the box through the coturn still up, and the
page goes on through the other relay process, where the staff's decision reaches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.core.events import Refuse
from appliance.relay.config import hash_token
from tests.browser.test_turn import RELAY_ONLY
from tests.support import turn
from tests.support.browser import join, wait_js
from tests.support.redis_server import redis_server
from tests.support.relay_group import relay_group

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "box-token-" + "p" * 30
SELECTED_LOCAL = """(async () => {
  const stats = await window.viewer.pc.getStats();
  for (const s of stats.values()) {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      const local = stats.get(s.localCandidateId);
      return [local.candidateType, local.port];
    }
  }
  return null;
})()"""


def test_one_coturn_and_the_page_s_relay_process_killed_the_page_goes_on_through_the_others(
    box_factory, chromium, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "redis").mkdir()
    with (
        redis_server(tmp_path / "redis") as redis_url,
        turn.coturn_process(tmp_path / "turn-a") as (port_a, coturn_a),
        turn.coturn(tmp_path / "turn-b") as port_b,
    ):
        urls = [f"turn:127.0.0.1:{port}?transport=udp" for port in (port_a, port_b)]
        with relay_group(tmp_path, redis_url, [hash_token(TOKEN)], urls, monkeypatch) as group:
            coturn_a.kill()  # the first TURN server the relay hands out is down
            coturn_a.wait(5)
            box = box_factory(relay={"url": group.proxy.url, "token": TOKEN})
            context = chromium.new_context(ignore_https_errors=True)  # the proxy's test cert
            try:
                page = context.new_page()
                page.add_init_script(RELAY_ONLY)
                join(page, box.viewer_url)  # connected, waiting to be let in
                kind, port = page.evaluate(SELECTED_LOCAL)
                assert kind == "relay" and port in turn.relay_ports(port_b), "through coturn B"
                knocked = group.served("viewers", "b")
                assert knocked > 0 and group.served("viewers", "a") == 0

                group.b.kill()  # the page's relay process
                box.run(box.core.command(Refuse()))  # the staff turn the phone away
                # the sealed refusal reaches the page through A (its poll on B failed: it polls
                # again after 2 s, through the proxy, which sends it to A)
                wait_js(page, "window.viewer.state === 'refused'", timeout=30)
                assert group.served("viewers", "a") > 0, "the page went on through A"
                assert box.state() == "ready", "the session stays open for another phone"
            finally:
                context.close()
