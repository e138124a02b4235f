#!/usr/bin/python3
"""Subscribe to one publisher of an IVS Real-Time stage (or openstage) with aiortc, decode what arrives for
a while, print the counts, DELETE the session and exit: 0 if both video and audio frames were decoded.

    /usr/bin/python3 aiortc_subscribe.py WHIP_URL TOKEN PUBLISHER_ID [--seconds N]

The subscription is a POST of a recvonly audio+video offer to <WHIP_URL>/subscribe/<PUBLISHER_ID> (the path
IVS's own samples use; redirects are followed with the Authorization header kept). The token needs
SUBSCRIBE. Run it with Debian's /usr/bin/python3, where python3-aiortc installs. The last line on stdout is
machine-readable: "aiortc-subscribe: result video_frames=N audio_frames=N video_size=WxH".

FFmpeg's H.264 decoder may print "non-existing PPS 0 referenced" for the first frames: a subscriber joins
mid-stream and cannot decode until the publisher's next IDR (with its SPS and PPS) arrives.
"""

import argparse
import asyncio
import sys
import time
import urllib.parse

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

import iceloopback
import whiphttp

P = "aiortc-subscribe"


def log(msg):
    whiphttp.log(P, msg)


async def consume(track, counts):
    """Pulls decoded frames: aiortc decodes (H.264 through PyAV, Opus through libopus) only when asked."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        counts[track.kind] += 1
        if track.kind == "video":
            counts["size"] = f"{frame.width}x{frame.height}"


async def run(args):
    pc = RTCPeerConnection()
    # Audio in mid 0, video in mid 1, both recvonly: the offer asks for media and sends none.
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    counts = {"audio": 0, "video": 0, "size": "0x0"}
    readers = []

    @pc.on("track")
    def _(track):
        log(f"track {track.kind}")
        readers.append(asyncio.ensure_future(consume(track, counts)))

    watch = whiphttp.ConnectionWatch(pc, P)

    await pc.setLocalDescription(await pc.createOffer())
    target = args.whip_url.rstrip("/") + "/subscribe/" + urllib.parse.quote(args.publisher_id, safe="")
    loop = asyncio.get_running_loop()
    try:
        answer, location = await loop.run_in_executor(
            None, whiphttp.post_offer, target, args.token, pc.localDescription.sdp, P)
    except whiphttp.WHIPError as e:
        await pc.close()
        whiphttp.fail(P, f"subscribe refused: {e}")
    log(f"answer received; session {location}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    await watch.connected(args.connect_timeout)

    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        log(f"decoded: video frames {counts['video']} ({counts['size']}), audio frames {counts['audio']}")

    if location and not args.no_delete:
        status = await loop.run_in_executor(None, whiphttp.delete, location, args.token, P)
        log(f"DELETE {location} -> {status}")
    await pc.close()
    for r in readers:
        r.cancel()
    log(f"result video_frames={counts['video']} audio_frames={counts['audio']} video_size={counts['size']}")
    if counts["video"] == 0 or counts["audio"] == 0:
        whiphttp.fail(P, "no video or no audio was decoded")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("whip_url", help="the token's whip_url")
    ap.add_argument("token", help="the participant token (needs SUBSCRIBE)")
    ap.add_argument("publisher_id", help="the participant id of the publisher to receive")
    ap.add_argument("--seconds", type=float, default=4, help="how long to receive once connected (default 4)")
    ap.add_argument("--connect-timeout", type=float, default=15, help="seconds to wait for ICE and DTLS (default 15)")
    ap.add_argument("--no-delete", action="store_true", help="just close, without DELETE (as IVS's samples do)")
    args = ap.parse_args()
    iceloopback.enable_for(args.whip_url)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
