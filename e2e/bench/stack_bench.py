#!/usr/bin/env python3
"""`make bench`, service part: figures of the whole stack through nginx (issue 14).

Run by scripts/bench-stack.sh, which starts the stack as `make up` does on private ports
and passes the settings in the environment. Prints figures; asserts nothing.

  BENCH_URL        nginx of the stack               MONGO_URL   its MongoDB server
  BENCH_TICKETS    tickets listed before measuring (10000)
  BENCH_SELLERS    concurrent sellers listing them (16)
  BENCH_CREATE_SECONDS  most seconds for listing them (240; fewer are measured if it runs out)
  BENCH_DRAIN_SECONDS   most seconds to wait for orders' replica to know them all (120)
  BENCH_LIST_SECONDS    seconds of `GET /api/tickets` (10), BENCH_LIST_CONCURRENCY (4)
  BENCH_SHOW_SECONDS    seconds of `GET /api/tickets/{id}` and of the driver's find (4)
  BENCH_CONCURRENCY     callers of show-by-id and of the driver (16)
  BENCH_BUYERS          buyers racing for one ticket (200)
  BENCH_PROPAGATION     reservations timed until the ticket shows orderId (50)
Every loop is bounded in count and in time.
"""
import http.client
import json
import os
import random
import statistics
import threading
import time
import urllib.parse
import uuid
from collections import Counter

from pymongo import MongoClient

env = os.environ.get
URL = urllib.parse.urlsplit(env("BENCH_URL", "http://127.0.0.1:20800"))
TICKETS = int(env("BENCH_TICKETS", "10000"))
SELLERS = int(env("BENCH_SELLERS", "16"))
CREATE_SECONDS = float(env("BENCH_CREATE_SECONDS", "240"))
DRAIN_SECONDS = float(env("BENCH_DRAIN_SECONDS", "120"))
LIST_SECONDS = float(env("BENCH_LIST_SECONDS", "10"))
LIST_CONCURRENCY = int(env("BENCH_LIST_CONCURRENCY", "4"))
SHOW_SECONDS = float(env("BENCH_SHOW_SECONDS", "4"))
CONCURRENCY = int(env("BENCH_CONCURRENCY", "16"))
BUYERS = int(env("BENCH_BUYERS", "200"))
PROPAGATION = int(env("BENCH_PROPAGATION", "50"))
MAX_REQUESTS_PER_LOOP = 200_000

statuses = Counter()  # every status seen, per route: the 5xx are reported at the end
status_lock = threading.Lock()


def say(line):
    print(line, flush=True)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def ms(seconds):
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


class Client:
    """One keep-alive HTTP connection to nginx, with the session cookie of one user."""

    def __init__(self):
        self.conn = None
        self.cookie = None

    def request(self, method, path, body=None, route=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"connection": "keep-alive"}
        if data is not None:
            headers["content-type"] = "application/json"
        if self.cookie:
            headers["cookie"] = self.cookie
        for attempt in range(2):  # one retry on a connection nginx closed meanwhile
            if self.conn is None:
                self.conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                status = response.status
                cookie = response.getheader("set-cookie")
                if cookie:
                    self.cookie = cookie.split(";", 1)[0]
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                break
            except (OSError, http.client.HTTPException):
                self.close()
                status, raw = 0, b""
                if attempt == 1 or data is not None and method == "POST":
                    break
        with status_lock:
            statuses[(route or path, status)] += 1
        try:
            return status, json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return status, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def signup(role):
    client = Client()
    for _ in range(10):
        email = f"{role}-{uuid.uuid4().hex[:12]}@bench.test"
        status, _ = client.request("POST", "/api/users/signup", {"email": email, "password": "correct horse"}, "POST /api/users/signup")
        if status == 201:
            return client
        time.sleep(0.5)
    raise SystemExit(f"bench: could not sign up a {role} (last status {status})")


def in_threads(count, target):
    """Runs target(i) in `count` threads; returns their results in order."""
    results = [None] * count

    def run(i):
        results[i] = target(i)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def signups(role, count, parallel=16):
    clients = [None] * count
    counter = iter(range(count))
    lock = threading.Lock()

    def worker(_):
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            clients[i] = signup(role)

    in_threads(min(parallel, count), worker)
    return clients


