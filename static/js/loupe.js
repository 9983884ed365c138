// Loupe: keyboard review and small niceties. No framework; htmx does the swapping.
(function () {
  "use strict";

  function reviewForm() {
    const card = document.getElementById("card");
    return card ? card.querySelector("form.review-form") : null;
  }

  // A button that opens a <dialog> (the guideline on the review page): no inline script under the CSP.
  function openDialog(id) {
    const dialog = document.getElementById(id);
    if (dialog && !dialog.open) dialog.showModal();
  }
  document.addEventListener("click", function (event) {
    const opener = event.target.closest && event.target.closest("[data-opens-dialog]");
    if (opener) openDialog(opener.dataset.opensDialog);
  });

  // A key pressed the instant a card is swapped in can reach its form before htmx has bound it,
  // and the click would then post the plain form (a whole-page round trip). Binding it first is
  // harmless when htmx already has: process() skips what it initialised.
  function bound(root) {
    if (root && window.htmx) window.htmx.process(root);
    return root;
  }

  function clickButton(root, selector, event) {
    const button = root ? bound(root).querySelector(selector) : null;
    if (button) {
      event.preventDefault();
      button.click();
    }
  }

  document.addEventListener("keydown", function (event) {
    const form = reviewForm();
    const card = document.getElementById("card");
    if (!card || event.ctrlKey || event.metaKey || event.altKey) return;
    // An open dialog (the guideline) has the keyboard: Esc closes it, nothing reaches the card.
    if (document.querySelector("dialog[open]")) return;
    const target = event.target;
    // Typing a reason: keys are text, except Escape which leaves the field.
    if (target.matches && target.matches("input[type=text], textarea, select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    // Undo works on the "nothing left" card too (the last answer may have emptied the queue).
    if (event.key === "z" || event.key === "Z") {
      clickButton(card, 'button[value="undo"]', event);
      return;
    }
    if (!form) return;
    if (/^[1-9]$/.test(event.key)) {
      const radio = form.querySelector('input[name="label"][data-key="' + event.key + '"]');
      if (radio) {
        radio.checked = true;
        event.preventDefault();
        // Where the answer needs a written reason (an adjudication), the pick moves on to it, as the
        // page's key hint says ("then write why"): typed text then lands there, not on the radio.
        const why = form.querySelector('[name="reason"][required]');
        if (why && !why.value.trim()) why.focus();
        else radio.focus();
      }
    } else if (event.key === "Enter") {
      // Enter submits the chosen label only from the card itself or a label
      // radio; on a button, link or <summary> it keeps its usual meaning
      // (Enter on Skip must skip, not submit).
      if (target.closest && target.closest("button, a, summary, select, textarea")) return;
      if (target.matches && target.matches("input:not([name=label]):not([name=reason_code]):not([name=flagged])")) return;
      event.preventDefault();
      bound(form).querySelector('button[value="submit"]').click();
    } else if (event.key === "s" || event.key === "S") {
      clickButton(form, 'button[value="skip"]', event);
    } else if (event.key === "u" || event.key === "U") {
      clickButton(form, 'button[value="uncertain"]', event);
    } else if (event.key === "k" || event.key === "K") {
      clickButton(form, 'button[value="keep"]', event);
    } else if (event.key === "g" || event.key === "G") {
      event.preventDefault();
      openDialog("guideline-dialog");
    } else if (event.key === "r" || event.key === "R") {
      // Into the reason codes; the arrow keys then move between them, as in any radio group.
      const code = form.querySelector('input[name="reason_code"]:checked') || form.querySelector('input[name="reason_code"]');
      if (code) {
        event.preventDefault();
        code.focus();
        code.checked = true;
      }
    } else if (event.key === "f" || event.key === "F") {
      const flag = form.querySelector('input[name="flagged"]');
      if (flag) {
        event.preventDefault();
        flag.checked = !flag.checked;
      }
    } else if (event.key === "?") {
      event.preventDefault();
      openDialog("keys-dialog");
    }
  });

  // Back/Forward must never bring back a card for an item the reviewer no longer
  // holds. Pages are no-store and htmx keeps no history snapshots (base.html), so
  // a history step asks the server; a page the browser still restores from its
  // back/forward cache (a frozen copy, maybe of a card already answered) is
  // reloaded, so the server says which item is the reviewer's live lease now.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.getElementById("card")) window.location.reload();
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

  // Elsewhere a swap can take away the control that had focus (the audit trail's "Verify" button is
  // replaced by its result), which drops focus to <body>: a swapped-in element marked
  // data-focus-after-swap takes it instead (a heading with tabindex="-1"). The mark is removed once
  // used, so a later swap elsewhere on the page does not pull focus back to it.
  // Only when the swap did take focus away: a block that polls itself (the audit verification's progress)
  // must not pull focus back from wherever the user has since moved it.
  document.addEventListener("htmx:afterSwap", function () {
    const next = document.querySelector("[data-focus-after-swap]");
    if (next) {
      next.removeAttribute("data-focus-after-swap");
      const active = document.activeElement;
      if (!active || active === document.body || !active.isConnected) {
        // The block the heading belongs to comes into view with it (on a phone the heading alone was
        // scrolled to the bottom edge, its result below the fold).
        next.focus({ preventScroll: true });
        (next.parentElement || next).scrollIntoView({ block: "nearest" });
      }
    }
  });

  // The lease: how long the card's item stays held for this reviewer, and a
  // spoken (aria-live), not modal, warning a minute before it runs out. The
  // server sends the seconds left, so a wrong clock here does not matter.
  function leaseTick() {
    const card = document.getElementById("card");
    const lease = card ? card.querySelector("[data-lease-left-s]") : null;
    const warning = card ? card.querySelector("#lease-warning") : null;
    if (!lease || !warning) return;
    if (!lease.dataset.deadline) {
      lease.dataset.deadline = String(Date.now() + Number(lease.dataset.leaseLeftS) * 1000);
    }
    const left = Number(lease.dataset.deadline) - Date.now();
    const minutes = Math.ceil(left / 60000);
    const remaining = lease.querySelector("[data-lease-remaining]");
    if (remaining) {
      remaining.textContent = left > 0 ? " (" + minutes + (minutes === 1 ? " minute" : " minutes") + " left)" : " (ended)";
    }
    let text = "";
    if (left <= 0) {
      text = "Your hold on this item has ended: another reviewer may take it. If your answer can no longer be saved, you will be told which item and why.";
    } else if (left <= 60000) {
      text = "Your hold on this item ends in under a minute. Submit or skip now, or it may go to another reviewer.";
    }
    if (warning.textContent !== text) {
      warning.textContent = text;
      warning.className = text ? "notice" : "";
    }
  }
  leaseTick();
  setInterval(leaseTick, 5000);
  document.addEventListener("htmx:afterSwap", leaseTick);

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
