"""aiortc's private attributes the sound needs, tested like :mod:`appliance.stream.compat`'s
(tests/unit/test_compat_private.py):

- the answer's Opus parameters: stereo and in-band FEC (:func:`opus_stereo_fec`);
- a second transceiver of one kind (the room's audio m-line beside the scanner's) moved onto
  the offer's BUNDLE transport like the first (:func:`bundle_with_offer`).
"""

from __future__ import annotations

from typing import Any

#: What the box's answer says of its Opus (RFC 7587): it sends stereo, with in-band FEC.
OPUS_ANSWER_PARAMETERS = {"stereo": 1, "useinbandfec": 1}


def opus_stereo_fec(transceiver: Any) -> None:
    """Write ``stereo=1; useinbandfec=1`` in the answer's Opus fmtp: call between the remote
    description and the answer. aiortc answers its own Opus codec, without parameters; the
    negotiated list (``_codecs``) is the transceiver's own copy."""
    for codec in transceiver._codecs:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters.update(OPUS_ANSWER_PARAMETERS)


def bundle_with_offer(transceiver: Any) -> None:
    """Call right after ``addTransceiver``, before the remote description. Under aiortc's
    default (balanced) bundle policy a second transceiver of a kind is made on the first one's
    transport and marked bundled, so the offer's BUNDLE group never moves it when it moves the
    first: it would be left on a transport that is discarded, and send nothing. Unmarked, the
    offer's group moves it onto the shared transport with the others."""
    transceiver._bundled = False
