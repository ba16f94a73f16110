// The console's own script: progressive enhancement only, every page works without it.
// - A form marked data-autosubmit submits when a select changes (the provider picker).
// - A form marked data-alternatives shows only the chosen credential alternative.
// - "Use these prices" copies a passing test's suggested prices into the cost fields.
// - Save carries a Test Connection receipt that binds provider model ID, endpoint, region and
//   credential: changing one of them drops the receipt and disables Save again, saying why.
//   The server checks the receipt anyway (app refuses a mismatch); this only says it early.
// - A <dialog data-modal> (the Add Custom Model dialog, the delete confirmation) opens as a
//   modal (the rest of the page inert) and keeps keyboard focus inside: Tab past the last
//   control comes back to the first, Shift+Tab the other way; Escape goes to its Cancel link.
// - A button with data-copy="<input id>" copies that input's value to the clipboard (the
//   token issued once); nothing is logged.
// - A request htmx made that the server refused (a stale anti-forgery token after signing in
//   elsewhere, say) or could not send is not swapped in by htmx: its problem is shown where
//   the answer would have gone, instead of nothing happening.
"use strict";
(function () {
  var BOUND = ["provider_model_id", "endpoint_url", "region", "credential_kind", "credential_id",
               "api_key", "access_key_id", "secret_access_key", "session_token", "bedrock_api_key"];

  function showChosenAlternative(form) {
    var chosen = form.querySelector("input[name=credential_kind]:checked") ||
                 form.querySelector("input[name=credential_kind]");
    if (!chosen) return;
    form.querySelectorAll("fieldset.alternative").forEach(function (set) {
      set.classList.toggle("hidden", set.getAttribute("data-kind") !== chosen.value);
    });
  }

  function dropReceipt(form) {
    var receipt = form.querySelector("input[data-receipt]");
    if (!receipt) return;
    receipt.remove();
    // The passing outcome no longer speaks for this draft.
    form.querySelectorAll("#test-outcome .passed").forEach(function (passed) { passed.remove(); });
    var save = document.getElementById("save");
    if (save) save.disabled = true;
    var why = document.getElementById("save-why");
    if (why) why.textContent = "A field the test covered changed since it passed: run Test Connection again to enable Save.";
  }

  // The controls Tab can reach inside `root`, in document order.
  function focusable(root) {
    var selector = "a[href], button, input, select, textarea, [tabindex]";
    return Array.prototype.filter.call(root.querySelectorAll(selector), function (element) {
      if (element.disabled || element.getAttribute("tabindex") === "-1") return false;
      if (element.type === "hidden") return false;
      return element.getClientRects().length > 0;
    });
  }

  function openModal(dialog) {
    // Served open so that it shows without script; reopened as a modal here.
    if (dialog.open) dialog.removeAttribute("open");
    dialog.showModal();
    dialog.addEventListener("keydown", function (event) {
      if (event.key !== "Tab") return;
      var controls = focusable(dialog);
      if (controls.length === 0) return;
      var first = controls[0];
      var last = controls[controls.length - 1];
      var inside = dialog.contains(document.activeElement);
      if (event.shiftKey && (document.activeElement === first || !inside)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
        event.preventDefault();
        first.focus();
      }
    });
    dialog.addEventListener("cancel", function (event) {
      var cancel = dialog.getAttribute("data-cancel-href");
      if (!cancel) return;
      event.preventDefault();
      window.location.assign(cancel);
    });
  }

  function enhance(root) {
    root.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    root.querySelectorAll("form[data-alternatives]").forEach(function (form) {
      showChosenAlternative(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "credential_kind") showChosenAlternative(form);
      });
    });
    root.querySelectorAll("form[data-receipt-form]").forEach(function (form) {
      form.addEventListener("input", function (event) {
        if (BOUND.indexOf(event.target.name) >= 0) dropReceipt(form);
      });
      form.addEventListener("change", function (event) {
        if (BOUND.indexOf(event.target.name) >= 0) dropReceipt(form);
      });
    });
    root.querySelectorAll("dialog[data-modal]").forEach(openModal);
  }

  function copy(button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    var status = document.getElementById(button.id + "-status");
    var say = function (text) { if (status) status.textContent = text; };
    var selectIt = function () {
      input.focus();
      input.select();
      say("Selected: press Ctrl+C or ⌘C to copy.");
    };
    if (!navigator.clipboard || !navigator.clipboard.writeText) {
      selectIt();
      return;
    }
    navigator.clipboard.writeText(input.value).then(function () {
      button.textContent = "Copied";
      say("Copied to the clipboard.");
    }, selectIt);
  }

  // Delegated: the buttons arrive with a swapped-in test outcome or an issued token.
  document.addEventListener("click", function (event) {
    var copyButton = event.target.closest && event.target.closest("button[data-copy]");
    if (copyButton) {
      copy(copyButton);
      return;
    }
    var button = event.target.closest && event.target.closest("button[data-fill-input]");
    if (!button) return;
    var input = document.getElementById("input_cost_per_token");
    var output = document.getElementById("output_cost_per_token");
    if (input) input.value = button.getAttribute("data-fill-input");
    if (output) output.value = button.getAttribute("data-fill-output");
    button.textContent = "Prices filled in";
  });

  function showProblem(target, problem) {
    if (target) target.replaceChildren(problem);
  }

  function plainProblem(text) {
    var problem = document.createElement("div");
    problem.className = "problem";
    problem.setAttribute("role", "alert");
    problem.textContent = text;
    return problem;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var found = null;
    if (xhr && xhr.responseText) {
      // The console's refusal page: its problem box alone (our own escaped markup).
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      found = page.querySelector("div.problem");
    }
    showProblem(event.detail.target, found ? document.importNode(found, true) :
      plainProblem("The server refused the request (" + (xhr ? xhr.status : "?") +
                   "). Reload the page and try again."));
  });

  document.addEventListener("htmx:sendError", function (event) {
    showProblem(event.detail.target,
      plainProblem("The server could not be reached. Check the connection and try again."));
  });

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
})();
