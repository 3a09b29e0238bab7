// Stripe Elements on the order page (only when a publishable key is configured): the card
// becomes a PaymentMethod in the browser, its id goes to /api/payments, and a card that
// needs confirmation (3-D Secure) is handed to Stripe.js. No card number reaches GitTix.
(function () {
  "use strict";
  var form = document.querySelector("form[data-stripe-key]");
  if (!form) return;
  var errorBox = form.querySelector("[data-pay-error]");
  var button = form.querySelector("button[type=submit]");
  var orderId = form.getAttribute("data-order-id");

  function fail(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    button.disabled = false;
  }

  if (typeof window.Stripe !== "function") {
    fail("The card form could not be loaded. Please check your connection and reload.");
    button.disabled = true;
    return;
  }
  var stripe = window.Stripe(form.getAttribute("data-stripe-key"));
  var card = stripe.elements().create("card");
  card.mount("#card-element");

  function pay(paymentMethod) {
    return fetch("/api/payments", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ orderId: orderId, paymentMethod: paymentMethod })
    });
  }

  // The access token lasts minutes: when payments says 401, renew it once from the
  // refresh cookie (sent only to /api/users) and try again.
  function payWithFreshSession(paymentMethod) {
    return pay(paymentMethod).then(function (response) {
      if (response.status !== 401) return response;
      return fetch("/api/users/refresh", { method: "POST", credentials: "same-origin" })
        .then(function (refreshed) { return refreshed.ok ? pay(paymentMethod) : response; });
    });
  }

  function done() {
    window.location.assign("/orders/" + encodeURIComponent(orderId) + "?paid=1");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
      if (result.error) return fail(result.error.message);
      return payWithFreshSession(result.paymentMethod.id).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.status === 202 && body.status === "requires_action") {
            return stripe.handleNextAction({ clientSecret: body.clientSecret }).then(function (r) {
              if (r.error) return fail(r.error.message);
              done();
            });
          }
          if (response.ok) return done();
          var errors = (body && body.errors) || [];
          fail(errors.length ? errors.map(function (e) { return e.message; }).join(" ") : "The payment did not go through.");
        });
      });
    }).catch(function () {
      fail("The payment could not be sent. Please try again.");
    });
  });
})();
