// The orders page's two forms (docs/pages.md): a rush order (插单) inserted from the page, and a
// planner's spreadsheet imported from the page with every row-level error shown. Both need the
// write key; central refuses a spreadsheet with any bad row whole, so a failed import changes nothing.
"use strict";

(() => {
  const PP = window.PP, $ = PP.$, el = PP.el, t = PP.t;
  let opCount = 0;

  // ------------------------------------------------------------------ rush order
  function addOp() {
    opCount += 1;
    const seq = opCount * 10;
    const field = (name, label, attrs = {}) => {
      const input = el("input");
      input.name = name;
      Object.assign(input, attrs);
      const span = el("span", null, t(label));
      span.dataset.t = label;
      return el("label", null, span, input);
    };
    const row = el("div", "row r-op",
      field("seq", "seqNo", { type: "number", min: 1, value: seq, required: true }),
      field("name", "operation", { maxLength: 100, required: true }),
      field("machine", "machineOrCentre", { maxLength: 64, required: true, autocomplete: "off" }),
      field("ideal_cycle_time", "cycleSeconds", { type: "number", min: 0.1, step: "any", required: true }),
      field("setup_time", "setupSeconds", { type: "number", min: 0, step: "any", value: 0 }));
    $("r-ops").append(row);
  }

  function rushError(text) {
    $("rush-error").textContent = text;
    $("rush-error").hidden = !text;
  }

  async function sendRush(e) {
    e.preventDefault();
    rushError("");
    $("rush-ok").textContent = "";
    const quantity = Number($("r-qty").value);
    const due = $("r-due").value ? new Date($("r-due").value) : null;
    const operations = [...document.querySelectorAll(".r-op")].map((row) => {
      const v = (name) => row.querySelector(`[name=${name}]`).value.trim();
      return { seq: Number(v("seq")), name: v("name"), machine: v("machine"), quantity,
        ideal_cycle_time: Number(v("ideal_cycle_time")), setup_time: Number(v("setup_time") || 0) };
    }).filter((op) => op.name || op.machine);
    if (!$("r-id").value.trim() || !$("r-product").value.trim() || !(quantity >= 1) || !due || isNaN(due) || !operations.length) {
      rushError(t("rushIncomplete"));
      return;
    }
    if (!PP.key) { rushError(t("needKey")); PP.askKey(); return; }
    const body = { id: $("r-id").value.trim(), product: $("r-product").value.trim(), quantity,
      due: due.toISOString(), operations, rush: true };
    const answer = await PP.api("/api/v1/orders", { json: body }).catch((err) => ({ ok: false, status: 0, body: { detail: String(err) } }));
    if (answer.ok) {
      $("rush-ok").textContent = `${t("rushInserted")} ${body.id}`;
      window.PP_ORDERS.show(body.id);
      window.PP_ORDERS.reload();
    } else {
      rushError(PP.problem(answer));
      if (answer.status === 401 || answer.status === 403) PP.askKey();
    }
  }

  // ------------------------------------------------------------------ import
  async function sendImport(e) {
    e.preventDefault();
    const file = $("import-file").files[0];
    const result = $("import-result");
    const table = $("import-errors");
    table.hidden = true;
    result.className = "";
    if (!file) { result.textContent = t("chooseFile"); result.className = "error"; return; }
    if (!PP.key) { result.textContent = t("needKey"); result.className = "error"; PP.askKey(); return; }
    const dry = $("import-dry").checked;
    result.textContent = t("sending");
    let answer;
    try {
      answer = await PP.api(`/api/v1/orders/import?dry_run=${dry}`, {
        method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    } catch (err) {
      result.textContent = `${t("errOther")}${err}`;
      result.className = "error";
      return;
    }
    const body = answer.body || {};
    const errors = body.errors || (body.detail && body.detail.errors) || [];
    if (answer.ok && !errors.length) {
      result.textContent = `${dry ? t("importChecked") : t("imported")} ${summary(body.counts || {})}`;
      result.className = "ok";
      if (!dry) window.PP_ORDERS.reload();
      return;
    }
    result.className = "error";
    result.textContent = errors.length ? `${t("importRefused")} (${errors.length})` : PP.problem(answer);
    if (answer.status === 401 || answer.status === 403) PP.askKey();
    table.querySelector("tbody").replaceChildren(...errors.map((err) => {
      const row = el("tr", null, el("td", "num", String(err.row ?? "—")), el("td", null, err.column || err.field || ""),
        el("td", null, err.message || JSON.stringify(err)));
      row.dataset.row = String(err.row ?? "");
      return row;
    }));
    table.hidden = !errors.length;
  }

  const summary = (counts) => ["created", "updated", "unchanged"].map((k) => `${t("import_" + k)} ${counts[k] || 0}`).join(", ");

  // the template (docs/api.md, "Import"): its header and two example rows, made here as a download
  const TEMPLATE = [
    "order,product,customer,quantity,due,priority,notes,seq,operation,machine,work_centre,op_quantity,cycle_time,setup_time,job,transfer_quantity,count_source",
    "SO-1001,bracket,ACME,120,2026-12-04 16:00,0,,10,turn,cnc-01,,,45,15min,1001,,",
    "SO-1001,,,,,,,20,mill,mill-01,,,2min,,,,",
  ].join("\r\n") + "\r\n";
  function template(e) {
    e.preventDefault();
    const a = el("a");
    a.href = URL.createObjectURL(new Blob(["\ufeff" + TEMPLATE], { type: "text/csv" }));
    a.download = "orders-template.csv";
    document.body.append(a);
    a.click();
    a.remove();
  }

  addOp();
  $("r-add").addEventListener("click", addOp);
  $("rush-form").addEventListener("submit", sendRush);
  $("import-form").addEventListener("submit", sendImport);
  $("import-template").addEventListener("click", template);
})();
