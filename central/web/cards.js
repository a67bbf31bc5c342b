// Printable job cards, /cards?orders=SO-1,SO-2 (docs/pages.md): one card per operation with its QR
// code. The code holds this central's scan address for the operation (/scan?op=SO-1/20): a phone's
// camera app opens the report form, a keyboard-wedge scanner types it into the scan page. The QR
// codes are drawn by central (GET /api/v1/qr, SVG), never by an outside service.
"use strict";

(() => {
  const PP = window.PP, $ = PP.$, el = PP.el, t = PP.t;
  let orders = [], problem = null;
  const qrCache = new Map();

  const scanUrl = (orderId, seq) => `${location.origin}/scan?op=${encodeURIComponent(`${orderId}/${seq}`)}`;

  async function qr(text) {
    if (!qrCache.has(text)) {
      qrCache.set(text, (async () => {
        const response = await fetch(`/api/v1/qr?scale=4&text=${encodeURIComponent(text)}`, { headers: PP.headers() });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return "data:image/svg+xml;charset=utf-8," + encodeURIComponent(await response.text());
      })());
    }
    return qrCache.get(text);
  }

  async function load() {
    const asked = ($("cards-orders").value || "").split(",").map((s) => s.trim()).filter(Boolean);
    problem = null;
    try {
      if (asked.length) {
        const answers = await Promise.all(asked.map((id) => PP.api(`/api/v1/orders/${encodeURIComponent(id)}`)));
        const bad = answers.find((a) => !a.ok);
        if (bad) problem = PP.problem(bad);
        orders = answers.filter((a) => a.ok).map((a) => a.body.order || a.body);
      } else {
        const answer = await PP.api("/api/v1/orders?status=open");
        if (answer.ok) orders = answer.body.orders || []; else problem = PP.problem(answer);
      }
    } catch (err) {
      problem = String(err);
    }
    render();
  }

  function render() {
    const cards = [];
    for (const order of orders) {
      for (const op of order.operations || []) {
        const img = el("img", "qr");
        img.alt = `${order.id}/${op.seq}`;
        img.width = 132;
        img.height = 132;
        qr(scanUrl(order.id, op.seq)).then((src) => { img.src = src; }).catch(() => { img.alt = t("qrFailed"); });
        const card = el("article", "jobcard",
          el("div", "jc-text",
            el("p", "jc-order", `${t("order")} `, el("strong", null, order.id)),
            el("h2", null, `${op.seq} · ${op.name}`),
            el("p", null, `${t("machineOrCentre")}: ${op.machine || (op.work_centre ? `${t("workCentre")} ${op.work_centre}` : "—")}`),
            el("p", null, `${t("quantity")}: ${op.quantity}`),
            order.due ? el("p", null, `${t("due")}: ${PP.dateTime(order.due)}`) : null,
            el("p", "jc-code", `${order.id}/${op.seq}`)),
          img);
        card.dataset.op = `${order.id}/${op.seq}`;
        cards.push(card);
      }
    }
    $("cards").replaceChildren(...cards);
    $("cards-note").textContent = problem || (cards.length ? `${cards.length} ${t("cardsCount")}` : t("noCards"));
  }

  $("cards-orders").value = PP.params.get("orders") || PP.params.get("order") || "";
  $("cards-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = new URL(location.href);
    url.searchParams.set("orders", $("cards-orders").value.trim());
    history.replaceState(null, "", url.pathname + url.search);
    load();
  });
  $("print").addEventListener("click", () => window.print());
  PP.start({ title: "cardsTitle", render, onKey: load, stream: false });
  load();
})();