def timed_loop(count, seconds, make_client, call):
    """`count` callers calling call(client) for `seconds`; returns latencies and statuses."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies, codes = [], Counter()

    def worker(i):
        client = make_client(i)
        mine, my_codes = [], Counter()
        while time.monotonic() < deadline and len(mine) < MAX_REQUESTS_PER_LOOP // count:
            start = time.perf_counter()
            status = call(client)
            mine.append(time.perf_counter() - start)
            my_codes[status] += 1
        with lock:
            latencies.extend(mine)
            codes.update(my_codes)

    started = time.monotonic()
    in_threads(count, worker)
    return latencies, codes, time.monotonic() - started


def create_tickets(sellers, total, seconds, label):
    """`total` tickets listed by the sellers at once (one thread each); returns ids and the
    time of the last 201."""
    ids, lock = [], threading.Lock()
    left = [total]
    deadline = time.monotonic() + seconds
    last = [time.monotonic()]
    failures = Counter()

    def worker(i):
        client = sellers[i]
        while time.monotonic() < deadline:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            status, body = client.request("POST", "/api/tickets", {"title": f"{label} {uuid.uuid4().hex[:8]}", "price": random.randrange(5, 200) + 0.99}, "POST /api/tickets")
            with lock:
                if status == 201:
                    ids.append(body["id"])
                    last[0] = time.monotonic()
                else:
                    failures[status] += 1
                    left[0] += 1  # try it again
                    if sum(failures.values()) > 100 + total // 10:
                        return

    in_threads(len(sellers), worker)
    if failures:
        say(f"  (creating {label}: {dict(failures)} refused and retried)")
    return ids, last[0]


def wait_known(db, ids, seconds):
    """Waits until orders' ticket replica holds every id; returns when it did, or None."""
    from bson import ObjectId

    wanted = [ObjectId(i) for i in ids]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if db.orders.tickets.count_documents({"_id": {"$in": wanted}}) >= len(wanted):
            return time.monotonic()
        time.sleep(0.1)
    return None


def section_race(buyers, race_ticket, figures):
    """BUYERS buyers reserve one ticket at once: statuses and latencies."""
    say(f"bench: {len(buyers)} buyers POST /api/orders for one ticket at once")
    for buyer in buyers:  # a warm connection each, so the race measures the request
        buyer.request("GET", "/api/users/currentuser", route="GET /api/users/currentuser")
    barrier = threading.Barrier(len(buyers), timeout=60)

    def racer(i):
        barrier.wait()
        start = time.perf_counter()
        status, _ = buyers[i].request("POST", "/api/orders", {"ticketId": race_ticket}, "POST /api/orders (race)")
        return status, time.perf_counter() - start

    results = in_threads(len(buyers), racer)
    lat = [r[1] for r in results]
    codes = Counter(r[0] for r in results)
    line = f"statuses {dict(sorted(codes.items()))}, p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}, max {ms(max(lat))}"
    say(f"  {line}")
    figures.append((f"{len(buyers)} buyers racing for one ticket", line))


def section_propagation(buyers, tickets, figures):
    """Reserve, then poll the ticket until it shows the orderId: p50/p99 of that lag."""
    say(f"bench: reserve -> GET /api/tickets/{{id}} shows orderId, {len(tickets)} reservations")
    watcher = Client()
    lags, missed = [], Counter()
    for n, ticket in enumerate(tickets):
        status, order = buyers[n % len(buyers)].request("POST", "/api/orders", {"ticketId": ticket}, "POST /api/orders")
        if status != 201:
            missed[f"reserve {status}"] += 1
            continue
        reserved = time.perf_counter()
        deadline = reserved + 10
        while time.perf_counter() < deadline:
            status, body = watcher.request("GET", f"/api/tickets/{ticket}", route="GET /api/tickets/:id (propagation)")
            if status == 200 and body and body.get("orderId") == order["id"]:
                lags.append(time.perf_counter() - reserved)
                break
            time.sleep(0.002)
        else:
            missed["not shown within 10 s"] += 1
    line = f"p50 {ms(pct(lags, 50))}, p99 {ms(pct(lags, 99))}, max {ms(max(lags) if lags else float('nan'))} over {len(lags)}"
    if missed:
        line += f"; {dict(missed)}"
    say(f"  {line}")
    figures.append(("reserve -> ticket shows orderId", line))


