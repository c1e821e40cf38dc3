#!/usr/bin/env python3
"""Bounded soak of an abacus server: moderate mixed load for a fixed time,
the server's RSS and open file descriptors sampled every few seconds.

Needs Python >= 3.11 and one package, aiohttp, e.g. in a virtualenv:

    python3 -m venv .venv && .venv/bin/pip install aiohttp
    PYTHON=.venv/bin/python bench/soak.sh        # starts the server, runs this

Run directly against a server that is already running (its PID is needed for
the samples, so the server must be a local process):

    python3 bench/soak.py --url http://127.0.0.1:8002/ --pid PID --duration 600

Load: a pacer schedules --rate jobs a second (fixed, open loop) onto a queue
that --workers workers take from; a job the queue has no room for is counted
as dropped (the load generator fell behind). The job kinds:

  send_repeat  SendMessage of a few repeated questions (cache hits), answer checked
  send_unique  SendMessage "{n} + 1", a new n every time (cache misses), answer checked
  send_task    SendMessage of questions that become tasks (fibonacci, prime factors)
  stream       SendStreamingMessage (SSE) of all three kinds; the last event must be
               a final status (COMPLETED), the answer is checked where known
  get          GetTask of a task finished earlier: found, in the state it ended in
  cancel       a long task (factoring a 60-digit semiprime, returnImmediately, or
               streamed), canceled after a short pause: the canceled task, or
               -32002 TaskNotCancelable, are both right
  ws           one message on a WebSocket /stream from a small pool of sockets
               (each reused for --ws-reuse messages, then closed and reopened),
               frames read until {"type":"complete"}, the answer checked

Every job is bounded by --timeout. Outcomes per kind: ok, shed (JSON-RPC
-32061 overloaded, or a WebSocket error frame saying so: fine), errors
(anything else: wrong answer, other error code, HTTP status, broken socket)
and timeouts. Exit status 0 when every criterion holds (printed with the
figures), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import sys
import time
import uuid

import aiohttp

OVERLOADED = -32061
NOT_CANCELABLE = -32002
FINAL_STATES = {
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
    "TASK_STATE_INPUT_REQUIRED",
}
# Repeated questions and their answers (cache hits after the first).
REPEATED = [
    ("2 + 2", "4"),
    ("3 * 7", "21"),
    ("2^10", "1024"),
    ("what is 15% of 200", "30"),
    ("7/4", "1.75"),
]
# Questions that become tasks: (question, text the result artifact starts with, or None).
TASKS = [
    ("fibonacci 2000", "4224696333392304878706725602341482782579852840250681098010280137"),
    ("prime factors of 600851475143", "71 × 839 × 1471 × 6857"),
]
# A product of two 30-digit primes: factoring it runs until the CPU-time
# limit (5 s by default) unless canceled first.
HARD = "671998030559713968361666935769282348564453734211131263736711"

KINDS = ["send_repeat", "send_unique", "send_task", "stream", "get", "cancel", "ws"]
DEFAULT_MIX = "send_repeat=30,send_unique=15,send_task=8,stream=15,get=15,cancel=1,ws=15"


class Shed(Exception):
    """The server refused the request as overloaded (-32061): allowed."""


class Bad(Exception):
    """A wrong or unexpected answer."""


class Stats:
    def __init__(self) -> None:
        self.sent = self.ok = self.shed = self.errors = self.timeouts = 0
        self.texts: list[str] = []
        self.latencies: list[float] = []  # seconds, of the ok jobs

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.texts) < 5:
            self.texts.append(text[:300])


def message(text: str) -> dict:
    return {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": text}]}


def check_rpc_error(reply: dict) -> None:
    """Raises Shed or Bad for a JSON-RPC error reply."""
    err = reply.get("error")
    if err is None:
        return
    if err.get("code") == OVERLOADED:
        raise Shed()
    raise Bad(f"JSON-RPC error {err.get('code')}: {err.get('message')}")


def artifact_text(task: dict) -> str:
    for a in task.get("artifacts") or []:
        for p in a.get("parts") or []:
            if "text" in p:
                return p["text"]
    return ""


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a local process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_sample(pid: int) -> tuple[float, int, int]:
    """(RSS in MiB, open fds, threads) of a local process."""
    rss_kib = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss_kib / 1024, fds, threads


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.url if args.url.endswith("/") else args.url + "/"
        self.ws_url = self.url.replace("http://", "ws://", 1) + "stream"
        self.rng = random.Random(args.seed)
        self.stats = {k: Stats() for k in KINDS}
        self.unique = int(time.time()) * 1_000_000  # unique across runs against one server
        # Tasks that ended, with the state they ended in, for GetTask.
        self.finished: collections.deque[tuple[str, str]] = collections.deque(maxlen=5000)
        self.scheduled = self.dropped = 0
        self.session: aiohttp.ClientSession | None = None
        self.sockets: asyncio.Queue = asyncio.Queue()
        self.ws_opened = 0
        self.interval_max = 0.0  # slowest ok job since the last sample
        mix = dict(item.split("=") for item in args.mix.split(","))
        unknown = set(mix) - set(KINDS)
        if unknown:
            sys.exit(f"soak: unknown kinds in --mix: {sorted(unknown)}")
        self.kinds = [k for k in KINDS if float(mix.get(k, 0)) > 0]
        self.weights = [float(mix[k]) for k in self.kinds]

    def next_n(self) -> int:
        self.unique += 1
        return self.unique

    # ---- JSON-RPC over HTTP -------------------------------------------------

    async def rpc(self, method: str, params: dict) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with self.session.post(self.url, json=body) as r:
            text = await r.text()
            try:
                reply = json.loads(text)
            except ValueError:
                raise Bad(f"HTTP {r.status}, not JSON: {text[:120]!r}") from None
            if r.status != 200:
                check_rpc_error(reply)
                raise Bad(f"HTTP {r.status}: {text[:200]}")
            check_rpc_error(reply)
            if "result" not in reply:
                raise Bad(f"no result: {text[:200]}")
            return reply["result"]

    async def stream(self, params: dict, method: str = "SendStreamingMessage", on_first=None) -> list[dict]:
        """The events of an SSE reply (each a JSON-RPC result), read to the end."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        events: list[dict] = []
        async with self.session.post(self.url, json=body) as r:
            ctype = r.headers.get("Content-Type", "")
            if not ctype.startswith("text/event-stream"):
                # a refusal before the stream starts is a plain JSON-RPC reply
                text = await r.text()
                try:
                    check_rpc_error(json.loads(text))
                except ValueError:
                    pass
                raise Bad(f"HTTP {r.status} {ctype}, not a stream: {text[:200]}")
            data: list[str] = []
            async for raw in r.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    ev = json.loads("\n".join(data))
                    data = []
                    check_rpc_error(ev)
                    events.append(ev["result"])
                    if len(events) == 1 and on_first is not None:
                        await on_first(ev["result"])
            if data:
                ev = json.loads("\n".join(data))
                check_rpc_error(ev)
                events.append(ev["result"])
        if not events:
            raise Bad("empty stream")
        return events

    @staticmethod
    def final_state(events: list[dict]) -> tuple[str, str]:
        """(task id, final state) of a stream; Bad unless it ends with a final status."""
        last = events[-1]
        upd = last.get("statusUpdate")
        if upd is None:
            raise Bad(f"stream did not end with a status update: {json.dumps(last)[:200]}")
        state = upd["status"]["state"]
        if state not in FINAL_STATES:
            raise Bad(f"stream ended in a non-final state {state}")
        return upd["taskId"], state

    # ---- job kinds ----------------------------------------------------------

    async def send_repeat(self) -> None:
        q, want = self.rng.choice(REPEATED)
        res = await self.rpc("SendMessage", {"message": message(q)})
        got = res.get("message", {}).get("parts", [{}])[0].get("text")
        if got != want:
            raise Bad(f"{q!r}: expected message {want!r}, got {json.dumps(res)[:200]}")

    async def send_unique(self) -> None:
        n = self.next_n()
        res = await self.rpc("SendMessage", {"message": message(f"{n} + 1")})
        got = res.get("message", {}).get("parts", [{}])[0].get("text")
        if got != str(n + 1):
            raise Bad(f"'{n} + 1': expected message {n + 1}, got {json.dumps(res)[:200]}")

    def task_question(self) -> tuple[str, str | None]:
        if self.rng.random() < 0.5:
            return self.rng.choice(TASKS)
        return f"fibonacci {self.rng.randrange(1000, 20000)}", None  # a task, not the same one

    async def send_task(self) -> None:
        q, want = self.task_question()
        res = await self.rpc("SendMessage", {"message": message(q), "configuration": {"historyLength": 0}})
        task = res.get("task")
        if task is None:
            raise Bad(f"{q!r}: expected a task, got {json.dumps(res)[:200]}")
        state = task["status"]["state"]
        if state != "TASK_STATE_COMPLETED":
            raise Bad(f"{q!r}: task ended {state}: {json.dumps(task['status'])[:200]}")
        if want is not None and not artifact_text(task).startswith(want):
            raise Bad(f"{q!r}: wrong result {artifact_text(task)[:80]!r}")
        self.finished.append((task["id"], state))

    async def stream_job(self) -> None:
        r = self.rng.random()
        if r < 0.4:
            q, want = self.rng.choice(REPEATED)
        elif r < 0.7:
            n = self.next_n()
            q, want = f"{n} + 1", str(n + 1)
        else:
            q, want = self.task_question()
        events = await self.stream({"message": message(q)})
        task_id, state = self.final_state(events)
        if state != "TASK_STATE_COMPLETED":
            raise Bad(f"stream {q!r} ended {state}")
        texts = [
            p.get("text", "")
            for e in events
            if "artifactUpdate" in e
            for p in e["artifactUpdate"]["artifact"].get("parts", [])
        ]
        if want is not None and not any(t.startswith(want) for t in texts):
            raise Bad(f"stream {q!r}: no artifact {want[:40]!r} in {texts!r:.200}")
        self.finished.append((task_id, state))

    async def get(self) -> None:
        if not self.finished:
            return await self.send_task()  # nothing to look up yet
        task_id, state = self.rng.choice(self.finished)
        res = await self.rpc("GetTask", {"id": task_id, "historyLength": 0})
        if res.get("id") != task_id:
            raise Bad(f"GetTask {task_id}: got {json.dumps(res)[:200]}")
        if res["status"]["state"] != state:
            raise Bad(f"GetTask {task_id}: state {res['status']['state']}, it ended {state}")

    async def cancel_rpc(self, task_id: str) -> str:
        """CancelTask; the task's final state. -32002 means it had already ended."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "CancelTask", "params": {"id": task_id}}
        async with self.session.post(self.url, json=body) as r:
            reply = json.loads(await r.text())
        err = reply.get("error")
        if err is not None and err.get("code") == NOT_CANCELABLE:
            res = await self.rpc("GetTask", {"id": task_id, "historyLength": 0})
            state = res["status"]["state"]
            if state not in FINAL_STATES:
                raise Bad(f"CancelTask {task_id}: -32002 but the task is {state}")
            return state
        check_rpc_error(reply)
        state = reply["result"]["status"]["state"]
        if state != "TASK_STATE_CANCELED":
            raise Bad(f"CancelTask {task_id}: state {state}")
        return state

    async def cancel(self) -> None:
        pause = self.rng.uniform(0.02, 0.1)
        if self.rng.random() < 0.5:
            # returnImmediately: the task comes back at once, then is canceled
            res = await self.rpc(
                "SendMessage",
                {"message": message(f"prime factors {HARD}"), "configuration": {"returnImmediately": True}},
            )
            task_id = res["task"]["id"]
            await asyncio.sleep(pause)
            state = await self.cancel_rpc(task_id)
        else:
            # streamed: cancel after the first event; the stream must end canceled
            async def on_first(first: dict) -> None:
                await asyncio.sleep(pause)
                await self.cancel_rpc(first["task"]["id"])

            events = await self.stream({"message": message(f"prime factors {HARD}")}, on_first=on_first)
            task_id, state = self.final_state(events)
            if state != "TASK_STATE_CANCELED":
                raise Bad(f"canceled stream ended {state}")
        self.finished.append((task_id, state))

    async def ws(self) -> None:
        slot = await self.sockets.get()
        try:
            if slot["ws"] is None or slot["ws"].closed or slot["used"] >= self.args.ws_reuse:
                if slot["ws"] is not None:
                    await slot["ws"].close()
                slot["ws"] = await self.session.ws_connect(self.ws_url, headers={"A2A-Version": "1.0"})
                slot["used"] = 0
                self.ws_opened += 1
            slot["used"] += 1
            ws = slot["ws"]
            r = self.rng.random()
            if r < 0.5:
                q, want = "3 * 7", "21"
            elif r < 0.85:
                n = self.next_n()
                q, want = f"{n} * 3", str(n * 3)
            else:
                q, want = TASKS[0]
            await ws.send_str(json.dumps({"message": message(q)}))
            texts = []
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise Bad(f"ws {q!r}: {msg.type.name} before complete")
                frame = json.loads(msg.data)
                kind = frame.get("type")
                if kind == "message_part":
                    texts.append(frame["part"].get("text", ""))
                elif kind == "complete":
                    break
                elif kind == "error":
                    if "overloaded" in frame.get("error", ""):
                        raise Shed()
                    raise Bad(f"ws {q!r}: error frame {frame.get('error')!r}")
            if not any(t.startswith(want) for t in texts):
                raise Bad(f"ws {q!r}: no part {want[:40]!r} in {texts!r:.200}")
        except BaseException:
            # the socket's state is unknown after a failure: start a new one
            if slot["ws"] is not None:
                await slot["ws"].close()
                slot["ws"] = None
            raise
        finally:
            self.sockets.put_nowait(slot)

    # ---- driver -------------------------------------------------------------

    async def job(self, kind: str) -> None:
        st = self.stats[kind]
        st.sent += 1
        fn = self.stream_job if kind == "stream" else getattr(self, kind)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(self.args.timeout):
                await fn()
            st.ok += 1
            dt = time.monotonic() - t0
            st.latencies.append(dt)
            self.interval_max = max(self.interval_max, dt)
        except Shed:
            st.shed += 1
        except TimeoutError:
            st.timeouts += 1
        except Exception as e:  # noqa: BLE001 - every other outcome is an error
            st.error(f"{type(e).__name__}: {e}")

    async def worker(self, q: asyncio.Queue) -> None:
        while (kind := await q.get()) is not None:
            await self.job(kind)

    async def pacer(self, q: asyncio.Queue, end: float) -> None:
        loop = asyncio.get_running_loop()
        interval = 1 / self.args.rate
        t = loop.time()
        while t < end:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            self.scheduled += 1
            try:
                q.put_nowait(kind)
            except asyncio.QueueFull:
                self.dropped += 1
            t += interval
            delay = t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    def totals(self) -> tuple[int, int, int, int, int]:
        s = self.stats.values()
        return (
            sum(x.sent for x in s),
            sum(x.ok for x in s),
            sum(x.shed for x in s),
            sum(x.errors for x in s),
            sum(x.timeouts for x in s),
        )

    async def sampler(self, start: float, end: float, samples: list) -> None:
        loop = asyncio.get_running_loop()
        iv = self.args.interval
        prev = self.totals()
        cpu_prev = cpu_seconds(self.args.pid)
        k = 1
        while start + k * iv <= end + 0.5:
            await asyncio.sleep(max(0.0, start + k * iv - loop.time()))
            rss, fds, threads = proc_sample(self.args.pid)
            cpu = cpu_seconds(self.args.pid)
            cpu_pct, cpu_prev = 100 * (cpu - cpu_prev) / iv, cpu
            slowest, self.interval_max = self.interval_max, 0.0
            now = self.totals()
            d = [a - b for a, b in zip(now, prev)]
            prev = now
            samples.append((k * iv, rss, fds, threads))
            print(
                f"{k * iv:>6.0f} {rss:>9.1f} {fds:>5} {threads:>7} {cpu_pct:>6.0f} {d[0] / iv:>8.1f} "
                f"{d[1]:>7} {d[2]:>6} {d[3]:>6} {d[4]:>6} {slowest * 1000:>8.0f}",
                flush=True,
            )
            k += 1

    async def run(self) -> int:
        a = self.args
        rss0, fds0, thr0 = proc_sample(a.pid)
        print(
            f"# soak {self.url}  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}  "
            f"duration {a.duration:.0f} s  rate {a.rate:g} jobs/s  workers {a.workers}  "
            f"ws sockets {a.ws_sockets} (reused {a.ws_reuse}x)  timeout {a.timeout:g} s"
        )
        print(f"# mix {a.mix}")
        print(f"# idle before the load: RSS {rss0:.1f} MiB, fds {fds0}, threads {thr0}")
        print("# per sample: the server's RSS, open fds, threads and CPU (% of one core over the interval);")
        print("# the jobs sent per second, their outcomes and the slowest ok job over the interval")
        print(
            f"{'t(s)':>6} {'RSS(MiB)':>9} {'fds':>5} {'threads':>7} {'cpu%':>6} {'jobs/s':>8} {'ok':>7} "
            f"{'shed':>6} {'errors':>6} {'t/o':>6} {'max(ms)':>8}"
        )
        timeout = aiohttp.ClientTimeout(total=a.timeout)
        # a streamed cancel holds two connections (the stream, the CancelTask)
        conn = aiohttp.TCPConnector(limit=2 * a.workers + a.ws_sockets)
        headers = {"A2A-Version": "1.0"}
        samples: list = []
        async with aiohttp.ClientSession(connector=conn, timeout=timeout, headers=headers) as session:
            self.session = session
            for _ in range(a.ws_sockets):
                self.sockets.put_nowait({"ws": None, "used": 0})
            loop = asyncio.get_running_loop()
            start = loop.time()
            end = start + a.duration
            q: asyncio.Queue = asyncio.Queue(maxsize=a.workers * 4)
            workers = [asyncio.create_task(self.worker(q)) for _ in range(a.workers)]
            sampler = asyncio.create_task(self.sampler(start, end, samples))
            await self.pacer(q, end)
            for _ in workers:
                await q.put(None)
            await asyncio.gather(*workers)
            await sampler
            while not self.sockets.empty():
                slot = self.sockets.get_nowait()
                if slot["ws"] is not None:
                    await slot["ws"].close()
        # every client connection is closed now: the server's fds should fall back
        await asyncio.sleep(3)
        rss_after, fds_after, thr_after = proc_sample(a.pid)
        print(f"# 3 s after the load, clients closed: RSS {rss_after:.1f} MiB, fds {fds_after}, threads {thr_after}")
        return self.report(samples, fds0, fds_after)

    def report(self, samples: list, fds0: int, fds_after: int) -> int:
        a = self.args
        print()
        print(f"{'kind':<12} {'sent':>8} {'ok':>8} {'shed':>6} {'errors':>6} {'t/o':>6} {'p50(ms)':>8} {'p99(ms)':>8} {'max(ms)':>8}")
        for k in KINDS:
            s = self.stats[k]
            if s.sent:
                print(
                    f"{k:<12} {s.sent:>8} {s.ok:>8} {s.shed:>6} {s.errors:>6} {s.timeouts:>6} "
                    f"{s.quantile(0.5) * 1000:>8.1f} {s.quantile(0.99) * 1000:>8.1f} {s.quantile(1) * 1000:>8.0f}"
                )
        sent, ok, shed, errors, timeouts = self.totals()
        print(f"{'total':<12} {sent:>8} {ok:>8} {shed:>6} {errors:>6} {timeouts:>6}")
        print(
            f"scheduled {self.scheduled} jobs ({self.scheduled / a.duration:.1f}/s), dropped {self.dropped} "
            f"(load generator behind); {self.ws_opened} WebSockets opened"
        )
        for k in KINDS:
            for t in self.stats[k].texts:
                print(f"  error {k}: {t}")

        post = [s for s in samples if s[0] > a.warmup] or samples[-1:]
        checks = []
        checks.append((errors == 0 and timeouts == 0, f"no errors, no timeouts (shed allowed): {errors} errors, {timeouts} timeouts, {shed} shed"))
        delivered = (self.scheduled - self.dropped) / max(1, self.scheduled)
        checks.append((delivered >= 0.95, f"load delivered: {delivered:.1%} of the scheduled jobs sent (>= 95 %)"))
        if post:
            # A leak keeps growing; a one-time step (a new thread's heap, a
            # cache filling) does not: compare the medians of the first and
            # the last third of the samples after warm-up.
            third = max(1, len(post) // 3)
            def median(xs):
                xs = sorted(xs)
                return xs[len(xs) // 2]
            early = median([s[1] for s in post[:third]])
            late = median([s[1] for s in post[-third:]])
            growth = late - early
            bound = max(a.rss_growth_mib, early * a.rss_growth_pct / 100)
            peak = max(s[1] for s in post)
            checks.append((
                growth <= bound,
                f"RSS flat after warm-up: median {early:.1f} MiB over the first third "
                f"({post[0][0]:.0f}-{post[third - 1][0]:.0f} s), {late:.1f} MiB over the last "
                f"({post[-third][0]:.0f}-{post[-1][0]:.0f} s): {growth:+.1f} MiB; first sample "
                f"{post[0][1]:.1f}, last {post[-1][1]:.1f}, peak {peak:.1f}; bound +{bound:.1f} MiB "
                f"(max of {a.rss_growth_mib:g} MiB, {a.rss_growth_pct:g} %)",
            ))
            fmin, fmax = min(s[2] for s in post), max(s[2] for s in post)
            checks.append((
                fmax - fmin <= a.fd_slack,
                f"fds flat after warm-up: {fmin}..{fmax} (spread {fmax - fmin}, bound {a.fd_slack})",
            ))
        checks.append((
            fds_after <= fds0 + a.fd_after_slack,
            f"fds back to idle once the clients closed: {fds_after} (idle before the load: {fds0}, bound +{a.fd_after_slack})",
        ))
        print("\ncriteria:")
        for passed, text in checks:
            print(f"  {'ok  ' if passed else 'FAIL'} {text}")
        verdict = all(p for p, _ in checks)
        print("PASS" if verdict else "FAIL")
        return 0 if verdict else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8002/")
    p.add_argument("--pid", type=int, required=True, help="the server's process id (for RSS and fds)")
    p.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    p.add_argument("--rate", type=float, default=200, help="jobs per second, all kinds together (200)")
    p.add_argument("--workers", type=int, default=16, help="concurrent workers (16)")
    p.add_argument("--mix", default=DEFAULT_MIX, help=f"weights of the kinds ({DEFAULT_MIX})")
    p.add_argument("--ws-sockets", type=int, default=4, help="WebSockets in the pool (4)")
    p.add_argument("--ws-reuse", type=int, default=100, help="messages per WebSocket before it is reopened (100)")
    p.add_argument("--timeout", type=float, default=10, help="client timeout of every job, seconds (10)")
    p.add_argument("--interval", type=float, default=10, help="seconds between samples (10)")
    p.add_argument("--warmup", type=float, default=60, help="seconds of warm-up before the flatness checks (60)")
    p.add_argument("--rss-growth-mib", type=float, default=4, help="RSS growth allowed after warm-up, MiB (4) ...")
    p.add_argument("--rss-growth-pct", type=float, default=10, help="... or percent of the warm RSS, whichever is larger (10)")
    p.add_argument("--fd-slack", type=int, default=None, help="fd spread allowed after warm-up (workers + ws sockets)")
    p.add_argument(
        "--fd-after-slack", type=int, default=10,
        help="fds allowed over the idle count once the clients closed (10: the SQLite read pool, "
        "4 connections of 2 fds opened on first use and kept, and 2 more)",
    )
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.fd_slack is None:
        args.fd_slack = args.workers + args.ws_sockets
    if not args.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        sys.exit("soak: loopback targets only")
    return asyncio.run(Soak(args).run())


if __name__ == "__main__":
    sys.exit(main())
