// The order page's countdown: counts down to the order's expiry and, at zero, says
// "Order expired" and takes the pay form away. The page works without it (the server
// renders the time left and refuses late payments); this only keeps it live.
(function () {
  "use strict";
  var box = document.querySelector("[data-countdown]");
  if (!box) return;
  // Seconds left as the server saw them, counted from when the page loaded: immune to a
  // wrong clock on the visitor's machine.
  var secondsLeft = parseInt(box.getAttribute("data-seconds-left"), 10) || 0;
  var deadline = Date.now() + secondsLeft * 1000;
  var clock = box.querySelector("[data-clock]");
  var live = box.querySelector(".countdown-live");
  var expired = box.querySelector("[data-expired-message]");
  var timer = null;
  var when = box.querySelector("[data-local-time]");
  if (when) {
    var at = new Date(when.getAttribute("datetime"));
    if (!isNaN(at)) when.textContent = at.toLocaleTimeString();
  }

  function format(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function expire() {
    if (timer) clearInterval(timer);
    live.hidden = true;
    expired.textContent = "Order expired";
    expired.hidden = false;
    document.querySelectorAll("[data-pay-form]").forEach(function (form) {
      form.hidden = true;
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
    var status = document.getElementById("order-status");
    if (status) {
      status.textContent = "Expired";
      status.className = "badge badge-cancelled";
    }
  }

  function tick() {
    var left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      expire();
      return;
    }
    clock.textContent = format(left);
  }

  tick();
  timer = setInterval(tick, 1000);
})();
