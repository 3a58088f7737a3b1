// A submitted form's buttons are disabled so that a double click sends it once; the server
// also recognises a resubmission by its one-time token, so this is a courtesy, not the guard.
// A form that downloads a file (data-download) stays on its page, so its buttons stay usable for the next file.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.hasAttribute("data-download")) return;
  if (form.dataset.submitted) {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "1";
  window.setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = true; });
  }, 0);
});

// "Add a row" for the household formsets: copies the empty form, renumbered.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-add-row]");
  if (!button) return;
  var prefix = button.dataset.addRow;
  var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
  var max = document.getElementById("id_" + prefix + "-MAX_NUM_FORMS");
  var count = parseInt(total.value, 10);
  if (count >= parseInt(max.value, 10)) { button.disabled = true; return; }
  var template = document.getElementById(prefix + "-empty").innerHTML.replace(/__prefix__/g, count);
  document.getElementById(prefix + "-rows").insertAdjacentHTML("beforeend", template);
  total.value = count + 1;
  if (count + 1 >= parseInt(max.value, 10)) button.disabled = true;
  var inputs = document.getElementById(prefix + "-rows").querySelectorAll("input");
  inputs[inputs.length - 1].focus();
});

// The consent form asks for the form version and who obtained consent only for a consent, and for a
// reason only for a decline. Without JavaScript all fields show and the server still checks them.
function showFieldsForDecision(form) {
  var chosen = form.querySelector("input[name=decision]:checked");
  var decision = chosen ? chosen.value : "";
  var groups = { consented: ["form_version", "obtained_by"], declined: ["decline_reason", "decline_details"] };
  Object.keys(groups).forEach(function (value) {
    groups[value].forEach(function (name) {
      var wrapper = form.querySelector("#div_id_" + name);
      if (wrapper) wrapper.hidden = decision !== value;
    });
  });
}
document.querySelectorAll("form").forEach(function (form) {
  if (!form.querySelector("input[name=decision]")) return;
  showFieldsForDecision(form);
  form.addEventListener("change", function (event) {
    if (event.target.name === "decision") showFieldsForDecision(form);
  });
});

// The skip link focuses <main> (tabindex=-1) without putting #main in the address: a form posted
// from there would come back to #main, and the browser would focus <main> over the error summary.
document.addEventListener("click", function (event) {
  if (!event.target.closest(".skip-link")) return;
  event.preventDefault();
  document.getElementById("main").focus();
});

// A form that came back with errors opens with their summary (role=alert). Focusing it makes a
// screen reader read it and puts a keyboard user one Tab away from the links to the fields.
var errorSummary = document.querySelector("[data-error-summary]");
if (errorSummary) errorSummary.focus();

// A link in the summary focuses its field, scrolled so that the field's question (its label, or the
// legend of its group of radio buttons) shows above it, not cut off at the top of the screen.
document.addEventListener("click", function (event) {
  var link = event.target.closest("[data-error-summary] a[href^='#']");
  if (!link) return;
  var field = document.getElementById(decodeURIComponent(link.hash.slice(1)));
  if (!field) return;
  event.preventDefault();
  var fieldset = field.closest("fieldset");
  var question = field.type === "radio" || field.type === "checkbox"
    ? fieldset && fieldset.querySelector("legend")
    : field.labels && field.labels[0];
  (question || field).scrollIntoView();
  field.focus({ preventScroll: true });
});

// The printable commitment's "Print" button (an inline onclick would need a CSP exception).
document.addEventListener("click", function (event) {
  if (event.target.closest("[data-print]")) window.print();
});
