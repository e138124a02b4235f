"""The HTTP half of a WHIP client (RFC 9725), and the wait for the media connection, shared by the aiortc
scripts beside this file.

Only the standard library: Debian's python3-aiortc does not pull in aiohttp, and urllib refuses to
follow a 307 for a POST, which is exactly what an IVS-style global endpoint answers. So redirects are
followed here by hand, re-sending the method, the body and the Authorization header, as IVS documents
that WHIP clients must ("persist headers in the redirected request").
"""

import asyncio
import http.client
import sys
import time
import urllib.parse

import aiortc

# The standard library's HTTP client names itself Python-urllib/X.Y (urllib is its front end), a name
# User-Agent parsers know; aiortc's version follows for whoever reads the server's logs.
USER_AGENT = "Python-urllib/%d.%d aiortc/%s" % (sys.version_info[0], sys.version_info[1], aiortc.__version__)

# Statuses that are followed. 307 and 308 keep the method by definition (RFC 9110 §15.4.8-9); IVS's
# own samples also re-POST on 301 and 302, so those are treated the same way.
REDIRECTS = (301, 302, 307, 308)
MAX_REDIRECTS = 5


class WHIPError(Exception):
    """A non-2xx final answer."""

    def __init__(self, status, body, url):
        super().__init__(f"HTTP {status} from {url}: {body[:300]!r}")
        self.status = status
        self.body = body


def log(prefix, msg):
    print(f"{prefix}: {msg}", flush=True)


def request(method, url, token, body=None, content_type=None, prefix="whip", timeout=15):
    """Sends one WHIP request, following redirects by hand.

    Returns (status, headers, body bytes, final URL). The final URL matters: a relative Location in the
    answer is relative to it, not to the URL first asked.
    """
    for _ in range(MAX_REDIRECTS + 1):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url}")
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname, u.port, timeout=timeout)
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        if resp.status in REDIRECTS:
            loc = hdrs.get("location")
            if not loc:
                raise WHIPError(resp.status, b"redirect without Location", url)
            nxt = urllib.parse.urljoin(url, loc)
            log(prefix, f"{method} {url} -> {resp.status}, following to {nxt} (Authorization kept)")
            url = nxt
            continue
        if resp.status // 100 != 2:
            raise WHIPError(resp.status, data.decode("utf-8", "replace"), url)
        return resp.status, hdrs, data, url
    raise WHIPError(0, f"more than {MAX_REDIRECTS} redirects".encode(), url)


def post_offer(url, token, sdp, prefix):
    """POSTs an SDP offer; returns (answer SDP, absolute session URL or None)."""
    status, hdrs, data, final = request("POST", url, token, sdp.encode(), "application/sdp", prefix)
    if status != 201:
        # RFC 9725 §4.2 says 201; accept any 2xx with an answer, but say so.
        log(prefix, f"note: answered {status}, not 201")
    loc = hdrs.get("location")
    return data.decode(), (urllib.parse.urljoin(final, loc) if loc else None)


def delete(url, token, prefix):
    """Ends the session (RFC 9725 §4.2); returns the status."""
    status, _, _, _ = request("DELETE", url, token, prefix=prefix)
    return status


def fail(prefix, msg, code=1):
    print(f"{prefix}: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


class ConnectionWatch:
    """Follows a peer connection's state from before the offer is made, and waits for "connected"."""

    def __init__(self, pc, prefix):
        self.pc, self.prefix = pc, prefix
        self.state = "new"
        self.changed = asyncio.Event()

        @pc.on("connectionstatechange")
        def _():
            self.state = pc.connectionState
            log(prefix, f"connection {pc.connectionState}")
            self.changed.set()

    async def connected(self, timeout):
        """Returns once connected; closes the connection and exits on failure or after timeout seconds."""
        deadline = time.monotonic() + timeout
        while self.state != "connected":
            if self.state in ("failed", "closed") or time.monotonic() > deadline:
                await self.pc.close()
                fail(self.prefix, f"media did not connect (state {self.state})")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
