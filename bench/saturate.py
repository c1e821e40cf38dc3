#!/usr/bin/env python3
"""CPU saturation: many concurrent CPU-heavy streams, probes timed meanwhile.

Opens STREAMS concurrent SendStreamingMessage requests of a factorization
that runs to its CPU-time budget, and while they run times GET /health, the
agent card and a cheap SendMessage ("2 + 2") every 20 ms. Prints how each
heavy stream ended (computed, shed with -32061, other) and the probes'
p50 / p99 / max latency. Fails when a probe took 100 ms or more at p99, or a
heavy stream got anything but an answer or -32061.

    python3 -m venv .venv && .venv/bin/pip install aiohttp
    .venv/bin/python bench/saturate.py http://127.0.0.1:8002/ [STREAMS] [SECONDS]
"""
import asyncio
import json
import sys
import time
import uuid

import aiohttp

HARD = "671998030559713968361666935769282348564453734211131263736711"
HEADERS = {"content-type": "application/json", "a2a-version": "1.0"}


def send(method, text):
    return json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": method,
        "params": {"message": {"role": "ROLE_USER", "messageId": str(uuid.uuid4()),
                               "parts": [{"text": text}]}},
    })


async def heavy(session, url, outcomes):
    """One streamed factorization: computed, shed or other."""
    try:
        async with session.post(url, data=send("SendStreamingMessage", f"prime factors {HARD}"),
                                headers=HEADERS) as resp:
            last = None
            async for line in resp.content:
                if line.startswith(b"data:"):
                    last = json.loads(line[5:])
            if last is None:
                kind = "other"
            elif last.get("error", {}).get("code") == -32061:
                kind = "shed"
            elif "error" in last:
                kind = f"error {last['error'].get('code')}"
            else:
                state = (last.get("result", {}).get("statusUpdate", {})
                         .get("status", {}).get("state"))
                kind = "computed" if state in ("TASK_STATE_COMPLETED", "TASK_STATE_FAILED") else "other"
    except Exception as e:  # a broken stream is a failure of the server
        kind = "other"
        outcomes.setdefault("errors", []).append(repr(e))
    outcomes[kind] = outcomes.get(kind, 0) + 1


async def probe(session, base, name, stop, times):
    while not stop.is_set():
        started = time.perf_counter()
        if name == "cheap":
            async with session.post(base, data=send("SendMessage", "2 + 2"), headers=HEADERS) as r:
                body = await r.json()
                ok = "result" in body or body.get("error", {}).get("code") == -32061
        else:
            path = "health" if name == "health" else ".well-known/agent-card.json"
            async with session.get(base + path) as r:
                await r.read()
                ok = r.status == 200
        times.setdefault(name, []).append((time.perf_counter() - started, ok))
        await asyncio.sleep(0.02)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8002/"
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    outcomes, times, stop = {}, {}, asyncio.Event()
    heavy_conn = aiohttp.TCPConnector(limit=0)
    probe_conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=heavy_conn, timeout=timeout) as hs, \
            aiohttp.ClientSession(connector=probe_conn, timeout=timeout) as ps:
        probes = [asyncio.create_task(probe(ps, base, n, stop, times))
                  for n in ("health", "card", "cheap")]
        started = time.perf_counter()
        heavies = [asyncio.create_task(heavy(hs, base, outcomes)) for _ in range(streams)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*probes)
        await asyncio.gather(*heavies)
        took = time.perf_counter() - started
    print(f"{streams} heavy streams in {took:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "errors"))
    for e in outcomes.get("errors", [])[:5]:
        print("  error:", e)
    # A deadline passed while queued (-32060) is a clear answer too.
    failed = any(k not in ("computed", "shed", "error -32060", "errors") for k in outcomes)
    for name, samples in times.items():
        lat = [t for t, _ in samples]
        bad = sum(1 for _, ok in samples if not ok)
        p99 = pct(lat, 0.99)
        print(f"probe {name:6}: {len(lat)} sent, {bad} failed, p50 {pct(lat, 0.5) * 1e3:.1f} ms, "
              f"p99 {p99 * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms")
        failed |= bad > 0 or p99 >= 0.1
    print("FAIL" if failed else "PASS")
    sys.exit(1 if failed else 0)


asyncio.run(main())
