"""The box's answer carries transport-wide congestion control (the header extension and
``a=rtcp-fb:<pt> transport-cc``) on exactly the m-lines whose offer has both, on real offers
captured from Chromium 156 and Firefox 153 (tests/fixtures/), and on an older Firefox's (TWCC on
video only). No socket: the answer is created, never set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from appliance.stream.peers import h264_codecs, opus_codecs
from appliance.stream.twcc_compat import TWCC_URI, negotiate_transport_cc, offered_transport_cc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHROMIUM = (FIXTURES / "chromium-156-offer.sdp").read_text().replace("\n", "\r\n")
FIREFOX = (FIXTURES / "firefox-153-offer.sdp").read_text().replace("\n", "\r\n")


def _without_audio_twcc(offer: str) -> str:
    """``offer`` with TWCC taken off its audio m-line, as Firefox before 13x offered it."""
    head, audio = offer.split("m=audio", 1)
    audio, rest = audio.split("m=application", 1)
    audio = re.sub(r"a=extmap:\d+ " + re.escape(TWCC_URI) + "\r\n", "", audio)
    audio = re.sub(r"a=rtcp-fb:\d+ transport-cc\r\n", "", audio)
    return head + "m=audio" + audio + "m=application" + rest


def _media(answer: str) -> dict[str, str]:
    """The answer's media sections by kind."""
    return {part.split(" ", 1)[0]: part for part in answer.split("m=")[1:]}


async def _answer(offer: str, patch: bool = True) -> tuple[str, dict[str, int]]:
    pc = RTCPeerConnection()
    try:
        video = pc.addTransceiver("video", direction="sendonly")
        video.setCodecPreferences(h264_codecs())
        audio = pc.addTransceiver("audio", direction="sendonly")
        audio.setCodecPreferences(opus_codecs())
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        ids = {}
        if patch:
            ids = {
                "video": negotiate_transport_cc(video, offer),
                "audio": negotiate_transport_cc(audio, offer),
            }
        answer = await pc.createAnswer()
        return answer.sdp, ids
    finally:
        await pc.close()


def _twcc_in(section: str) -> tuple[int, list[str]]:
    found = re.search(r"a=extmap:(\d+) " + re.escape(TWCC_URI), section)
    return (int(found.group(1)) if found else 0), re.findall(
        r"a=rtcp-fb:(\d+) transport-cc", section
    )


def _answered_types(section: str) -> list[str]:
    return section.split("\r\n", 1)[0].split()[3:]


async def test_aiortc_alone_answers_no_transport_cc() -> None:
    answer, _ = await _answer(CHROMIUM, patch=False)
    assert TWCC_URI not in answer
    assert "transport-cc" not in answer


@pytest.mark.parametrize("offer", [CHROMIUM, FIREFOX], ids=["chromium-156", "firefox-153"])
async def test_both_m_lines_answer_it_when_the_offer_has_it_on_both(offer: str) -> None:
    answer, ids = await _answer(offer)
    media = _media(answer)
    for kind in ("video", "audio"):
        offered_id = offered_transport_cc(offer, "0" if kind == "video" else "1")[0]
        ext_id, fb_types = _twcc_in(media[kind])
        assert ids[kind] == ext_id == offered_id != 0, kind
        # the feedback on every answered media codec (not on RTX, which the offer leaves out)
        codecs = [
            t for t in _answered_types(media[kind]) if f"a=rtpmap:{t} rtx/" not in media[kind]
        ]
        assert fb_types == codecs, kind
    assert "transport-cc" not in media["application"]


async def test_an_offer_with_it_on_video_only_gets_it_on_video_only() -> None:
    offer = _without_audio_twcc(FIREFOX)
    answer, ids = await _answer(offer)
    media = _media(answer)
    assert ids == {"video": 7, "audio": 0}
    assert _twcc_in(media["video"])[0] == 7
    assert _twcc_in(media["audio"]) == (0, [])
    assert "transport-cc" not in media["audio"]


async def test_the_extension_without_the_feedback_answers_neither() -> None:
    """Chromium turns TWCC off when the two disagree: answer both or none."""
    offer = re.sub(r"a=rtcp-fb:\d+ transport-cc\r\n", "", CHROMIUM)
    answer, ids = await _answer(offer)
    assert ids == {"video": 0, "audio": 0}
    assert TWCC_URI not in answer
    assert "transport-cc" not in answer


async def test_the_feedback_without_the_extension_answers_neither() -> None:
    offer = re.sub(r"a=extmap:\d+ " + re.escape(TWCC_URI) + "\r\n", "", CHROMIUM)
    answer, ids = await _answer(offer)
    assert ids == {"video": 0, "audio": 0}
    assert "transport-cc" not in answer


def test_the_offer_is_read_per_m_line() -> None:
    assert offered_transport_cc(CHROMIUM, "0") == (
        4,
        {96, 98, 100, 35, 37, 102, 104, 108, 114, 116, 39, 41, 43, 45, 47, 49},
    )
    assert offered_transport_cc(CHROMIUM, "1") == (4, {111})
    assert offered_transport_cc(CHROMIUM, "2") == (0, set())
    assert offered_transport_cc(_without_audio_twcc(FIREFOX), "1") == (0, set())
    assert offered_transport_cc(CHROMIUM, "9") == (0, set())
