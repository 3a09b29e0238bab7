#!/usr/bin/env python3
"""The fault harness: sellers and buyers through nginx while processes are killed, then
the invariants of GitTix checked against the stores and the event bus.

Run by scripts/chaos.sh (`make chaos`, scripts/test.d/chaos.sh), which starts the stack and
passes the settings in the environment:
  CHAOS_URL            nginx of the stack                  CHAOS_STATE   its state folder
  CHAOS_SECONDS        how long the load and faults run    CHAOS_SEED    the seed (replays)
  CHAOS_FAULT_EVERY    mean seconds between faults (5)     CHAOS_TERM    share of SIGTERM (0.25)
  CHAOS_SETTLE         most seconds to wait for convergence after the faults (180: after
                       many kills, retries back off up to a minute; a green run stops waiting
                       as soon as everything agrees)
  CHAOS_ALLOWANCE      seconds past expiresAt an order may stay `created` (35: the sweeper's
                       30 s grace plus its period)
  CHAOS_WINDOW         EXPIRATION_WINDOW_SECONDS of the stack
  CHAOS_SELLERS, CHAOS_BUYERS  workers (3, 8)
  CHAOS_PROCS          "name:port …" of the processes to kill (a port answers /readyz for
                       services, a TCP port for servers)
  CHAOS_EXPLAINED_DEAD a regex of dead-letter reasons that are expected (none by default)
  MONGO_URL, NATS_URL, NATS_MONITOR_URL, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, and
  NATS_USER, NATS_PASSWORD_FILE (the stack's `admin` NATS user, when it has users)
The kills are seeded: one seed gives the same schedule of targets, signals and times
(the requests interleave as the machine runs them). Prints a line per invariant, the
figures, and `chaos: N passed, M failed` last; exits 1 on any failure.
"""
import asyncio
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict

import browser
from bson import ObjectId
from pymongo import MongoClient

env = os.environ.get
BASE = env("CHAOS_URL").rstrip("/")
STATE = env("CHAOS_STATE")
SECONDS = float(env("CHAOS_SECONDS", "120"))
SEED = int(env("CHAOS_SEED") or random.SystemRandom().randrange(1, 10**6))
FAULT_EVERY = float(env("CHAOS_FAULT_EVERY", "5"))
TERM_SHARE = float(env("CHAOS_TERM", "0.25"))
SETTLE = float(env("CHAOS_SETTLE", "180"))
ALLOWANCE = float(env("CHAOS_ALLOWANCE", "35"))
WINDOW = float(env("CHAOS_WINDOW", "6"))
SELLERS = int(env("CHAOS_SELLERS", "3"))
BUYERS = int(env("CHAOS_BUYERS", "8"))
PROCS = dict((p.split(":")[0], int(p.split(":")[1])) for p in env("CHAOS_PROCS", "").split())
SERVERS = {"nats", "redis", "mongo", "mailpit"}
EXPLAINED_DEAD = env("CHAOS_EXPLAINED_DEAD")
STREAM = env("EVENTS_STREAM", "GITTIX")
PREFIX = env("EVENTS_SUBJECT_PREFIX", "gittix")
MAX_REQUESTS = 40000  # a bound on the whole load, whatever the duration

T0 = time.time()
lock = threading.Lock()
requests_log = []  # (time, method, route, status)
placed = {}  # order id -> {ticket, buyer, at}
cancelled_204 = set()
paid_201 = {}  # order id -> payment body
faults = []  # {at, target, signal, pid, back}
stop_load = threading.Event()


def now():
    return time.time() - T0


def say(line):
    print(f"[{now():6.1f}s] {line}", flush=True)


def record_answer(method, route, status):
    with lock:
        requests_log.append((time.time(), method, route, status))


def Browser():  # noqa: N802 (reads like the class it makes)
    return browser.Browser(BASE, on_answer=record_answer)


def budget_left():
    return not stop_load.is_set() and len(requests_log) < MAX_REQUESTS


