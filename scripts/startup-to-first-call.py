#!/usr/bin/env python3
"""Process start to the first call answered: a voice webhook posted the moment the
port accepts, answered with `<Connect><Stream>` (held while the guest loads, not
refused). Runs each start uncached (an empty cache directory) and cached (the
same directory again).

usage: scripts/startup-to-first-call.py [path/to/hotline] [runs]
"""
import os, socket, subprocess, sys, tempfile, time, statistics

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/hotline"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
BODY = b"CallSid=CAstartup&From=%2B15550100000"

def webhook(port):
    """The TwiML's status and whether it holds a <Stream>, or None if the port is closed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /webhook/incoming_call HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data.split(b" ")[1], b"<Stream" in data
    except (OSError, IndexError):
        return None

def first_call(port, cache):
    env = dict(os.environ, PORT=str(port), HOTLINE_BIND="127.0.0.1", RUST_LOG="warn", HOTLINE_CACHE_DIR=cache)
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < 20:
            answer = webhook(port)
            if answer is not None:
                assert answer == (b"200", True), f"refused: {answer}"
                return (time.perf_counter() - t0) * 1000
            time.sleep(0.0002)
        raise SystemExit("no answer in 20 s")
    finally:
        p.terminate(); p.wait()

uncached, cached = [], []
for i in range(runs):
    with tempfile.TemporaryDirectory() as cache:
        uncached.append(first_call(29000 + 2 * i, cache))
        cached.append(first_call(29001 + 2 * i, cache))
for name, xs in (("uncached", uncached), ("cached", cached)):
    print(f"start → first call answered with a stream, {name}: median {statistics.median(xs):.1f} ms, max {max(xs):.1f} ms (n={runs})")