def consumer_pending(name):
    url = env("NATS_MONITOR_URL")
    if not url:
        return None
    try:
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port, timeout=5)
        conn.request("GET", "/jsz?consumers=true")
        jsz = json.loads(conn.getresponse().read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    for account in jsz.get("account_details", []):
        for stream in account.get("stream_detail", []):
            for consumer in stream.get("consumer_detail", []) or []:
                if consumer.get("name") == name:
                    return consumer.get("num_pending", 0) + consumer.get("num_ack_pending", 0)
    return None


def main():
    from bson import ObjectId

    mongo = MongoClient(env("MONGO_URL"), directConnection=True, serverSelectionTimeoutMS=5000, maxPoolSize=CONCURRENCY + 4)
    figures = []  # (what, measured)
    t_all = time.monotonic()

    say(f"bench: signing up {SELLERS} sellers and {BUYERS} buyers")
    t = time.monotonic()
    sellers = signups("seller", SELLERS)
    buyers = signups("buyer", BUYERS)
    say(f"  {SELLERS + BUYERS} sign-ups in {time.monotonic() - t:.1f} s")

    # The race and propagation first, on a quiet stack: after the burst, tickets' outbox
    # relay may still be publishing it, and a new ticket waits behind that backlog.
    extra, _ = create_tickets(sellers[:1], 1 + PROPAGATION, 120, "Bench race")
    if wait_known(mongo, extra, 120) is None:
        say("  (orders did not learn the race's tickets within 120 s; reserving anyway)")
    section_race(buyers, extra[0], figures)
    section_propagation(buyers, extra[1:], figures)

    # N tickets, listed through the API by SELLERS sellers at once.
    say(f"bench: listing {TICKETS} tickets through the API, {SELLERS} sellers at once (at most {CREATE_SECONDS:.0f} s)")
    t = time.monotonic()
    ids, last_created = create_tickets(sellers, TICKETS, CREATE_SECONDS, "Bench show")
    took = last_created - t
    say(f"  {len(ids)} tickets in {took:.1f} s ({len(ids) / took:.0f}/s)")
    figures.append((f"listing {len(ids)} tickets through the API ({SELLERS} sellers)", f"{took:.1f} s, {len(ids) / took:.0f} tickets/s"))

    # How long orders' replica takes to know all of them, from the last one created.
    say(f"bench: waiting for orders' ticket replica to know them (at most {DRAIN_SECONDS:.0f} s)")
    wanted = len(ids) + len(extra)
    first_known = mongo.orders.tickets.estimated_document_count()
    first_at = time.monotonic()
    deadline = first_at + DRAIN_SECONDS
    known, drained = first_known, None
    while time.monotonic() < deadline:
        known = mongo.orders.tickets.estimated_document_count()
        if known >= wanted:
            drained = time.monotonic()
            break
        time.sleep(0.2)
    if drained is not None:
        drain = f"{drained - last_created:.1f} s after the last ticket was created"
    else:
        waited = time.monotonic() - last_created
        rate = (known - first_known) / max(0.001, time.monotonic() - first_at)
        outbox = mongo.tickets.tickets.count_documents({"pendingEvents.0": {"$exists": True}})
        behind = consumer_pending("orders-ticket-created")
        drain = (f"not drained: {known - len(extra)} of {len(ids)} known {waited:.0f} s after the last "
                 f"({rate:.1f}/s lately); {outbox} still in tickets' outbox, {behind} pending at orders' consumer")
    say(f"  {drain}")
    figures.append((f"orders' replica learns the burst of {len(ids)}", drain))
    busy = "" if drained is not None else " (tickets' relay still draining)"

    # The listing, 20 per page, at N tickets.
    say(f"bench: GET /api/tickets (20 per page) for {LIST_SECONDS:.0f} s, {LIST_CONCURRENCY} callers{busy}")
    lat, codes, took = timed_loop(LIST_CONCURRENCY, LIST_SECONDS, lambda i: Client(), lambda c: c.request("GET", "/api/tickets", route="GET /api/tickets")[0])
    line = f"p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}, {len(lat) / took:.1f} req/s ({LIST_CONCURRENCY} callers, {len(lat)} requests), statuses {dict(codes)}{busy}"
    say(f"  {line}")
    figures.append((f"GET /api/tickets at {len(ids) + len(extra)} tickets", line))

    # Show by id through the stack next to the driver's find by _id on the same server.
    say(f"bench: GET /api/tickets/{{id}} for {SHOW_SECONDS:.0f} s, {CONCURRENCY} callers; then the driver's find by _id{busy}")
    pick = ids[:] or extra
    lat, codes, took = timed_loop(CONCURRENCY, SHOW_SECONDS, lambda i: Client(), lambda c: c.request("GET", f"/api/tickets/{random.choice(pick)}", route="GET /api/tickets/:id")[0])
    http_rate = len(lat) / took
    http_line = f"{http_rate:.0f} req/s, p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}, statuses {dict(codes)}"
    say(f"  service: {http_line}")
    coll = mongo.tickets.tickets
    oids = [ObjectId(i) for i in pick]
    lat, codes, took = timed_loop(CONCURRENCY, SHOW_SECONDS, lambda i: None, lambda _: 200 if coll.find_one({"_id": random.choice(oids)}) else 404)
    raw_rate = len(lat) / took
    raw_line = f"{raw_rate:.0f} finds/s, p50 {ms(pct(lat, 50))}, p99 {ms(pct(lat, 99))}"
    say(f"  driver:  {raw_line}")
    say(f"  service / driver: {http_rate / raw_rate:.2f}")
    figures.append((f"GET /api/tickets/{{id}} ({CONCURRENCY} callers){busy}", http_line))
    figures.append((f"driver find by _id, same server ({CONCURRENCY} callers)", f"{raw_line}; service/driver {http_rate / raw_rate:.2f}"))

    errors = {f"{route} {code}": n for (route, code), n in sorted(statuses.items()) if code == 0 or code >= 500}
    say("")
    say(f"bench (stack): figures, {time.monotonic() - t_all:.0f} s in all")
    for what, measured in figures:
        say(f"  {what:<52} {measured}")
    say(f"  5xx or no answer: {errors or 'none'}")


if __name__ == "__main__":
    main()