def pause(rng, low=0.05, high=0.3):
    stop_load.wait(rng.uniform(low, high))


def signup(browser, role, rng, bounded=True):
    for _ in range(20):
        if bounded and not budget_left():
            break
        status, _ = browser.json("POST", "/api/users/signup", {"email": f"{role}-{uuid.uuid4().hex[:10]}@chaos.test", "password": "correct horse"}, "/api/users/signup")
        if status == 201:
            return True
        pause(rng, 0.5, 1.0)
    return False


def seller(index):
    rng = random.Random(SEED * 1000 + index)
    browser = Browser()
    if not signup(browser, "seller", rng):
        return
    mine = []
    while budget_left():
        if mine and rng.random() < 0.3:
            ticket = rng.choice(mine)
            browser.json("PUT", f"/api/tickets/{ticket}", {"title": f"Edited {rng.randrange(1000)}", "price": rng.randrange(5, 200) + 0.5}, "PUT /api/tickets/:id")
        elif len(mine) < 60:
            status, body = browser.json("POST", "/api/tickets", {"title": f"Chaos show {rng.randrange(10**6)}", "price": rng.randrange(5, 200) + 0.99}, "POST /api/tickets")
            if status == 201:
                mine.append(body["id"])
        pause(rng, 0.3, 0.8)


def buyer(index):
    rng = random.Random(SEED * 1000 + 500 + index)
    browser = Browser()
    if not signup(browser, "buyer", rng):
        return
    while budget_left():
        status, listing = browser.json("GET", "/api/tickets?limit=50", route="GET /api/tickets")
        if status != 200 or not listing:
            pause(rng, 0.3, 0.8)
            continue
        ticket = rng.choice(listing)["id"]
        status, order = browser.json("POST", "/api/orders", {"ticketId": ticket}, "POST /api/orders")
        if status != 201:
            pause(rng)
            continue
        order_id = order["id"]
        with lock:
            placed[order_id] = {"ticket": ticket, "at": time.time()}
        action = rng.random()
        if action < 0.15:  # cancels at once (the race of order.created and order.cancelled)
            cancel(browser, order_id)
        elif action < 0.25:  # changes their mind a little later
            stop_load.wait(rng.uniform(0.2, 2.0))
            cancel(browser, order_id)
        elif action < 0.50:  # pays at once
            stop_load.wait(rng.uniform(0.0, 1.0))
            pay(browser, order_id, rng)
        elif action < 0.70:  # pays at the last moment, when the expiry may fire meanwhile
            time.sleep(max(0.0, WINDOW + rng.uniform(-1.0, 0.3)))
            pay(browser, order_id, rng)
        # else: abandons it; it expires
        pause(rng)


def cancel(browser, order_id):
    status, _ = browser.json("DELETE", f"/api/orders/{order_id}", route="DELETE /api/orders/:id")
    if status == 204:
        with lock:
            cancelled_204.add(order_id)


def pay(browser, order_id, rng):
    for _ in range(3):  # a person retries when the site errs
        status, body = browser.json("POST", "/api/payments", {"orderId": order_id, "paymentMethod": "pm_card_visa"}, "POST /api/payments")
        if status == 201 and isinstance(body, dict) and body.get("status") == "succeeded":
            with lock:
                paid_201[order_id] = body
            return
        if status not in (0, 502, 503, 504, 500):
            return
        time.sleep(rng.uniform(0.5, 1.5))


# ---------------------------------------------------------------------------- faults

def pid_of(name):
    try:
        return int(open(os.path.join(STATE, f"{name}.pid")).read().strip())
    except (OSError, ValueError):
        return None


def running(pid):
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ready(name):
    port = PROCS[name]
    if name in SERVERS:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", port)) == 0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def schedule():
    """The seeded fault plan: every target once first (in a seeded order), then at random."""
    rng = random.Random(SEED)
    targets = sorted(PROCS)
    first = targets[:]
    rng.shuffle(first)
    plan, at = [], 2.0
    while at < SECONDS - 2:
        target = first.pop(0) if first else rng.choice(targets)
        sig = signal.SIGTERM if rng.random() < TERM_SHARE else signal.SIGKILL
        plan.append((at, target, sig))
        at += rng.uniform(0.5, 1.5) * FAULT_EVERY
    return plan


