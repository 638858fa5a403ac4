#!/usr/bin/env python3
"""What hostile clients get from a release `hotline` with default settings:
how long each kind of stalled connection lives, and `/healthz` latency while
thousands of idle connections and unstarted WebSockets are held.

    cargo build --release && python3 scripts/hostile-clients.py [--idle 5000] [--unstarted 2000]

Loopback only; Python's standard library only. Idle connections come from
127.0.0.2.., one address per thousand (the default per-address limit is
HOTLINE_MAX_CALLS + 64), so the numbers show the server's limits and
timeouts rather than the per-address cap.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import time

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "hotline")


async def open_from(host, port, source):
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def until_closed(reader, limit=40.0):
    """Seconds until the server closes the connection, and what it sent."""
    began = time.monotonic()
    got = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), timeout=limit)
            if not chunk:
                break
            got += chunk
    except (asyncio.TimeoutError, ConnectionResetError):
        pass
    return time.monotonic() - began, got


def upgrade_request(path="/ws/twilio-media"):
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: audio.twilio.com\r\n\r\n"
    ).encode()


def ws_text(payload: str) -> bytes:
    data = payload.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    n = len(data)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + masked


async def stream_token(host, port, call_sid):
    reader, writer = await asyncio.open_connection(host, port)
    body = f"CallSid={call_sid}".encode()
    writer.write(
        b"POST /webhook/incoming_call HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    _, got = await until_closed(reader, 10)
    writer.close()
    return re.search(rb'name="hotline_token" value="([^"]+)"', got).group(1).decode()


async def stalled(host, port):
    """Each kind of stalled connection, at once; seconds until each is closed."""
    async def silent():
        r, w = await asyncio.open_connection(host, port)
        return await until_closed(r)

    async def slowloris():
        r, w = await asyncio.open_connection(host, port)
        began = time.monotonic()

        async def drip():
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                try:
                    w.write(bytes([byte]))
                    await w.drain()
                except (ConnectionResetError, BrokenPipeError):
                    return
                await asyncio.sleep(1.0)

        task = asyncio.create_task(drip())
        _, got = await until_closed(r)
        task.cancel()
        return time.monotonic() - began, got

    async def idle_keepalive():
        r, w = await asyncio.open_connection(host, port)
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return await until_closed(r)

    async def half_body():
        r, w = await asyncio.open_connection(host, port)
        w.write(b"POST /webhook/incoming_call HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 1000\r\n\r\nCallSid=CA1")
        return await until_closed(r)

    async def endless_chunked():
        r, w = await asyncio.open_connection(host, port)
        w.write(b"POST /webhook/incoming_call HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nCallS")
        return await until_closed(r)

    async def unstarted_ws():
        r, w = await asyncio.open_connection(host, port)
        w.write(upgrade_request())
        return await until_closed(r)

    async def silent_stream():
        token = await stream_token(host, port, "CAsilent")
        r, w = await asyncio.open_connection(host, port)
        w.write(upgrade_request())
        await r.readuntil(b"\r\n\r\n")
        start = {"event": "start", "sequenceNumber": "1", "streamSid": "MZsilent",
                 "start": {"streamSid": "MZsilent", "accountSid": "AC1", "callSid": "CAsilent", "tracks": ["inbound"],
                           "customParameters": {"hotline_token": token},
                           "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
        w.write(ws_text(json.dumps(start)))
        return await until_closed(r)

    kinds = {
        "connection that sends nothing": silent,
        "slowloris (a header byte a second)": slowloris,
        "idle keep-alive after one request": idle_keepalive,
        "Content-Length 1000, 11 bytes sent": half_body,
        "chunked body that never ends": endless_chunked,
        "WebSocket upgraded, never started": unstarted_ws,
        "started stream gone silent": silent_stream,
    }
    results = await asyncio.gather(*(f() for f in kinds.values()))
    for (name, (secs, got)) in zip(kinds, results):
        print(f"  {name:40s} closed after {secs:5.1f} s   ({describe(got)})")


def describe(got: bytes) -> str:
    """An HTTP answer's status line, or a WebSocket's close code."""
    if got.startswith(b"HTTP/") and not got.startswith(b"HTTP/1.1 101"):
        return got.split(b"\r\n", 1)[0].decode(errors="replace")
    close = got.rfind(b"\x88")  # a close frame: opcode 8, FIN
    if close >= 0 and len(got) >= close + 4:
        return f"WebSocket close {int.from_bytes(got[close + 2:close + 4], 'big')}, then the close handshake's wait"
    return "nothing" if not got else "no close frame"


async def probe(host, port, secs):
    samples = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        began = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await asyncio.wait_for(r.read(), 5)
            w.close()
            samples.append((time.monotonic() - began) * 1000)
        except Exception:
            samples.append(float("inf"))
        await asyncio.sleep(0.05)
    return samples


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


async def hold(host, port, idle_n, unstarted_n):
    held = []
    for i in range(idle_n):
        source = f"127.0.0.{2 + i // 1000}"
        held.append(await open_from(host, port, source))
    upgraded = refused = 0
    for i in range(unstarted_n):
        source = f"127.0.1.{2 + i // 1000}"
        r, w = await open_from(host, port, source)
        w.write(upgrade_request())
        status = (await r.readline()).decode()
        if " 101 " in status:
            upgraded += 1
            held.append((r, w))
        else:
            refused += 1
    print(f"  held: {idle_n} idle connections, {upgraded} unstarted WebSockets ({refused} upgrades refused: call limit)")
    samples = await probe(host, port, 3.0)
    ok = [s for s in samples if s != float("inf")]
    print(f"  /healthz meanwhile: {len(ok)}/{len(samples)} answered, p50 {pct(ok, .5):.1f} ms, p99 {pct(ok, .99):.1f} ms")
    for _, w in held:
        w.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--unstarted", type=int, default=2000)
    ap.add_argument("--port", type=int, default=18123)
    args = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = dict(os.environ, PORT=str(args.port), HOTLINE_BIND="127.0.0.1", RUST_LOG="warn", HOTLINE_CACHE_DIR="off")
    server = subprocess.Popen([BIN, "serve"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", args.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(1.0)  # the guest compiles (no cache)
        print("stalled connections, default settings:")
        await stalled("127.0.0.1", args.port)
        print(f"holding {args.idle} idle connections and {args.unstarted} unstarted WebSockets:")
        await hold("127.0.0.1", args.port, args.idle, args.unstarted)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    asyncio.run(main())
