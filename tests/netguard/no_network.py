"""No network, ever: imported by conftest.py and, via sitecustomize, by every subprocess.

Any attempt to resolve a host name or open a connection raises at once, so a test that would
download (ImageNet weights, say) fails fast instead of hanging or passing only when online.
"""

import socket


class NetworkAccessInTests(OSError):
    """An OSError, so urllib reports it as a failed connection (URLError), like being offline."""




def _refuse(*args, **kwargs):
    raise NetworkAccessInTests(f"network access is not allowed in tests: {args[:2]}")


socket.getaddrinfo = _refuse
socket.create_connection = _refuse
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
