"""The shaped loopback link of `make demo` and `benchmarks/bench_delivery.py` carries what it is set to.

Loopback only, a few MB, well under a second: the rate must hold from below (never faster than
the link plus one banked slice) and on average (a late timer is caught up, not lost).
"""

from __future__ import annotations

import socket
import threading
import time

from medcodec.service.demo import ShapingProxy


def _serve_once(payload: bytes) -> tuple[int, threading.Thread]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1)
            conn.sendall(payload)
        listener.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_shaped_link_runs_at_its_rate() -> None:
    size, rate = 6_000_000, 20e6  # 0.30 s on the wire
    port, thread = _serve_once(bytes(size))
    proxy = ShapingProxy(port, rate=rate)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            t0 = time.perf_counter()
            sock.sendall(b"x")
            got = 0
            while got < size:
                chunk = sock.recv(1 << 20)
                assert chunk, "connection closed early"
                got += len(chunk)
            elapsed = time.perf_counter() - t0
    finally:
        proxy.close()
        thread.join(5)
    ideal = size / rate
    assert elapsed >= ideal - ShapingProxy.BURST / rate - 0.01, f"{elapsed:.3f} s: faster than the link"
    # on average at the rate: scheduling each slice from "now" gave ~82 % of it (1.2x the time)
    assert elapsed <= ideal * 1.12 + 0.03, f"{elapsed:.3f} s for {ideal:.3f} s of data: the link loses time"
