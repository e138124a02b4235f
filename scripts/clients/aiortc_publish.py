#!/usr/bin/python3
"""Publish to an IVS Real-Time stage (or openstage) over WHIP with aiortc: generated H.264 video and an
Opus tone, for a while, then DELETE the session and exit 0.

    /usr/bin/python3 aiortc_publish.py WHIP_URL TOKEN [--seconds N]

WHIP_URL is the token's whip_url, or any URL that redirects to it (IVS's global endpoint, openstage's host
root). Run it with Debian's /usr/bin/python3, where python3-aiortc installs. Progress goes to stdout, one
line at a time; failures to stderr with a non-zero exit.
"""

import argparse
import array
import asyncio
import fractions
import math
import sys
import time

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

import iceloopback
import whiphttp

P = "aiortc-publish"


class Paced(MediaStreamTrack):
    """A generated track paced in real time: aiortc's sender pulls frames as fast as recv returns them."""

    def __init__(self, clock_rate, step):
        super().__init__()
        self.clock_rate = clock_rate
        self.step = step  # clock ticks per frame
        self.pts = 0
        self.start = None
        self.frames = 0

    async def _next_pts(self):
        if self.start is None:
            self.start = time.monotonic()
        else:
            self.pts += self.step
            wait = self.start + self.pts / self.clock_rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self.frames += 1
        return self.pts, fractions.Fraction(1, self.clock_rate)


