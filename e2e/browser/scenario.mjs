// Issue 7's scenario in real headless Chromium: a seller and a buyer use GitTix through
// its one origin, the way people do. Run by scripts/test.d/browser.sh, which starts the
// whole stack on private ports; by hand:
//   BASE_URL=http://127.0.0.1:8080 GITTIX_SERVICES="auth tickets orders payments client" node scenario.mjs
//
// Settings (environment):
//   BASE_URL          the stack's origin (required)
//   GITTIX_SERVICES   the services that run; steps needing a missing one are skipped
//   ARTIFACTS         where screenshots go (default ../../artifacts/browser)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   EXPIRATION_WINDOW_SECONDS  the orders service's window, to bound the expiry wait
//   MAILPIT_URL       the stack's Mailpit (its API), where notifications' emails arrive
// Prints one line per step and ends with `browser: N passed, M failed`; exits 1 on failure.

import { mkdirSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.BASE_URL || "").replace(/\/$/, "");
if (!BASE_URL) {
  console.error("BASE_URL is required");
  console.log("browser: 0 passed, 1 failed");
  process.exit(1);
}
const SERVICES = new Set((process.env.GITTIX_SERVICES || "auth tickets client").split(/\s+/).filter(Boolean));
const ARTIFACTS = resolve(process.env.ARTIFACTS || new URL("../../artifacts/browser", import.meta.url).pathname);
const WINDOW_SECONDS = Number(process.env.EXPIRATION_WINDOW_SECONDS || 15);
const RUN = Date.now().toString(36);
const PASSWORD = "correct horse battery";
const NEW_PASSWORD = "a brand new horse";
const MAILPIT_URL = (process.env.MAILPIT_URL || "").replace(/\/$/, "");

rmSync(ARTIFACTS, { recursive: true, force: true });
mkdirSync(ARTIFACTS, { recursive: true });

// ---------------------------------------------------------------------------------------
// A tiny step runner: each step names what it needs (services, earlier steps); a missing
// service skips it, a failed earlier step fails it without running.
const results = [];
const outcome = new Map();
let shots = 0;

async function step(name, { services = [], after = [] }, body) {
  const missing = services.filter((s) => !SERVICES.has(s));
  if (missing.length) {
    outcome.set(name, "skip");
    results.push({ name, status: "skip", note: `needs ${missing.join(", ")}` });
    console.log(`skip - ${name} (needs ${missing.join(", ")})`);
    return;
  }
  const blocked = after.filter((a) => outcome.get(a) !== "pass");
  if (blocked.length) {
    const skippedOnly = blocked.every((a) => outcome.get(a) === "skip");
    const status = skippedOnly ? "skip" : "fail";
    outcome.set(name, status);
    results.push({ name, status, note: `after ${blocked.join(", ")}` });
    console.log(`${status === "skip" ? "skip" : "FAIL"} - ${name} (not run: ${blocked.join(", ")} did not pass)`);
    return;
  }
  const started = Date.now();
  try {
    await body();
    outcome.set(name, "pass");
    results.push({ name, status: "pass" });
    console.log(`ok   - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    outcome.set(name, "fail");
    results.push({ name, status: "fail", note: String(err && err.message ? err.message : err) });
    console.log(`FAIL - ${name}: ${String(err && err.stack ? err.stack : err).split("\n").slice(0, 6).join("\n       ")}`);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  shots += 1;
  const file = `${ARTIFACTS}/${String(shots).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
}

// Every request must stay on the GitTix origin (no CDN, no tracker; Stripe.js only when a
// publishable key is configured, which this run does not do), and no script may throw.
function watch(page, label, problems) {
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(BASE_URL) && !url.startsWith("data:")) {
      problems.push(`${label}: request to another origin: ${url}`);
    }
  });
  page.on("pageerror", (err) => problems.push(`${label}: script error: ${err.message}`));
}

async function headerEmail(page) {
  return (await page.locator(".user-email").textContent({ timeout: 5000 }))?.trim();
}

