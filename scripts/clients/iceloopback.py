"""Lets aiortc reach a server on the same host when the host has no address but loopback.

aioice (aiortc's ICE agent) never gathers 127.0.0.1 or ::1. That is harmless on an ordinary host: its
candidate on, say, eth0 reaches a server's 127.0.0.1 candidate through the kernel's local routing. In a
network namespace with only `lo` (a sandbox, a CI container) it gathers nothing at all and ICE cannot start.
So when the WHIP URL names a loopback host and aioice finds no other address, this offers loopback; in every
other case aioice is left exactly as it is.
"""

import ipaddress
import urllib.parse

import aioice.ice


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def enable_for(url):
    if not _is_loopback(urllib.parse.urlsplit(url).hostname or ""):
        return
    gather = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4, use_ipv6):
        addresses = gather(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        if not addresses and use_ipv4:
            addresses.append("127.0.0.1")
        return addresses

    # aioice looks the function up in its module on every gathering, so replacing it there is enough.
    aioice.ice.get_host_addresses = with_loopback