class Tone(Paced):
    """A 440 Hz sine, 20 ms frames of 48 kHz mono s16 (aiortc's Opus encoder resamples to what it needs)."""

    kind = "audio"
    RATE = 48000
    SAMPLES = 960

    def __init__(self):
        super().__init__(self.RATE, self.SAMPLES)

    async def recv(self):
        pts, tb = await self._next_pts()
        w = 2 * math.pi * 440 / self.RATE
        pcm = array.array("h", (int(6000 * math.sin(w * (pts + i))) for i in range(self.SAMPLES)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = self.RATE
        frame.pts, frame.time_base = pts, tb
        return frame


class Bars(Paced):
    """A grey picture with a bright bar sweeping across, so every frame differs and P-frames carry data,
    encoded to H.264 here rather than by aiortc. aiortc 1.4.0's own H.264 encoder sends one IDR and then
    never another: it has no keyframe interval setting and ignores PLI (it resets every frame's picture
    type). IVS wants an IDR every 1 or 2 s, and a subscriber who joins later needs one, so this track
    encodes with libx264 itself (through PyAV, which aiortc already uses) and hands aiortc encoded
    packets, which its sender packetizes as they are (RFC 6184 STAP-A/FU-A).

    640x360 at 30 fps, constrained baseline, no B-frames, an IDR every second: inside every IVS limit."""

    kind = "video"

    def __init__(self, width=640, height=360, fps=30, bitrate=1_000_000):
        super().__init__(90000, 90000 // fps)
        self.width, self.height, self.fps = width, height, fps
        self.keyframes = 0
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.bit_rate = bitrate
        enc.framerate = fractions.Fraction(fps, 1)
        enc.time_base = fractions.Fraction(1, fps)
        # zerolatency: no lookahead, so each frame comes out at once; the SPS and PPS are repeated before
        # every IDR (libavcodec's default without a global header), so each IDR is decodable on its own.
        # g: an IDR every second; bf 0: no B-frames (baseline has none anyway, and IVS refuses them);
        # log=0: x264's errors only (importing aiortc hands FFmpeg's log back to FFmpeg's own printer, which
        # would print x264's statistics at exit).
        enc.options = {"profile": "baseline", "preset": "veryfast", "tune": "zerolatency", "g": str(fps),
                       "bf": "0", "sc_threshold": "0", "x264-params": "log=0"}
        enc.open()
        self.enc = enc

    def _picture(self, index):
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        y, u, v = frame.planes
        row = bytearray([70]) * y.line_size
        x = (index * 8) % (self.width - 48)
        row[x : x + 48] = bytes([220]) * 48
        y.update(bytes(row) * self.height)
        u.update(bytes([128]) * u.buffer_size)
        v.update(bytes([128]) * v.buffer_size)
        frame.pts, frame.time_base = index, fractions.Fraction(1, self.fps)
        return frame

    def _encode(self, index):
        return self.enc.encode(self._picture(index))

    async def recv(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._next_pts()
            # Encoding takes a few milliseconds: off the event loop, which also runs ICE and DTLS.
            packets = await loop.run_in_executor(None, self._encode, self.frames - 1)
            if packets:
                pkt = packets[0]  # zerolatency: one packet per frame
                if pkt.is_keyframe:
                    self.keyframes += 1
                pkt.time_base = fractions.Fraction(1, self.fps)
                return pkt


def prefer_h264(transceiver):
    """Offers H.264 only on the video transceiver: IVS (and openstage's default `ivs` media policy) accepts
    nothing else, and aiortc would otherwise list VP8 first. Constrained baseline (42e01f) goes first: it is
    what libx264's baseline profile produces (no FMO, ASO or redundant slices)."""
    caps = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/h264"]
    if not caps:
        whiphttp.fail(P, "this aiortc has no H.264 codec")
    caps.sort(key=lambda c: c.parameters.get("profile-level-id") != "42e01f")
    transceiver.setCodecPreferences(caps)


async def run(args):
    pc = RTCPeerConnection()
    tone, bars = Tone(), Bars()
    # Audio in mid 0, video in mid 1, as the IVS SDKs order them.
    pc.addTransceiver(tone, direction="sendonly")
    prefer_h264(pc.addTransceiver(bars, direction="sendonly"))

    watch = whiphttp.ConnectionWatch(pc, P)

    # aiortc gathers every candidate inside setLocalDescription (it does not trickle), so the offer it
    # then holds is complete: one round trip, as WHIP wants.
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    log(f"offer ready: {offer.count('a=candidate:')} candidates, video codecs {codecs_in(offer, 'video')}")
    loop = asyncio.get_running_loop()
    try:
        answer, location = await loop.run_in_executor(None, whiphttp.post_offer, args.whip_url, args.token, offer, P)
    except whiphttp.WHIPError as e:
        await pc.close()
        whiphttp.fail(P, f"publish refused: {e}")
    log(f"answer received: video codecs {codecs_in(answer, 'video')}; session {location}")
    if "H264" not in codecs_in(answer, "video"):
        await pc.close()
        whiphttp.fail(P, "the answer does not accept H.264 video")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    await watch.connected(args.connect_timeout)

    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        log(f"sending: video frames {bars.frames} ({bars.keyframes} IDR), audio frames {tone.frames}, connection {pc.connectionState}")
        if pc.connectionState != "connected":
            await pc.close()
            whiphttp.fail(P, f"connection lost ({pc.connectionState})")

    if location:
        status = await loop.run_in_executor(None, whiphttp.delete, location, args.token, P)
        log(f"DELETE {location} -> {status}")
    else:
        log("no Location in the answer: closing without DELETE")
    await pc.close()
    log(f"done: sent {bars.frames} video frames ({bars.keyframes} IDR) and {tone.frames} audio frames")


def codecs_in(sdp, kind):
    """The codec names of the first m-section of kind (rtpmap order)."""
    names, inside = [], False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if inside:
                break
            inside = line.startswith(f"m={kind} ")
        elif inside and line.startswith("a=rtpmap:"):
            names.append(line.split(" ", 1)[1].split("/")[0])
    return names


def log(msg):
    whiphttp.log(P, msg)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("whip_url", help="the token's whip_url, or a URL that redirects to it")
    ap.add_argument("token", help="the participant token (needs PUBLISH)")
    ap.add_argument("--seconds", type=float, default=5, help="how long to publish once connected (default 5)")
    ap.add_argument("--connect-timeout", type=float, default=15, help="seconds to wait for ICE and DTLS (default 15)")
    args = ap.parse_args()
    iceloopback.enable_for(args.whip_url)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
