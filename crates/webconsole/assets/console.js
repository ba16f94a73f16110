// The console's own script: progressive enhancement only, every page works without it.
// - A form marked data-autosubmit submits when a select changes (the provider picker).
// - The Add Custom Model form shows only the chosen credential alternative.
// - "Use these prices" copies a passing test's suggested prices into the cost fields.
// - Save carries a Test Connection receipt that binds provider model ID, endpoint, region and
//   credential: changing one of them drops the receipt and disables Save again, saying why.
//   The server checks the receipt anyway (app refuses a mismatch); this only says it early.
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

  function enhance(root) {
    root.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    root.querySelectorAll("form[data-receipt-form]").forEach(function (form) {
      showChosenAlternative(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "credential_kind") showChosenAlternative(form);
      });
      form.addEventListener("input", function (event) {
        if (BOUND.indexOf(event.target.name) >= 0) dropReceipt(form);
      });
      form.addEventListener("change", function (event) {
        if (BOUND.indexOf(event.target.name) >= 0) dropReceipt(form);
      });
    });
  }

  // Delegated: the button arrives with a swapped-in test outcome.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-fill-input]");
    if (!button) return;
    var input = document.getElementById("input_cost_per_token");
    var output = document.getElementById("output_cost_per_token");
    if (input) input.value = button.getAttribute("data-fill-input");
    if (output) output.value = button.getAttribute("data-fill-output");
    button.textContent = "Prices filled in";
  });

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
})();
