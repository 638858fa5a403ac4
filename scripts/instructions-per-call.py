#!/usr/bin/env python3
"""The server's instructions per live call-second, counted by callgrind while
`hotline bench` places a few calls of its usual pattern: the measure to
compare two builds by on a noisy machine, where CPU time moves by more than
most changes do (instructions are not time: a cache miss costs none, so
check a win with `hotline bench` too). The guest's compiled functions are
named from wasmtime's perf map (`HOTLINE_GUEST_PERFMAP=1`). The server logs
as it does by default, unless `RUST_LOG` says otherwise.

Needs valgrind (Debian: valgrind). The server runs about fifty times slower
under it, hence the few calls.

usage: scripts/instructions-per-call.py [path/to/hotline] [calls] [top]
"""
import bisect, glob, os, re, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/hotline"
calls = int(sys.argv[2]) if len(sys.argv) > 2 else 5
top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
PORT, SECS, COUNTED = 18090, 14, 8  # counted: the middle of the calls, after they all started

def ready():
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz", timeout=1).status == 200
    except OSError:
        return False

def bench(levels, secs, **kw):
    return subprocess.Popen([binary, "bench", "--url", f"http://127.0.0.1:{PORT}", "--levels", str(levels),
                             "--secs", str(secs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)

with tempfile.TemporaryDirectory() as out:
    dump = os.path.join(out, "callgrind.out")
    env = dict(os.environ, PORT=str(PORT), HOTLINE_BIND="127.0.0.1", HOTLINE_DATA_DIR="off",
               HOTLINE_GUEST_PERFMAP="1")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--smc-check=all-non-file", "--instr-atstart=no",
                               f"--callgrind-out-file={dump}", binary, "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            if ready():
                break
            time.sleep(1)
        else:
            sys.exit("the server did not become ready under valgrind")
        bench(2, 3).wait()  # every lazy path taken once, uncounted
        load = bench(calls, SECS)
        time.sleep((SECS - COUNTED) / 2)
        control = lambda *args: subprocess.run(["callgrind_control", *args, str(server.pid)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        control("-i", "on")
        time.sleep(COUNTED)
        control("-i", "off")
        control("-d")
        load.wait()
    finally:
        server.terminate()
        server.wait()
    counted = next(f for f in glob.glob(dump + "*") if "Trigger: dump" in open(f).read(4096))
    report = subprocess.run(["callgrind_annotate", "--threshold=99", counted], capture_output=True, text=True).stdout
    perfmap = f"/tmp/perf-{server.pid}.map"
    symbols = []
    if os.path.exists(perfmap):
        for line in open(perfmap):
            start, size, name = line.rstrip("\n").split(" ", 2)
            symbols.append((int(start, 16), int(size, 16), name))
        symbols.sort()
        os.remove(perfmap)
    starts = [s[0] for s in symbols]

    def name_of(function):
        jit = re.match(r"\?\?\?:0x([0-9a-f]+)", function)
        if not jit:
            return re.sub(r"^.*?:(?=[<\w])", "", function, count=1)
        address = int(jit.group(1), 16)
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < symbols[i][0] + symbols[i][1]:
            return "guest " + symbols[i][2]
        return function

    rows, total = [], None
    for line in report.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in m.group(2):
            total = n
        else:
            rows.append((n, name_of(m.group(2))))
    print(f"{total:,} instructions over {COUNTED} s of {calls} calls: "
          f"{total // (calls * COUNTED):,} per call-second")
    for n, name in rows[:top]:
        print(f"{100 * n / total:6.2f} %  {name[:140]}")
