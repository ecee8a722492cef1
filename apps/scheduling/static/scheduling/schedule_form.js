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

  // Answers may arrive out of order (a slow earlier one after a later one): each box
  // shows only the answer to its latest request; an earlier request still under way is
  // aborted. `data-settled` counts the requests that ended (shown, dropped or aborted).
  function latestOnly(box) {
    let latest = 0;
    let controller = null;
    return async function (url) {
      const seq = ++latest;
      if (controller) controller.abort();
      controller = new AbortController();
      try {
        const response = await fetch(url, {credentials: "same-origin", signal: controller.signal});
        const text = response.ok ? await response.text() : null;
        if (seq !== latest || text === null) return false;
        box.innerHTML = text;
        return true;
      } catch (error) {
        if (error.name !== "AbortError") throw error;
        return false;
      } finally {
        box.dataset.settled = String(Number(box.dataset.settled || 0) + 1);
      }
    };
  }
  const previewBox = document.getElementById("switchyard-preview");
  const parametersBox = document.getElementById("switchyard-parameters");
  const loadPreview = previewBox && latestOnly(previewBox);
  const loadParameters = parametersBox && latestOnly(parametersBox);

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
      const data = new FormData(form);
      const query = new URLSearchParams();
      for (const name of PREVIEW_FIELDS) {
        const value = data.get(name);
        if (value !== null) query.set(name, value);
      }
      await loadPreview(previewBox.dataset.url + "?" + query);
    }, 250);
  }

  function taskName() {
    const registered = form.querySelector("#id_regtask");
    const custom = form.querySelector("#id_task");
    return (registered && registered.value) || (custom && custom.value.trim()) || "";
  }

  async function refreshParameters() {
    const query = new URLSearchParams({task: taskName()});
    if (await loadParameters(parametersBox.dataset.url + "?" + query)) showArguments();
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
