#!/usr/bin/env python3
"""Process start to first `/healthz` 200, and to first `/readyz` 200 (guest loaded
and validated). Set HOTLINE_CACHE_DIR to a warmed directory to measure a cached start.

usage: scripts/startup-to-healthz.py [path/to/hotline] [runs]
Polls over a raw socket every 0.2 ms so the figure is the server's, not the poller's.
"""
import os, socket, subprocess, sys, time, statistics

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/hotline"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10

def status(port, path):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return s.recv(64).split(b" ")[1]
    except OSError:
        return None

health, ready = [], []
for i in range(runs):
    port = 28000 + i
    env = dict(os.environ, PORT=str(port), HOTLINE_BIND="127.0.0.1", RUST_LOG="warn")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stderr=subprocess.DEVNULL)
    h = r = None
    while r is None and time.perf_counter() - t0 < 10:
        if h is None and status(port, "/healthz") == b"200":
            h = time.perf_counter() - t0
        if h is not None and status(port, "/readyz") == b"200":
            r = time.perf_counter() - t0
        time.sleep(0.0002)
    p.terminate(); p.wait()
    health.append(h * 1000); ready.append(r * 1000)
print(f"start → /healthz 200: median {statistics.median(health):.1f} ms, max {max(health):.1f} ms (n={runs})")
print(f"start → /readyz 200 (guest loaded + validated): median {statistics.median(ready):.1f} ms, max {max(ready):.1f} ms")
