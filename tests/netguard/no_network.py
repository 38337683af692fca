"""No network, ever: imported by conftest.py and, via sitecustomize, by every subprocess.

Any attempt to resolve a host name or open a connection to another machine raises at once, so
a test that would download (ImageNet weights, say) fails fast instead of hanging or passing
only when online. The loopback interface stays open: the studio's browser tests talk to a
local web server and to chromedriver, and nothing on loopback leaves the machine.
"""

import ipaddress
import socket

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


class NetworkAccessInTests(OSError):
    """An OSError, so urllib reports it as a failed connection (URLError), like being offline."""


def _is_local(host) -> bool:
    """True for loopback names and addresses (and None/"": a local bind, no lookup)."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is None or str(host).lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _address_is_local(address) -> bool:
    # AF_UNIX sockets take a path (str/bytes), never a host: they cannot leave the machine.
    if not isinstance(address, tuple):
        return True
    return _is_local(address[0])


def _refuse(*args, **kwargs):
    raise NetworkAccessInTests(f"network access is not allowed in tests: {args[:2]}")


_getaddrinfo = socket.getaddrinfo
_create_connection = socket.create_connection
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local(host):
        _refuse(host, *args)
    return _getaddrinfo(host, *args, **kwargs)


def _guarded_create_connection(address, *args, **kwargs):
    if not _address_is_local(address):
        _refuse(address)
    return _create_connection(address, *args, **kwargs)


def _guarded_connect(self, address):
    if not _address_is_local(address):
        _refuse(self, address)
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    if not _address_is_local(address):
        _refuse(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = _guarded_getaddrinfo
socket.create_connection = _guarded_create_connection
socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