def faulter(plan):
    for at, target, sig in plan:
        if stop_load.wait(max(0.0, at - now())):
            return
        pid = pid_of(target)
        fault = {"at": time.time(), "target": target, "signal": sig.name, "pid": pid, "back": None, "hit": False}
        if pid and running(pid):
            try:
                os.kill(pid, sig)
                fault["hit"] = True
            except OSError:
                pass
        say(f"fault: {sig.name} {target} (pid {pid}){'' if fault['hit'] else ' — it was not running'}")
        with lock:
            faults.append(fault)


def watcher():
    """Marks when each killed process is ready again (its /readyz, or its port)."""
    while not stop_load.is_set() or any(f["back"] is None for f in faults):
        with lock:
            open_faults = [f for f in faults if f["back"] is None]
        for fault in open_faults:
            # After a SIGTERM the process may still answer while it drains: count it back
            # only once a new pid runs.
            pid = pid_of(fault["target"])
            if pid and pid != fault["pid"] and running(pid) and ready(fault["target"]):
                fault["back"] = time.time()
                say(f"back: {fault['target']} after {fault['back'] - fault['at']:.1f}s")
            elif fault["at"] < time.time() - SECONDS - SETTLE - 60:
                fault["back"] = float("inf")
        if stop_load.is_set() and time.time() > END_AT[0] + 60:
            return
        time.sleep(0.2)


END_AT = [float("inf")]


def something_down(at):
    return any(f["at"] <= at <= (f["back"] or float("inf")) for f in faults if f["hit"])


# ---------------------------------------------------------------------------- checks

results = []


def check(what, ok, detail=""):
    results.append(bool(ok))
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}{'' if ok else '  ' + str(detail)}", flush=True)


def sample(items, n=5):
    items = list(items)
    return f"{len(items)}: {items[:n]}{' …' if len(items) > n else ''}"


def mongo():
    url = env("MONGO_URL")
    return MongoClient(url, serverSelectionTimeoutMS=5000, directConnection=True, tz_aware=True)


def snapshot(client):
    orders = list(client.orders.orders.find({}, {"pendingEvents": 0}))
    return {
        "orders": {str(o["_id"]): o for o in orders},
        "tickets": {str(t["_id"]): t for t in client.tickets.tickets.find({}, {"pendingEvents": 0})},
        "payments": list(client.payments.payments.find({}, {"pendingEvents": 0})),
        "pay_replica": {str(o["_id"]): o for o in client.payments.orders.find({})},
        "outboxes": {
            f"{db}.{coll}": client[db][coll].count_documents({"pendingEvents.0": {"$exists": True}})
            for db, coll in (("auth", "users"), ("tickets", "tickets"), ("orders", "orders"), ("payments", "payments"))
        },
    }


def consumers():
    url = env("NATS_MONITOR_URL")
    with urllib.request.urlopen(f"{url}/jsz?consumers=true", timeout=5) as response:
        jsz = json.load(response)
    found = {}
    for account in jsz.get("account_details", []):
        for stream in account.get("stream_detail", []):
            if stream.get("name") != STREAM:
                continue
            for consumer in stream.get("consumer_detail", []) or []:
                found[consumer["name"]] = (consumer.get("num_pending", 0), consumer.get("num_ack_pending", 0), consumer.get("num_redelivered", 0))
    return found


