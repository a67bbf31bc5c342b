// The orders page, /orders (docs/pages.md): every open order with its status (planned, running, at
// risk, late, done), progress, projected finish against its due time and why it is at risk; filters;
// one order's operations. Live: the stream's `order` events replace an order's row at once; the
// list and the open order are read again after them (at most every REFRESH_MS) and every PERIOD_MS.
// The rush-order form and the import are in orderforms.js.
"use strict";

(() => {
  const PP = window.PP, $ = PP.$, el = PP.el, t = PP.t;
  const REFRESH_MS = 1500, PERIOD_MS = 20000;
  const orders = new Map(); // id -> order (list form)
  let detail = null, detailId = PP.params.get("order") || "", problem = null, refreshTimer = null, last = 0;

  // what the page calls an order's status, from central's fields
  function status(o) {
    if (o.status === "done") return "done";
    if (o.status === "cancelled") return "cancelled";
    if (o.overdue) return "late";
    if (o.at_risk) return "at_risk";
    return o.percent > 0 || (o.operations || []).some((op) => op.status === "running") ? "running" : "planned";
  }
  const ORDER = { late: 0, at_risk: 1, running: 2, planned: 3, done: 4, cancelled: 5 };

  function why(w) {
    if (!w) return "";
    const text = PP.lang === "en" ? w.text_en : w.text_zh;
    const where = [w.order_id && w.seq != null ? `${w.order_id}/${w.seq}` : "", w.machine || ""].filter(Boolean).join(" @ ");
    return [t("cause_" + w.cause) !== "cause_" + w.cause ? t("cause_" + w.cause) : w.cause, where, text].filter(Boolean).join(" · ");
  }

  async function load() {
    last = Date.now();
    try {
      const answer = await PP.api("/api/v1/orders?status=all&limit=1000");
      if (answer.ok) {
        problem = null;
        orders.clear();
        for (const o of answer.body.orders || []) orders.set(o.id, o);
      } else {
        problem = answer.status === 404 ? t("noOrdersApi") : PP.problem(answer);
      }
    } catch (err) {
      problem = String(err);
    }
    await loadDetail();
    render();
  }

  async function loadDetail() {
    if (!detailId) { detail = null; return; }
    try {
      const answer = await PP.api(`/api/v1/orders/${encodeURIComponent(detailId)}`);
      detail = answer.ok ? (answer.body.order || answer.body) : null;
    } catch {
      detail = null;
    }
  }

  function soon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; load(); }, Math.max(0, REFRESH_MS - (Date.now() - last)));
  }

  function show(id) {
    detailId = id;
    const url = new URL(location.href);
    url.searchParams.set("order", id);
    history.replaceState(null, "", url.pathname + url.search);
    loadDetail().then(render);
  }

  // a cell's column name, shown before it where the table is laid out as cards (a phone)
  function labelled(td, name) {
    td.dataset.label = t(name);
    return td;
  }

  function meter(percent) {
    const pct = Math.max(0, Math.min(100, percent || 0));
    const bar = el("span", "meter", el("span"));
    bar.firstChild.style.width = `${pct}%`;
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    return el("span", "pct", bar, ` ${Math.round(pct)}%`);
  }

  function renderList() {
    const want = $("f-status").value, text = $("f-text").value.trim().toLowerCase(), days = Number($("f-due").value || 0);
    const now = PP.now();
    const list = [...orders.values()].filter((o) => {
      const s = status(o);
      if (want ? s !== want : s === "done" || s === "cancelled") return false;
      if (text && ![o.id, o.product, o.customer].some((v) => (v || "").toLowerCase().includes(text))) return false;
      return !(days && o.due > now + days * 86400);
    }).sort((a, b) => ORDER[status(a)] - ORDER[status(b)] || a.due - b.due || a.id.localeCompare(b.id));
    const rows = list.map((o) => {
      const s = status(o);
      const link = el("a", null, o.id);
      link.href = `?order=${encodeURIComponent(o.id)}`;
      link.addEventListener("click", (e) => { e.preventDefault(); show(o.id); });
      const finish = o.projected_finish;
      const slack = typeof finish === "number" ? finish - o.due : null;
      const row = el("tr", `st-${s}`,
        el("td", null, link, o.rush ? el("span", "badge rush", t("rush")) : ""),
        el("td", "phone-hide", [o.product, o.customer].filter(Boolean).join(" · ")),
        el("td", null, el("span", `badge st-${s}`, t("st_" + s))),
        el("td", null, meter(o.percent)),
        labelled(el("td", slack !== null && slack > 0 ? "late-text" : null, typeof finish === "number" ? PP.dateTime(finish) : "—",
          slack !== null && s !== "done" ? el("small", null, ` (${slack > 0 ? "+" : "−"}${PP.duration(Math.abs(slack))})`) : ""),
        "projectedFinish"),
        labelled(el("td", null, PP.dateTime(o.due)), "due"),
        el("td", "why", why(o.why)));
      row.dataset.order = o.id;
      row.dataset.status = s;
      return row;
    });
    $("orders").querySelector("tbody").replaceChildren(...rows);
    $("orders-count").textContent = `(${rows.length})`;
    $("orders-note").textContent = problem || (rows.length ? "" : t(PP.connected || orders.size ? "noOrders" : "connecting"));
  }

  function renderDetail() {
    $("detail").hidden = !detail;
    if (!detail) return;
    const s = status(detail);
    $("detail-title").replaceChildren(`${t("order")} ${detail.id} `, el("span", `badge st-${s}`, t("st_" + s)));
    $("detail-meta").textContent = [detail.product, detail.customer, `${t("quantity")} ${detail.quantity}`,
      `${t("due")} ${PP.dateTime(detail.due)}`, why(detail.why)].filter(Boolean).join(" · ");
    const rows = (detail.operations || []).map((op) => {
      const machine = op.machine || (op.work_centre ? `${t("workCentre")} ${op.work_centre}` : "—");
      const link = op.machine ? el("a", null, machine) : machine;
      if (op.machine) link.href = PP.href(`/machines/${encodeURIComponent(op.machine)}`);
      const row = el("tr", `op-${op.status}`, el("td", "num", String(op.seq)), el("td", null, op.name),
        el("td", null, link, op.running_on && op.running_on.length ? ` (${op.running_on.join(", ")})` : ""),
        el("td", null, t("op_" + op.status) + (op.shortage ? ` · ${t("cause_material")}` : "")),
        el("td", null, meter(op.percent), el("small", null, ` ${op.good}/${op.quantity} · ${t("scrap")} ${op.scrap}`)),
        el("td", "phone-hide", typeof op.projected_start === "number" ? PP.dateTime(op.projected_start) : "—"),
        labelled(el("td", null, typeof op.projected_finish === "number" ? PP.dateTime(op.projected_finish) : "—"),
          "projectedFinish"));
      row.dataset.op = `${detail.id}/${op.seq}`;
      return row;
    });
    $("ops").querySelector("tbody").replaceChildren(...rows);
    $("detail-cards").href = PP.href(`/cards?orders=${encodeURIComponent(detail.id)}`);
  }

  function render() {
    renderList();
    renderDetail();
  }

  for (const id of ["f-status", "f-due"]) $(id).addEventListener("change", renderList);
  $("f-text").addEventListener("input", renderList);
  if (PP.board) for (const node of document.querySelectorAll(".no-board")) node.hidden = true;
  window.PP_ORDERS = { reload: load, show };
  PP.start({
    title: "ordersTitle",
    render,
    onKey: load,
    onSnapshot: load,
    on: {
      order({ order }) {
        if (order && order.id && orders.has(order.id)) {
          const known = orders.get(order.id);
          const why = order.cause ? { ...(known.why || {}), cause: order.cause, machine: order.machine } : null;
          orders.set(order.id, { ...known, ...order, why });
        }
        renderList();
        soon();
      },
      orders: soon,
      projection: soon,
    },
  });
  setInterval(() => { if (PP.connected) load(); }, PERIOD_MS);
})();
