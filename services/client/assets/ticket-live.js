// The ticket page, live: follows the ticket's availability through the tickets service's
// event stream (GET /api/tickets/{id}/events, same origin) and, when another buyer
// reserves it or it comes back, updates the status badge and the Purchase button and says
// so. Without it the page is as the server rendered it (a reload shows the news).
(function () {
  "use strict";
  var page = document.querySelector("[data-live-ticket]");
  if (!page || typeof EventSource === "undefined") return;
  var id = page.getAttribute("data-live-ticket");
  var canBuy = page.getAttribute("data-can-buy") === "true";
  var status = page.getAttribute("data-status");
  var badge = document.getElementById("ticket-status");
  var button = page.querySelector(".purchase button[type=submit]");
  var hint = page.querySelector(".purchase .hint");
  var note = page.querySelector("[data-live-message]");

  var LOOK = {
    available: { text: "Available", badge: "badge badge-complete" },
    reserved: { text: "Reserved", badge: "badge badge-cancelled" },
    sold: { text: "Sold", badge: "badge badge-cancelled" },
    removed: { text: "No longer for sale", badge: "badge badge-neutral" }
  };
  var HINT = {
    available: "You'll have a few minutes to pay once it is reserved for you.",
    reserved: "This ticket is reserved by another buyer, or already sold.",
    sold: "This ticket is sold.",
    removed: "This ticket is no longer for sale."
  };

  // What to say when the ticket goes from `was` to `next`: reserved and sold are both
  // "taken" (the page renders either as Reserved), so one to the other is no news.
  function news(was, next) {
    if (next === "available") return "This ticket is available again";
    if (next === "removed") return "The seller took this ticket off sale";
    if (was !== "available") return "";
    return next === "sold" ? "Someone just bought this ticket" : "Someone just reserved this ticket";
  }

  function show(next) {
    if (!LOOK[next] || next === status) return;
    var was = status;
    status = next;
    if (badge) {
      badge.textContent = LOOK[next].text;
      badge.className = LOOK[next].badge;
    }
    // A visitor who could not buy it anyway (signed out, the seller) keeps the reason.
    if (canBuy && button) {
      button.disabled = next !== "available";
      if (hint) hint.textContent = HINT[next];
    }
    var said = news(was, next);
    if (note && said) {
      note.textContent = said;
      note.hidden = false;
    }
  }

  var source = new EventSource("/api/tickets/" + encodeURIComponent(id) + "/events");
  function onMessage(event) {
    var data;
    try {
      data = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    show(data.status);
  }
  source.addEventListener("state", onMessage);
  source.addEventListener("update", onMessage);
  page.setAttribute("data-live", "connecting");
  source.addEventListener("open", function () {
    page.setAttribute("data-live", "open");
  });
})();
