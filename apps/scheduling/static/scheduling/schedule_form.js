// The periodic task form: show the chosen schedule kind's fields, refresh the preview
// while the schedule is edited, and swap in a catalog job's parameter fields.
(function () {
  "use strict";
  const form = document.getElementById("periodictask_form");
  if (!form) return;
  const KIND_ROWS = {
    interval: ["every"],
    crontab: ["minute", "timezone"],
    solar: ["event"],
    clocked: ["clocked_time", "timezone"],
  };
  const ROWS = ["every", "minute", "timezone", "event", "clocked_time"];
  const PREVIEW_FIELDS = ["kind", "every", "period", "minute", "hour", "day_of_month",
    "month_of_year", "day_of_week", "timezone", "event", "latitude", "longitude",
    "clocked_time", "one_off"];
  let timer = null;

  function kind() {
    const checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : "crontab";
  }

  function showKindRows() {
    const shown = KIND_ROWS[kind()] || [];
    for (const name of ROWS) {
      const row = form.querySelector(".form-row.field-" + name);
      if (row) row.style.display = shown.includes(name) ? "" : "none";
    }
  }

  function refreshPreview() {
    clearTimeout(timer);
    timer = setTimeout(async function () {
      const box = document.getElementById("switchyard-preview");
      const data = new FormData(form);
      const query = new URLSearchParams();
      for (const name of PREVIEW_FIELDS) {
        const value = data.get(name);
        if (value !== null) query.set(name, value);
      }
      const response = await fetch(box.dataset.url + "?" + query, {credentials: "same-origin"});
      if (response.ok) box.innerHTML = await response.text();
    }, 250);
  }

  function taskName() {
    const registered = form.querySelector("#id_regtask");
    const custom = form.querySelector("#id_task");
    return (registered && registered.value) || (custom && custom.value.trim()) || "";
  }

  async function refreshParameters() {
    const box = document.getElementById("switchyard-parameters");
    const query = new URLSearchParams({task: taskName()});
    const response = await fetch(box.dataset.url + "?" + query, {credentials: "same-origin"});
    if (response.ok) {
      box.innerHTML = await response.text();
      showArguments();
    }
  }

  function showArguments() {
    const fieldset = document.querySelector("#switchyard-parameters [data-catalog]");
    const catalog = fieldset && fieldset.dataset.catalog === "yes";
    for (const raw of document.querySelectorAll("fieldset.switchyard-raw-arguments")) {
      raw.style.display = catalog ? "none" : "";
    }
  }

  form.addEventListener("input", function (event) {
    if (PREVIEW_FIELDS.includes(event.target.name)) refreshPreview();
  });
  form.addEventListener("change", function (event) {
    const name = event.target.name;
    if (name === "kind") showKindRows();
    if (PREVIEW_FIELDS.includes(name)) refreshPreview();
    if (name === "regtask" || name === "task") refreshParameters();
  });
  showKindRows();
  showArguments();
})();