async function signUp(page, email) {
  await page.goto(`${BASE_URL}/auth/signup`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await Promise.all([page.waitForURL(`${BASE_URL}/`), page.getByRole("button", { name: "Sign up" }).click()]);
  check((await headerEmail(page)) === email, "the header does not show the new user's email");
}

async function signOut(page) {
  await Promise.all([
    page.waitForURL(`${BASE_URL}/`),
    page.getByRole("button", { name: "Sign out" }).click(),
  ]);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign in" }).waitFor({ timeout: 5000 });
  check((await page.locator(".user-email").count()) === 0, "still signed in after signing out");
}

async function sell(page, title, price) {
  await page.goto(`${BASE_URL}/tickets/new`);
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Price").fill(price);
  await Promise.all([
    page.waitForURL(/\/tickets\/[0-9a-f]+$/),
    page.getByRole("button", { name: "List ticket" }).click(),
  ]);
  await page.getByRole("heading", { name: title }).waitFor();
  return page.url().split("/").pop();
}

async function signIn(page, email, password = PASSWORD) {
  await page.goto(`${BASE_URL}/auth/signin`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await Promise.all([page.waitForURL(`${BASE_URL}/`), page.getByRole("button", { name: "Sign in" }).click()]);
  check((await headerEmail(page)) === email, "not signed in");
}

// Lists a ticket with its event details (issue 19) through the sell form; returns its id.
async function sellEvent(page, title, price, event, name) {
  await page.goto(`${BASE_URL}/tickets/new`);
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Price").fill(price);
  await page.getByLabel("Venue").fill(event.venue);
  await page.getByLabel("City").fill(event.city);
  await page.getByLabel("Starts at").fill(event.startsAt);
  await page.getByLabel("Section").fill(event.section);
  await page.getByLabel("Row").fill(event.row);
  await page.getByLabel("Seat", { exact: true }).fill(event.seat);
  await page.getByLabel("Description").fill(event.description);
  if (name) await shot(page, name);
  await Promise.all([
    page.waitForURL(/\/tickets\/[0-9a-f]+$/),
    page.getByRole("button", { name: "List ticket" }).click(),
  ]);
  await page.getByRole("heading", { name: title }).waitFor();
  return page.url().split("/").pop();
}

// The home page's search form: fills these filters (the others emptied), searches.
async function search(page, filters) {
  await page.goto(`${BASE_URL}/`);
  const form = page.getByRole("search", { name: "Find tickets" });
  for (const label of ["Search", "City", "Min price", "Max price"]) {
    await form.getByLabel(label, { exact: true }).fill(filters[label] || "");
  }
  await Promise.all([
    page.waitForURL(/\/\?/),
    form.getByRole("button", { name: "Search" }).click(),
  ]);
}

// Reloads `/` until the ticket is (or is not) listed.
async function homeLists(page, title, wanted, seconds) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    await page.goto(`${BASE_URL}/`);
    const listed = (await page.getByRole("link", { name: title, exact: true }).count()) > 0;
    if (listed === wanted) return;
    if (Date.now() > deadline) {
      throw new Error(`after ${seconds} s the ticket "${title}" is ${listed ? "still" : "not"} listed on /`);
    }
    await page.waitForTimeout(500);
  }
}

// Purchases from the ticket page. Orders learns of a new ticket through an event, so a
// very fresh ticket may first say "try again in a moment".
async function purchase(page, ticketId) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    await page.goto(`${BASE_URL}/tickets/${ticketId}`);
    await page.getByRole("button", { name: "Purchase" }).click();
    await page.waitForLoadState("load");
    if (/\/orders\/[0-9a-f]+/.test(page.url())) return page.url().split("/").pop().split("?")[0];
    const alert = await page.locator("[role=alert]").textContent().catch(() => "");
    if (!/try again in a moment/.test(alert || "") || Date.now() > deadline) {
      throw new Error(`purchase did not open an order: ${alert || page.url()}`);
    }
    await page.waitForTimeout(300);
  }
}

// The messages Mailpit holds for `to` whose subject matches, newest first.
async function mails(to, subject) {
  const query = encodeURIComponent(`to:"${to}"`);
  const response = await fetch(`${MAILPIT_URL}/api/v1/search?query=${query}&limit=50`);
  check(response.ok, `Mailpit search: ${response.status}`);
  const { messages = [] } = await response.json();
  return messages.filter((m) => subject.test(m.Subject));
}

