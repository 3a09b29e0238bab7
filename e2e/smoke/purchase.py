#!/usr/bin/env python3
"""The purchase flow through nginx, as `make up` serves it: two users, sell, buy, pay
(simulated gateway), and the refusals around it. Standard library only.

usage: purchase.py BASE_URL   (the stack must run with EXPIRATION_WINDOW_SECONDS small)
Prints one line per check and `smoke: N passed, M failed` last; exits 1 on a failure.
With MAILPIT_URL set (the stack runs notifications), it also checks the emails the flow
caused arrived in the stack's Mailpit, each once, their links on PUBLIC_URL.
"""
import http.cookiejar
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

BASE = sys.argv[1].rstrip("/")
passed, failed = 0, 0


class Browser:
    """A user agent with its own cookie jar."""

    def __init__(self):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(BASE + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, method, path, body=None):
        status, _, raw = self.call(method, path, body)
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")


def check(what, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"  ok    {what}")
    else:
        failed += 1
        print(f"  FAIL  {what} {detail}")
    return condition


def until(what, attempt, seconds=15):
    """Retries `attempt` (returning a truthy value when done) until it succeeds."""
    deadline = time.time() + seconds
    while True:
        result = attempt()
        if result or time.time() > deadline:
            return check(what, bool(result), f"(gave up after {seconds}s)") and result
        time.sleep(0.2)


def message(body):
    try:
        return body["errors"][0]["message"]
    except (TypeError, KeyError, IndexError):
        return None


