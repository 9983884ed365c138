// Loupe: keyboard review and small niceties. No framework; htmx does the swapping.
(function () {
  "use strict";

  function reviewForm() {
    const card = document.getElementById("card");
    return card ? card.querySelector("form.review-form") : null;
  }

  document.addEventListener("keydown", function (event) {
    const form = reviewForm();
    if (!form || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    // Typing a reason: keys are text, except Escape which leaves the field.
    if (target.matches && target.matches("input[type=text], textarea, select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (/^[1-9]$/.test(event.key)) {
      const radio = form.querySelector('input[name="label"][data-key="' + event.key + '"]');
      if (radio) {
        radio.checked = true;
        radio.focus();
        event.preventDefault();
      }
    } else if (event.key === "Enter") {
      // Enter submits the chosen label only from the card itself or a label
      // radio; on a button, link or <summary> it keeps its usual meaning
      // (Enter on Skip must skip, not submit).
      if (target.closest && target.closest("button, a, summary, select, textarea")) return;
      if (target.matches && target.matches("input:not([name=label])")) return;
      event.preventDefault();
      form.querySelector('button[value="submit"]').click();
    } else if (event.key === "s" || event.key === "S") {
      event.preventDefault();
      form.querySelector('button[value="skip"]').click();
    }
  });

  // Slow plain forms (an import validates every row): show that work is under way
  // and stop a second click from sending the file twice.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.matches || !form.matches("form[data-busy-text]")) return;
    const status = form.querySelector(".busy");
    if (status) status.textContent = form.dataset.busyText;
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.disabled = true;
    });
  });

  // After htmx swaps in the next card, move focus to it so screen readers and
  // the keyboard both continue from the new item.
  document.addEventListener("htmx:afterSwap", function (event) {
    const heading = document.querySelector("#card h2");
    if (heading) heading.focus({ preventScroll: false });
  });

  // A failed request (network, 5xx) must not look like nothing happened.
  document.addEventListener("htmx:responseError", function (event) {
    const card = document.getElementById("card");
    if (!card) return;
    let box = card.querySelector(".error");
    if (!box) {
      box = document.createElement("p");
      box.className = "error";
      box.setAttribute("role", "alert");
      card.prepend(box);
    }
    box.textContent = "The server could not save that (" + event.detail.xhr.status + "). Nothing was recorded; try again.";
  });
  document.addEventListener("htmx:sendError", function () {
    const card = document.getElementById("card");
    if (card) {
      const box = document.createElement("p");
      box.className = "error";
      box.setAttribute("role", "alert");
      box.textContent = "Could not reach the server. Nothing was recorded; check your connection and try again.";
      card.prepend(box);
    }
  });
})();