// Waits until exactly one email to `to` matches `subject` (and stays one a moment more,
// so a duplicate would show), and returns it with its HTML and text.
async function theEmail(to, subject, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let found = [];
  while ((found = await mails(to, subject)).length === 0) {
    if (Date.now() > deadline) throw new Error(`no email "${subject}" to ${to} after ${seconds} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
  await new Promise((r) => setTimeout(r, 1500));
  found = await mails(to, subject);
  check(found.length === 1, `${found.length} emails "${subject}" to ${to}: ${found.map((m) => m.Subject).join("; ")}`);
  const response = await fetch(`${MAILPIT_URL}/api/v1/message/${found[0].ID}`);
  check(response.ok, `Mailpit message: ${response.status}`);
  return response.json();
}

// An email's HTML in a page of its own (outside the watched GitTix pages), for the eye.
async function shotEmail(message, name) {
  const context = await browser.newContext(desktop);
  const page = await context.newPage();
  await page.setContent(message.HTML, { waitUntil: "load" });
  await shot(page, name);
  await context.close();
}

// ---------------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const problems = [];
const desktop = { viewport: { width: 1280, height: 800 } };
const sellerContext = await browser.newContext(desktop);
const buyerContext = await browser.newContext(desktop);
const seller = await sellerContext.newPage();
const buyer = await buyerContext.newPage();
for (const page of [seller, buyer]) page.setDefaultTimeout(15_000);
watch(seller, "seller", problems);
watch(buyer, "buyer", problems);

const sellerEmail = `seller-${RUN}@example.com`;
const buyerEmail = `buyer-${RUN}@example.com`;
const concert = `Concert ${RUN}`;
const lateShow = `Late show ${RUN}`;
let concertId = "";
let lateShowId = "";
let orderId = "";
// A second buyer with the concert's page open while the first one buys it.
let rivalContext = null;
let rival = null;
// Issue 19: two events with details, in different cities at different prices.
const jazz = `Jazz night ${RUN}`;
const opera = `Opera gala ${RUN}`;
const jazzCity = `Lisbon${RUN}`;
const operaCity = `Porto${RUN}`;
let operaId = "";

try {
  await step("home page, signed out", { services: ["client", "tickets"] }, async () => {
    await seller.goto(`${BASE_URL}/`);
    await seller.getByRole("heading", { name: "Tickets for sale" }).waitFor();
    const nav = seller.getByRole("navigation", { name: "Main" });
    await nav.getByRole("link", { name: "Sign up" }).waitFor();
    await nav.getByRole("link", { name: "Sign in" }).waitFor();
    await shot(seller, "home-signed-out");
  });

  await step("sign-up form shows errors next to the fields", { services: ["client", "auth"] }, async () => {
    await seller.goto(`${BASE_URL}/auth/signup`);
    await seller.getByLabel("Email").fill("not-an-email");
    await seller.getByLabel("Password").fill("short");
    await seller.getByRole("button", { name: "Sign up" }).click();
    await seller.locator("#email-error").waitFor();
    check(/Email must be valid/.test(await seller.locator("#email-error").textContent()), "no email error");
    check(await seller.locator("#password-error").isVisible(), "no password error");
    await shot(seller, "signup-errors");
  });

  await step("seller signs up", { services: ["client", "auth"] }, async () => {
    await signUp(seller, sellerEmail);
    await shot(seller, "home-signed-in-seller");
  });

  await step("seller lists tickets", { services: ["tickets"], after: ["seller signs up"] }, async () => {
    concertId = await sell(seller, concert, "42.50");
    check((await seller.locator(".price").textContent()).includes("$42.50"), "price not shown");
    check(await seller.getByRole("button", { name: "Purchase" }).isDisabled(), "the owner may purchase");
    await seller.getByText("This is your ticket").waitFor();
    await shot(seller, "ticket-own");
    lateShowId = await sell(seller, lateShow, "9");
  });

  await step("the tickets are on the home page", { after: ["seller lists tickets"] }, async () => {
    await homeLists(seller, concert, true, 10);
    await homeLists(seller, lateShow, true, 10);
    await shot(seller, "home-with-tickets");
  });

  await step("seller signs out", { after: ["seller signs up"] }, async () => {
    await signOut(seller);
    await shot(seller, "home-after-sign-out");
  });

  await step("seller signs in again", { after: ["seller signs out"] }, async () => {
    await seller.goto(`${BASE_URL}/auth/signin`);
    await seller.getByLabel("Email").fill(sellerEmail);
    await seller.getByLabel("Password").fill("wrong password");
    await seller.getByRole("button", { name: "Sign in" }).click();
    await seller.locator("[role=alert]").waitFor();
    await shot(seller, "signin-wrong-password");
    await seller.getByLabel("Password").fill(PASSWORD);
    await Promise.all([seller.waitForURL(`${BASE_URL}/`), seller.getByRole("button", { name: "Sign in" }).click()]);
    check((await headerEmail(seller)) === sellerEmail, "not signed in");
    await signOut(seller);
  });

  await step("buyer signs up and opens the ticket", { after: ["the tickets are on the home page"] }, async () => {
    await signUp(buyer, buyerEmail);
    await Promise.all([
      buyer.waitForURL(`${BASE_URL}/tickets/${concertId}`),
      buyer.getByRole("link", { name: concert, exact: true }).click(),
    ]);
    check(await buyer.getByRole("button", { name: "Purchase" }).isEnabled(), "Purchase is disabled for a buyer");
    await shot(buyer, "ticket-buyer");
  });

  await step("a second buyer has the ticket page open, live", {
    services: ["client", "auth", "tickets"],
    after: ["buyer signs up and opens the ticket"],
  }, async () => {
    rivalContext = await browser.newContext(desktop);
    rival = await rivalContext.newPage();
    rival.setDefaultTimeout(15_000);
    watch(rival, "rival", problems);
    await signUp(rival, `rival-${RUN}@example.com`);
    await rival.goto(`${BASE_URL}/tickets/${concertId}`);
    // The page's event stream is open (the script marks it), and the ticket is for sale.
    await rival.locator('[data-live-ticket][data-live="open"]').waitFor({ timeout: 10_000 });
    check((await rival.locator("#ticket-status").textContent()).trim() === "Available", "not available");
    check(await rival.getByRole("button", { name: "Purchase" }).isEnabled(), "Purchase is disabled for the second buyer");
    // Gone if the page reloads: what follows must happen on this very page.
    await rival.evaluate(() => { window.gittixSamePage = true; });
  });

  await step("buyer purchases and sees the countdown", {
    services: ["orders"],
    after: ["buyer signs up and opens the ticket"],
  }, async () => {
    orderId = await purchase(buyer, concertId);
    const clock = buyer.locator("[data-clock]");
    const first = (await clock.textContent()).trim();
    await buyer.waitForTimeout(2200);
    const later = (await clock.textContent()).trim();
    check(first !== later, `the countdown does not move (${first})`);
    await buyer.getByRole("button", { name: "Pay (test mode)" }).waitFor();
    await shot(buyer, "order-countdown");
  });

  await step("the open ticket page shows the reservation without a reload", {
    after: ["a second buyer has the ticket page open, live", "buyer purchases and sees the countdown"],
  }, async () => {
    // No goto, no reload: the news comes through the page's event stream.
    await rival.getByText("Someone just reserved this ticket").waitFor({ timeout: 10_000 });
    check((await rival.locator("#ticket-status").textContent()).trim() === "Reserved", "the badge does not say Reserved");
    check(await rival.getByRole("button", { name: "Purchase" }).isDisabled(), "Purchase is still enabled");
    check(await rival.evaluate(() => window.gittixSamePage === true), "the page was reloaded");
    await shot(rival, "ticket-reserved-live");
  });
  if (rivalContext) await rivalContext.close();

  await step("buyer pays and the order is complete", {
    services: ["payments"],
    after: ["buyer purchases and sees the countdown"],
  }, async () => {
    await buyer.goto(`${BASE_URL}/orders/${orderId}`);
    await buyer.getByRole("button", { name: "Pay (test mode)" }).click();
    // Complete as soon as orders hears of the payment; the page reloads itself until then.
    await buyer.locator(".badge-complete").waitFor({ timeout: 20_000 });
    check((await buyer.getByRole("button", { name: "Pay (test mode)" }).count()) === 0, "pay form on a complete order");
    await shot(buyer, "order-complete");
  });

  await step("the reservation and the receipt arrive by email, once each", {
    services: ["notifications"],
    after: ["buyer pays and the order is complete"],
  }, async () => {
    check(MAILPIT_URL, "MAILPIT_URL is not set");
    const reservation = await theEmail(buyerEmail, new RegExp(`^Your reservation of ${concert}`), 20);
    check(reservation.Text.includes(`/orders/${orderId}`), "the reservation has no link to the order");
    const receipt = await theEmail(buyerEmail, new RegExp(`^Your receipt for ${concert}`), 20);
    check(receipt.Text.includes("$42.50"), "the receipt does not show the amount");
    check(receipt.Text.includes(orderId), "the receipt does not name the order");
    await shotEmail(receipt, "email-receipt");
  });

  await step("the sold ticket has left the home page", { after: ["buyer pays and the order is complete"] }, async () => {
    await homeLists(buyer, concert, false, 15);
    await shot(buyer, "home-after-purchase");
  });

  await step("my orders lists the order with its status", { after: ["buyer pays and the order is complete"] }, async () => {
    await buyer.goto(`${BASE_URL}/orders`);
    await buyer.getByRole("link", { name: concert }).waitFor();
    check((await buyer.locator(".badge-complete").count()) >= 1, "no complete badge");
    await shot(buyer, "my-orders");
  });

  await step("an unpaid order expires and its ticket is back on sale", {
    services: ["orders"],
    after: ["buyer signs up and opens the ticket"],
  }, async () => {
    const lateOrder = await purchase(buyer, lateShowId);
    await buyer.getByRole("button", { name: /Pay/ }).first().waitFor();
    await homeLists(seller, lateShow, false, 15);
    await buyer.goto(`${BASE_URL}/orders/${lateOrder}`);
    await buyer.getByText("Order expired").waitFor({ timeout: (WINDOW_SECONDS + 10) * 1000 });
    check(!(await buyer.locator("form[data-pay-form]").first().isVisible()), "pay form still visible after expiry");
    await shot(buyer, "order-expired");
    // Released by the expiration service (or, without it, by orders' sweeper).
    await homeLists(buyer, lateShow, true, 60);
    await shot(buyer, "home-ticket-back");
  });

  await step("buyer signs out", { after: ["buyer signs up and opens the ticket"] }, async () => {
    await buyer.goto(`${BASE_URL}/`);
    await signOut(buyer);
  });

  await step("buyer resets a forgotten password with the emailed link", {
    services: ["client", "auth", "notifications"],
    after: ["buyer signs out"],
  }, async () => {
    check(MAILPIT_URL, "MAILPIT_URL is not set");
    await buyer.goto(`${BASE_URL}/auth/signin`);
    await Promise.all([
      buyer.waitForURL(`${BASE_URL}/forgot-password`),
      buyer.getByRole("link", { name: "Forgot password?" }).click(),
    ]);
    await buyer.locator("#email").fill(buyerEmail);
    await buyer.getByRole("button", { name: "Send reset link" }).click();
    await buyer.getByText(/we sent a link/i).waitFor();
    await shot(buyer, "forgot-password-sent");
    const email = await theEmail(buyerEmail, /^Reset your GitTix password/, 20);
    await shotEmail(email, "email-password-reset");
    const link = email.Text.match(/https?:\/\/\S*\/reset-password\?token=[^\s"<>]+/);
    check(link, "no reset link in the email");
    // The link is on PUBLIC_URL (localhost); the same page on this run's origin.
    const target = new URL(link[0]);
    await buyer.goto(`${BASE_URL}${target.pathname}${target.search}`);
    await buyer.locator("#password").fill(NEW_PASSWORD);
    await buyer.locator("#password-confirm").fill(NEW_PASSWORD);
    await buyer.getByRole("button", { name: "Reset password" }).click();
    await buyer.getByRole("link", { name: /sign in/i }).first().waitFor();
    await shot(buyer, "password-reset-done");
    // The old password no longer works; the new one does.
    await buyer.goto(`${BASE_URL}/auth/signin`);
    await buyer.getByLabel("Email").fill(buyerEmail);
    await buyer.getByLabel("Password").fill(PASSWORD);
    await buyer.getByRole("button", { name: "Sign in" }).click();
    await buyer.locator("[role=alert]").waitFor();
    await buyer.getByLabel("Password").fill(NEW_PASSWORD);
    await Promise.all([buyer.waitForURL(`${BASE_URL}/`), buyer.getByRole("button", { name: "Sign in" }).click()]);
    check((await headerEmail(buyer)) === buyerEmail, "not signed in with the new password");
    await signOut(buyer);
  });

  await step("an unknown page is a friendly 404", { services: ["client"] }, async () => {
    const response = await buyer.goto(`${BASE_URL}/no/such/page`);
    check(response.status() === 404, `status ${response.status()}`);
    await buyer.getByRole("heading", { name: "Page not found" }).waitFor();
    await shot(buyer, "not-found");
  });

  await step("pages fit a phone", { services: ["client", "tickets"], after: ["seller lists tickets"] }, async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await phone.newPage();
    watch(page, "phone", problems);
    for (const [path, name] of [["/", "phone-home"], [`/tickets/${concertId}`, "phone-ticket"], ["/auth/signup", "phone-signup"]]) {
      await page.goto(`${BASE_URL}${path}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 1, `${path} is ${overflow}px wider than the phone`);
      await shot(page, name);
    }
    await phone.close();
  });

  await step("/api/docs renders and lists the operations of all four services", {
    services: ["client", "auth", "tickets", "orders", "payments"],
  }, async () => {
    const context = await browser.newContext(desktop);
    const page = await context.newPage();
    watch(page, "docs", problems);
    // A script or style the page's Content-Security-Policy refuses is a console error.
    const errors = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    const response = await page.goto(`${BASE_URL}/api/docs`);
    check(response.status() === 200, `status ${response.status()}`);
    const policy = response.headers()["content-security-policy"] || "";
    check(policy.includes("script-src 'self';"), `the docs page's policy: ${policy}`);
    // Each document (the menu at the top), with an operation only it has.
    for (const [name, path, file] of [
      ["auth (/api/users)", "/api/users/signup", "api-docs-auth"],
      ["tickets (/api/tickets)", "/api/tickets/{id}", "api-docs-tickets"],
      ["orders (/api/orders)", "/api/orders/{id}", "api-docs-orders"],
      ["payments (/api/payments)", "/api/payments/webhook", "api-docs-payments"],
    ]) {
      await page.locator(".download-url-wrapper select").selectOption({ label: name });
      await page.locator(`.opblock-summary-path[data-path="${path}"]`).first().waitFor();
      const operations = await page.locator(".opblock").count();
      check(operations >= 3, `${name}: only ${operations} operations listed`);
      await shot(page, file);
    }
    await context.close();
    check(errors.length === 0, `console errors on /api/docs:\n${errors.join("\n")}`);
  });

  await step("seller lists two events with their details", {
    services: ["client", "auth", "tickets"],
    after: ["seller signs in again"],
  }, async () => {
    await signIn(seller, sellerEmail);
    await sellEvent(seller, jazz, "30", {
      venue: "Hot Clube", city: jazzCity, startsAt: "2031-06-06T21:00",
      section: "Floor", row: "B", seat: "7", description: "Quartet, two sets.",
    }, "sell-with-details");
    operaId = await sellEvent(seller, opera, "120", {
      venue: "Teatro Nacional", city: operaCity, startsAt: "2031-07-01T19:30",
      section: "Stalls", row: "C", seat: "14", description: "Gala night with the full orchestra.",
    });
    // The ticket page shows the event.
    for (const text of ["Teatro Nacional", operaCity, "Tue 1 Jul 2031, 19:30 UTC", "Section Stalls · Row C · Seat 14"]) {
      await seller.getByText(text, { exact: true }).first().waitFor();
    }
    await shot(seller, "ticket-with-details");
  });

  await step("a buyer searches by city and by price, finds the right one and opens it", {
    services: ["client", "auth", "tickets"],
    after: ["seller lists two events with their details"],
  }, async () => {
    const fanContext = await browser.newContext(desktop);
    const fan = await fanContext.newPage();
    fan.setDefaultTimeout(15_000);
    watch(fan, "fan", problems);
    try {
      await signUp(fan, `fan-${RUN}@example.com`);
      const listed = async (title) => (await fan.getByRole("link", { name: title, exact: true }).count()) > 0;
      // By city (either case): only the jazz night.
      await search(fan, { City: jazzCity.toLowerCase() });
      await fan.getByRole("link", { name: jazz, exact: true }).waitFor();
      check(!(await listed(opera)), "the city filter shows the other city's event");
      check((await fan.getByText(`Hot Clube, ${jazzCity}`).count()) === 1, "the result does not show venue and city");
      await shot(fan, "home-search-city");
      // By price, among this run's events (the search words): only the opera gala.
      await search(fan, { Search: RUN, "Min price": "100" });
      await fan.getByRole("link", { name: opera, exact: true }).waitFor();
      check(!(await listed(jazz)), "the price filter shows the cheaper event");
      check((await fan.getByLabel("Min price", { exact: true }).inputValue()) === "100", "the form forgot the price");
      await shot(fan, "home-search-price");
      await Promise.all([
        fan.waitForURL(`${BASE_URL}/tickets/${operaId}`),
        fan.getByRole("link", { name: opera, exact: true }).click(),
      ]);
      await fan.getByText("Gala night with the full orchestra.").waitFor();
      check(await fan.getByRole("button", { name: "Purchase" }).isEnabled(), "Purchase is disabled for the fan");
      await shot(fan, "ticket-found-by-search");
    } finally {
      await fanContext.close();
    }
  });

  await step("the seller sees the sale under Sold with the amount on My listings", {
    after: ["buyer pays and the order is complete", "seller lists two events with their details"],
  }, async () => {
    // Tickets marks the ticket sold when it hears of the completed order.
    const deadline = Date.now() + 20_000;
    for (;;) {
      await seller.goto(`${BASE_URL}/`);
      await Promise.all([
        seller.waitForURL(`${BASE_URL}/tickets/mine`),
        seller.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "My listings" }).click(),
      ]);
      await Promise.all([
        seller.waitForURL(`${BASE_URL}/tickets/mine?status=sold`),
        seller.getByRole("navigation", { name: "Filter by status" }).getByRole("link", { name: "Sold" }).click(),
      ]);
      if ((await seller.getByRole("link", { name: concert, exact: true }).count()) > 0) break;
      if (Date.now() > deadline) throw new Error("the sold concert is not under Sold on My listings");
      await seller.waitForTimeout(500);
    }
    const row = seller.locator(`tr[data-listing="${concertId}"]`);
    check((await row.locator("[data-earned]").textContent()).trim() === "$42.50", "the sale's amount is not shown");
    check(/Total earned: \$42\.50/.test(await seller.locator("[data-total-earned]").textContent()), "the total earned is not $42.50");
    check((await seller.getByRole("link", { name: jazz, exact: true }).count()) === 0, "an unsold ticket is under Sold");
    await shot(seller, "my-listings-sold");
    await seller.getByRole("navigation", { name: "Filter by status" }).getByRole("link", { name: "Available" }).click();
    await seller.getByRole("link", { name: jazz, exact: true }).waitFor();
    await shot(seller, "my-listings-available");
  });

  await step("no request left the origin and no script failed", {}, async () => {
    check(problems.length === 0, problems.join("\n"));
  });
} finally {
  await browser.close();
}

const passed = results.filter((r) => r.status === "pass").length;
const failed = results.filter((r) => r.status === "fail").length;
const skipped = results.filter((r) => r.status === "skip").length;
console.log(`screenshots: ${ARTIFACTS} (${shots})`);
if (skipped) console.log(`skipped: ${skipped} (services not built yet)`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
