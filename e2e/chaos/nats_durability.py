#!/usr/bin/env python3
"""An event JetStream acknowledged survives a SIGKILL of nats-server.

usage: nats_durability.py NATS_URL PIDFILE [COUNT]
Publishes COUNT (2000) messages to a file-stored stream of its own, waits for every
PubAck, SIGKILLs the server named by PIDFILE right after the last one, waits for its
supervisor (scripts/lib.sh start_daemon) to start it again, and checks that every
acknowledged message is in the stream. With NATS_MONITOR_URL set, it first checks that
the server fsyncs every write (`sync_interval: always`, shown as sync_always in /varz):
without it, a SIGKILL of the process alone loses nothing on Linux (the writes are in the
page cache before the PubAck), but a crash of the machine or the node loses up to the
last 2 minutes of acknowledged events. Prints one line per check and
`nats-durability: N passed, M failed` last; exits 1 on a failure.
"""
import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
import uuid

import nats
from nats.js.api import StorageType, StreamConfig

URL, PIDFILE = sys.argv[1], sys.argv[2]
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    passed, failed = passed + bool(ok), failed + (not ok)
    print(f"  {'ok  ' if ok else 'FAIL'}  {what} {'' if ok else detail}".rstrip())
    return ok


def read_pid():
    try:
        return int(open(PIDFILE).read().strip())
    except (OSError, ValueError):
        return None


async def connect():
    deadline = time.time() + 30
    while True:
        try:
            return await nats.connect(URL, connect_timeout=1, allow_reconnect=False)
        except Exception:  # noqa: BLE001 (any failure: the server is not back yet)
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def main():
    monitor = os.environ.get("NATS_MONITOR_URL")
    if monitor:
        with urllib.request.urlopen(f"{monitor}/varz", timeout=5) as response:
            config = json.load(response).get("jetstream", {}).get("config", {})
        check("nats-server fsyncs every JetStream write (sync_always)", config.get("sync_always") is True, config)
    stream = f"DURABILITY_{uuid.uuid4().hex[:8].upper()}"
    nc = await connect()
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"], storage=StorageType.FILE))
    acked = set()

    async def publish(i):
        ack = await js.publish(f"{stream}.m", f"{i}".encode(), headers={"Nats-Msg-Id": f"{stream}-{i}"}, timeout=10)
        acked.add(ack.seq)

    started = time.time()
    # In windows of 200 in flight: the last acknowledgements arrive right before the kill.
    for base in range(0, COUNT, 200):
        await asyncio.gather(*(publish(i) for i in range(base, min(base + 200, COUNT))))
    pid = read_pid()
    os.kill(pid, signal.SIGKILL)
    elapsed = time.time() - started
    check(f"{COUNT} messages acknowledged in {elapsed:.1f}s, then nats-server (pid {pid}) SIGKILLed", len(acked) == COUNT, len(acked))
    try:
        await nc.close()
    except Exception:  # noqa: BLE001 (the server is gone)
        pass

    deadline = time.time() + 30
    while read_pid() in (None, pid) and time.time() < deadline:
        await asyncio.sleep(0.1)
    check("the supervisor started nats-server again", read_pid() not in (None, pid), read_pid())
    nc = await connect()
    js = nc.jetstream()
    info = None
    for _ in range(50):  # JetStream may need a moment to recover the stream after start-up
        try:
            info = await js.stream_info(stream)
            break
        except Exception:  # noqa: BLE001
            await asyncio.sleep(0.2)
    check("the stream is back", info is not None)
    if info is not None:
        state = info.state
        check(f"all {COUNT} acknowledged messages survived (stream holds {state.messages}, last seq {state.last_seq})",
              state.messages == COUNT and state.last_seq == max(acked), f"lost {COUNT - state.messages}")
        last = await js.get_msg(stream, max(acked))
        check("the last acknowledged message reads back", last.data == f"{COUNT - 1}".encode(), last.data)
        await js.delete_stream(stream)
    await nc.close()
    print(f"nats-durability: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