def main():
    seller, buyer = Browser(), Browser()
    run = uuid.uuid4().hex[:8]
    status, user = seller.json("POST", "/api/users/signup", {"email": f"seller-{run}@example.com", "password": "correct horse"})
    check("seller signs up through nginx (201)", status == 201, (status, user))
    status, me = seller.json("GET", "/api/users/currentuser")
    check("currentuser knows the seller", status == 200 and me["currentUser"]["email"] == f"seller-{run}@example.com", me)
    status, _ = buyer.json("POST", "/api/users/signup", {"email": f"buyer-{run}@example.com", "password": "correct horse"})
    check("buyer signs up (201)", status == 201)

    def sell(title):
        status, ticket = seller.json("POST", "/api/tickets", {"title": title, "price": 19.99})
        check(f"seller lists {title!r} (201)", status == 201, (status, ticket))
        return ticket["id"]

    def order(ticket_id):
        def attempt():
            status, body = buyer.json("POST", "/api/orders", {"ticketId": ticket_id})
            return body if status == 201 else None

        return until("buyer reserves the ticket (201, once orders has it)", attempt)

    def pay(order_id):
        return buyer.json("POST", "/api/payments", {"orderId": order_id, "paymentMethod": "pm_card_visa"})

    ticket = sell("Smoke concert")
    status, listing = buyer.json("GET", "/api/tickets?limit=100")
    check("the ticket is on the list", any(t["id"] == ticket for t in listing))
    placed = order(ticket)
    order_id = placed["id"]
    until("the ticket shows as reserved", lambda: buyer.json("GET", f"/api/tickets/{ticket}")[1].get("orderId") == order_id)

    def paid():
        status, body = pay(order_id)
        return body if status == 201 else None

    payment = until("buyer pays (201, simulated gateway)", paid)
    check("the payment names the order", payment and payment["orderId"] == order_id, payment)
    until("the order becomes complete", lambda: buyer.json("GET", f"/api/orders/{order_id}")[1]["status"] == "complete")
    check("the ticket stays reserved", buyer.json("GET", f"/api/tickets/{ticket}")[1]["orderId"] == order_id)
    status, body = pay(order_id)
    check("paying twice is refused (409)", status == 409 and message(body) == "Order is already paid", (status, body))
    status, listing = buyer.json("GET", "/api/tickets?limit=100")
    check("the sold ticket left the list", all(t["id"] != ticket for t in listing))

    cancelled = order(sell("Smoke theatre"))["id"]
    status, _ = buyer.json("DELETE", f"/api/orders/{cancelled}")
    check("buyer cancels an order (204)", status == 204)
    until(
        "paying a cancelled order is refused (409)",
        lambda: (lambda r: r[0] == 409 and message(r[1]) == "Cannot pay for a cancelled order")(pay(cancelled)),
    )

    lapsing = order(sell("Smoke opera"))
    expires_in = (time.mktime(time.strptime(lapsing["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.mktime(time.gmtime()))
    time.sleep(max(0.0, expires_in) + 0.5)
    status, body = pay(lapsing["id"])
    check(
        "paying an expired order is refused (409)",
        status == 409 and message(body) in ("Order has expired", "Cannot pay for a cancelled order"),
        (status, body),
    )
    until("the expired order is cancelled", lambda: buyer.json("GET", f"/api/orders/{lapsing['id']}")[1]["status"] == "cancelled")

    status, body = buyer.json("GET", "/api/users/nope")
    check("an unknown API route is a JSON 404", status == 404 and message(body) == "Route not found", (status, body))
    status, headers, _ = buyer.call("GET", "/")
    check("/ is served by the client", status == 200 and headers.get("content-type", "").startswith("text/html"), status)
    status, keys = buyer.json("GET", "/api/users/.well-known/jwks.json")
    check("auth publishes its public key through nginx", status == 200 and keys["keys"][0]["crv"] == "Ed25519", keys)
    status, body = seller.json("POST", "/api/users/refresh")
    check("the session renews through nginx (refresh cookie on /api/users)", status == 200 and body["email"].startswith("seller-"), (status, body))
    status, body = buyer.json("GET", "/api/tickets?limit=1&limit=2")
    check("an unreadable query string is a JSON 400", status == 400 and message(body), (status, body))
    status, _ = seller.json("POST", "/api/users/signout", {})
    check("sign out (204)", status == 204)
    status, _ = seller.json("POST", "/api/users/refresh")
    check("a signed-out session cannot be renewed (401)", status == 401, status)
    check("signed out for good", seller.json("GET", "/api/users/currentuser")[1]["currentUser"] is None)

    mailpit = os.environ.get("MAILPIT_URL")
    if mailpit:
        emails(mailpit.rstrip("/"), {"buyer": f"buyer-{run}@example.com", "seller": f"seller-{run}@example.com"})

    print(f"smoke: {passed} passed, {failed} failed")
    return 1 if failed else 0


def emails(mailpit, users):
    """The flow's emails, through notifications and the stack's Mailpit: each user gets
    some (the buyer several: the account, the orders, the payment), none twice however
    many notifications replicas run, every link on PUBLIC_URL."""

    def api(path):
        with urllib.request.urlopen(mailpit + path, timeout=10) as response:
            return json.loads(response.read())

    def inbox(address):
        query = urllib.parse.quote(f'to:"{address}"')
        return api(f"/api/v1/search?query={query}&limit=200")["messages"]

    until("the seller's email arrives in Mailpit", lambda: inbox(users["seller"]), 30)
    # The buyer's last email (the expired order's cancellation) comes seconds after the
    # others; wait until the count stays put.
    seen = {"count": -1}

    def settled():
        count = len(inbox(users["buyer"]))
        done = count >= 2 and count == seen["count"]
        seen["count"] = count
        if not done:
            time.sleep(1)
        return done

    until("the buyer's emails arrive in Mailpit (two or more)", settled, 45)
    messages = [m for address in users.values() for m in inbox(address)]
    sent = [(m["To"][0]["Address"], m["Subject"]) for m in messages]
    twice = sorted({s for s in sent if sent.count(s) > 1})
    check("no email was sent twice", not twice, twice)
    public_url = os.environ.get("PUBLIC_URL", "").rstrip("/")
    links = [url for m in messages for url in re.findall(r"https?://[^\s\"'<>)]+", api(f"/api/v1/message/{m['ID']}")["Text"])]
    check("the emails link to the stack (PUBLIC_URL)", links and all(u.startswith(public_url + "/") or u == public_url for u in links), links[:5])


if __name__ == "__main__":
    sys.exit(main())