async def dead_letters():
    import nats

    # As the operator's NATS user when the stack has users (scripts/chaos.sh passes them):
    # only it may read every service's dead letters.
    user = os.environ.get("NATS_USER")
    auth = {}
    if user:
        with open(env("NATS_PASSWORD_FILE")) as secret:
            auth = {"user": user, "password": secret.read().strip(), "inbox_prefix": f"_INBOX_{user}"}
    nc = await nats.connect(env("NATS_URL"), connect_timeout=3, allow_reconnect=False, **auth)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(f"{PREFIX}.dead.>", ordered_consumer=True)
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except Exception:  # noqa: BLE001 (nats.errors.TimeoutError: no more)
                break
            found.append((msg.subject, (msg.headers or {}).get("GitTix-Dead-Reason", "")))
            if len(found) >= 10000:
                break
        return found
    finally:
        await nc.close()


def live_orders_by_ticket(snap):
    live = defaultdict(list)
    for oid, order in snap["orders"].items():
        if order["status"] in ("created", "complete"):
            live[order["ticket"]["id"]].append(oid)
    return live


def converged(snap, pending):
    """The conditions that take time after the faults stop; true when they all hold."""
    t = time.time()
    late = [o for o in snap["orders"].values() if o["status"] == "created" and o["expiresAt"].timestamp() + 3 < t]
    live = live_orders_by_ticket(snap)
    ticket_mismatch = [tid for tid, t_ in snap["tickets"].items() if (t_.get("orderId") or None) not in ([None] if not live.get(tid) else live[tid])]
    replica = [oid for oid, o in snap["orders"].items() if (snap["pay_replica"].get(oid) or {}).get("status") != o["status"]]
    return not late and not any(snap["outboxes"].values()) and not any(p + a for p, a, _ in pending.values()) and not ticket_mismatch and not replica


def main():
    print(f"chaos: seed {SEED} (SEED={SEED} replays this schedule), {SECONDS:.0f}s of faults every ~{FAULT_EVERY:.0f}s, "
          f"{SELLERS} sellers, {BUYERS} buyers, window {WINDOW:.0f}s", flush=True)
    plan = schedule()
    print("chaos: plan " + ", ".join(f"{at:.0f}s {sig.name[3:]} {target}" for at, target, sig in plan), flush=True)
    workers = [threading.Thread(target=seller, args=(i,), daemon=True) for i in range(SELLERS)]
    workers += [threading.Thread(target=buyer, args=(i,), daemon=True) for i in range(BUYERS)]
    for worker in workers:
        worker.start()
    fault_thread = threading.Thread(target=faulter, args=(plan,), daemon=True)
    fault_thread.start()
    watch_thread = threading.Thread(target=watcher, daemon=True)
    watch_thread.start()
    stop_load.wait(SECONDS)
    stop_load.set()
    END_AT[0] = time.time()
    for worker in workers:
        worker.join(timeout=WINDOW + 15)
    load_end = time.time()
    say(f"load stopped: {len(requests_log)} requests, {len(placed)} orders placed, {len(paid_201)} paid, {len(cancelled_204)} cancelled")

    # Every process comes back: the supervisor restarts what died.
    deadline = time.time() + 30
    while time.time() < deadline and not all(ready(name) for name in PROCS):
        time.sleep(0.5)
    not_back = [name for name in PROCS if not ready(name)]

    # Settle: wait until the stores and the bus converge (or SETTLE runs out).
    client = mongo()
    converge_at = None
    settle_end = time.time() + SETTLE
    snap, pending = None, {}
    while True:
        try:
            snap, pending = snapshot(client), consumers()
            if converged(snap, pending):
                converge_at = time.time()
                break
        except Exception as err:  # noqa: BLE001 (a store still coming back)
            say(f"settle: cannot read the stores yet ({type(err).__name__})")
        if time.time() > settle_end:
            break
        time.sleep(2)
    if snap is None:
        snap, pending = snapshot(client), consumers()
    say("converged" if converge_at else f"did not converge within {SETTLE:.0f}s")

    print("chaos: invariants", flush=True)
    check("every process is running and ready after the faults (the supervisor restarted them)", not not_back,
          f"not ready: {not_back}; restarts: " + ", ".join(f"{n}={open(os.path.join(STATE, n + '.restarts')).read().strip()}" for n in not_back if os.path.exists(os.path.join(STATE, n + '.restarts'))))
    orders = snap["orders"]
    bad = [(oid, (orders.get(oid) or {}).get("status")) for oid in paid_201 if (orders.get(oid) or {}).get("status") != "complete"]
    check(f"every payment answered 201 succeeded ({len(paid_201)}) belongs to an order that ends complete", not bad, "charged but not complete " + sample(bad))
    # Money (issue 13): every successful charge the gateway made, as payments stored it,
    # either completed its order (settled, named by the order) or was refunded.
    unsettled = []
    for p in snap["payments"]:
        order = orders.get(p.get("orderId")) or {}
        named = order.get("status") == "complete" and order.get("paymentId") == str(p["_id"])
        if not ((p.get("state") == "settled" and named) or p.get("state") == "refunded"):
            unsettled.append((str(p["_id"]), p.get("state"), order.get("status")))
    refunded = sum(1 for p in snap["payments"] if p.get("state") == "refunded")
    check(f"every successful charge ({len(snap['payments'])}) completes its order or is refunded ({refunded} refunded)",
          not unsettled, "(payment, state, order) " + sample(unsettled))
    live = live_orders_by_ticket(snap)
    doubles = {tid: oids for tid, oids in live.items() if len(oids) > 1}
    check("no ticket has two live (created or complete) orders", not doubles, sample(doubles.items()))
    bad = [(oid, (orders.get(oid) or {}).get("status")) for oid in cancelled_204 if (orders.get(oid) or {}).get("status") != "cancelled"]
    check(f"every order a buyer cancelled (204: {len(cancelled_204)}) ends cancelled", not bad, sample(bad))
    mismatch = []
    for tid, ticket in snap["tickets"].items():
        held, owners = ticket.get("orderId") or None, live.get(tid) or []
        if held not in (owners or [None]):
            mismatch.append((tid, f"tickets.orderId={held}", f"orders live={owners}", f"held by a {(orders.get(held) or {}).get('status')} order" if held else ""))
    check("tickets' orderId of every ticket is the live order orders holds for it (or null)", not mismatch, sample(mismatch, 4))
    disagree = [(oid, o["status"], (snap["pay_replica"].get(oid) or {}).get("status")) for oid, o in orders.items() if (snap["pay_replica"].get(oid) or {}).get("status") != o["status"]]
    check("the payments order replica's status agrees with orders", not disagree, "(order, orders, payments) " + sample(disagree))
    t = time.time()
    stale = [(oid, o["expiresAt"].isoformat()) for oid, o in orders.items() if o["status"] == "created" and o["expiresAt"].timestamp() + ALLOWANCE < t]
    young = sum(1 for o in orders.values() if o["status"] == "created" and o["expiresAt"].timestamp() + ALLOWANCE >= t)
    check(f"no order is still created {ALLOWANCE:.0f}s past its window ({young} created within it)", not stale, sample(stale))
    outboxes = {k: v for k, v in snap["outboxes"].items() if v}
    check("every outbox (pendingEvents) is empty", not outboxes, outboxes)
    busy = {name: f"pending {p}, ack pending {a}" for name, (p, a, _) in pending.items() if p + a}
    check(f"every durable consumer ({len(pending)}) has nothing pending", pending and not busy, busy or "no consumers found")
    try:
        dead = asyncio.run(dead_letters())
    except Exception as err:  # noqa: BLE001
        dead = [("(cannot read dead letters)", repr(err))]
    unexplained = [(s, r) for s, r in dead if not (EXPLAINED_DEAD and re.search(EXPLAINED_DEAD, r))]
    reasons = Counter(f"{s} — {r[:90]}" for s, r in unexplained)
    check(f"no dead letter is unexplained ({len(dead)} dead letters)", not unexplained, "; ".join(f"{n}× {k}" for k, n in reasons.most_common(4)))

    # A freed ticket can be reserved again: one whose orders ended cancelled and that no
    # live order holds, reserved through nginx by a new buyer (then cancelled again).
    freed = [tid for tid in {o["ticket"]["id"] for o in orders.values() if o["status"] == "cancelled"} if not live.get(tid) and tid in snap["tickets"]]
    rng = random.Random(SEED)
    prober, answers = Browser(), []
    signed_up = signup(prober, "prober", rng, bounded=False)
    if not freed and signed_up:
        # A long run can sell every ticket: then free one now (listed, reserved and
        # cancelled by others, through nginx) so the check still has something to try.
        lister, holder = Browser(), Browser()
        if signup(lister, "lister", rng, bounded=False) and signup(holder, "holder", rng, bounded=False):
            status, ticket = lister.json("POST", "/api/tickets", {"title": "Chaos probe", "price": 9.99}, "POST /api/tickets")
            for _ in range(100):  # orders learns the ticket from its event
                s_, order = holder.json("POST", "/api/orders", {"ticketId": ticket["id"]}, "POST /api/orders") if status == 201 else (0, None)
                if s_ == 201:
                    if holder.json("DELETE", f"/api/orders/{order['id']}", route="DELETE /api/orders/:id")[0] == 204:
                        freed = [ticket["id"]]
                    break
                time.sleep(0.1)
    tried = rng.sample(sorted(freed), min(3, len(freed)))
    if tried and signed_up:
        for tid in tried:
            status, body = prober.json("POST", "/api/orders", {"ticketId": tid}, "POST /api/orders")
            answers.append((tid, status))
            if status == 201:
                prober.json("DELETE", f"/api/orders/{body['id']}", route="DELETE /api/orders/:id")
    check(f"a freed ticket can be reserved again ({len(tried)} tried of {len(freed)} freed)",
          tried and all(s == 201 for _, s in answers), answers or "no freed ticket to try")

    # Figures.
    statuses = Counter(s for _, _, _, s in requests_log)
    errors_down = sum(1 for at, _, _, s in requests_log if (s >= 500 or s == 0) and something_down(at))
    errors_up = sum(1 for at, _, _, s in requests_log if (s >= 500 or s == 0) and not something_down(at))
    hits = [f for f in faults if f["hit"]]
    downs = [f["back"] - f["at"] for f in hits if f["back"] not in (None, float("inf"))]
    final = Counter(o["status"] for o in orders.values())
    print("chaos: figures", flush=True)
    print(f"  requests        {len(requests_log)} ({', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))}; 0 = no answer)")
    print(f"  orders          {len(orders)} ({', '.join(f'{k} {v}' for k, v in sorted(final.items()))}); "
          f"placed 201: {len(placed)}, cancelled 204: {len(cancelled_204)}")
    print(f"  payments        {len(paid_201)} answered 201 succeeded; {len(snap['payments'])} stored")
    print(f"  kills           {len(hits)} ({sum(1 for f in hits if f['signal'] == 'SIGKILL')} SIGKILL, "
          f"{sum(1 for f in hits if f['signal'] == 'SIGTERM')} SIGTERM; {len(faults) - len(hits)} found the target down) "
          f"on {', '.join(f'{k} {v}' for k, v in sorted(Counter(f['target'] for f in hits).items()))}")
    print(f"  down time       {'max %.1fs, mean %.1fs' % (max(downs), sum(downs) / len(downs)) if downs else '-'}; "
          f"{sum(1 for f in hits if f['back'] in (None, float('inf')))} never came back")
    print(f"  5xx / no answer {errors_down} while something was down, {errors_up} while all was up")
    print(f"  converge        {'%.1fs after the load stopped' % (converge_at - load_end) if converge_at else 'not within %.0fs' % SETTLE}")
    restarts = {}
    for name in PROCS:
        try:
            restarts[name] = int(open(os.path.join(STATE, f"{name}.restarts")).read().strip())
        except (OSError, ValueError):
            pass
    print(f"  restarts        {', '.join(f'{k} {v}' for k, v in sorted(restarts.items()))}")
    print(f"  seed            {SEED}")
    failed = results.count(False)
    print(f"chaos: {len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
