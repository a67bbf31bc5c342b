// The machine page, /machines/{id} (docs/pages.md): today's state timeline, downtime by cause as a
// Pareto with fault texts, OEE and its three factors, MTBF/MTTR and the dispatch list.
// Figures come from GET /api/v1/machines/{id}/day (one answer, one "now"); the live stream's
// `machine` events for this machine update the state at once and ask for the figures again (at most
// every REFRESH_MS), order events refresh the dispatch list.
"use strict";

(() => {
  const PP = window.PP, $ = PP.$, el = PP.el, t = PP.t;
  const id = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const STATES = ["running", "idle", "setup", "fault", "maintenance", "offline"];
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 3000, PERIOD_MS = 30000;
  let machine = null, day = null, dispatch = null, problem = null, dispatchProblem = null;
  let refreshTimer = null, lastFetch = 0;

  const svg = (tag, attrs = {}, ...children) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    for (const c of children) node.append(c);
    return node;
  };
  const stateName = (s) => t("state")[STATES.includes(s) ? s : "unknown"] || s;
  const causeName = (c) => {
    if (c.category === "fault") {
      return [c.code !== null ? `${t("faultCode")} ${c.code}` : t("state").fault, PP.pick(c.text)].filter(Boolean).join(" · ");
    }
    if (c.category === "reason") return `${t("cause_idle")} · ${t("reason_" + c.reason)}`;
    return t("cause_" + c.category);
  };
  const shortName = (c) => (c.category === "fault" ? String(c.code ?? "—")
    : c.category === "reason" ? t("reason_" + c.reason) : t("cause_" + c.category));

  // ------------------------------------------------------------------ data
  async function load() {
    lastFetch = Date.now();
    try {
      const answer = await PP.api(`/api/v1/machines/${encodeURIComponent(id)}/day`);
      if (answer.ok) {
        day = answer.body;
        problem = null;
        PP.noteTime(day);
        PP.setZone(day.timezone, true);
      } else problem = PP.problem(answer);
    } catch (err) {
      problem = String(err);
    }
    await loadDispatch();
    render();
  }

  async function loadDispatch() {
    try {
      const answer = await PP.api(`/api/v1/machines/${encodeURIComponent(id)}/dispatch`);
      if (answer.ok) { dispatch = answer.body; dispatchProblem = null; } else {
        dispatch = null;
        dispatchProblem = answer.status === 404 ? t("noDispatch") : PP.problem(answer);
      }
    } catch (err) {
      dispatchProblem = String(err);
    }
  }

  function soon() {
    if (refreshTimer) return;
    const wait = Math.max(0, REFRESH_MS - (Date.now() - lastFetch));
    refreshTimer = setTimeout(() => { refreshTimer = null; load(); }, wait);
  }

  // ------------------------------------------------------------------ rendering
  function renderHead() {
    const name = (machine && machine.name) || (day && day.name) || id;
    $("m-name").replaceChildren(name, name !== id ? el("span", "id", id) : "");
    const state = machine ? (STATES.includes(machine.state) ? machine.state : "unknown") : "unknown";
    const head = $("m-state");
    head.className = `m-state state-${state}`;
    head.dataset.state = state;
    const parts = [stateName(state)];
    if (machine && typeof machine.since === "number") parts.push(`${t("since")} ${PP.time(machine.since)}`);
    if (machine && machine.fault_code != null) parts.push(`${t("faultCode")} ${machine.fault_code} ${PP.pick(machine.fault_text)}`);
    head.textContent = parts.join(" · ");
    $("m-note").textContent = problem || (day ? `${t("day")} ${day.day}` : t("connecting"));
  }

  function kpi(name, ratio) {
    $(`k-${name}`).textContent = PP.percent(ratio);
    $(`b-${name}`).style.width = `${Math.max(0, Math.min(100, (ratio || 0) * 100))}%`;
  }

  function renderKpis() {
    const o = day ? day.oee : {};
    $("k-oee").textContent = PP.percent(o.oee);
    kpi("availability", o.availability);
    kpi("performance", o.performance);
    kpi("quality", o.quality);
    const rel = day ? day.reliability : {};
    $("k-mtbf").textContent = rel.failures ? PP.duration(rel.mtbf) : "—";
    $("k-mttr").textContent = rel.failures ? PP.duration(rel.mttr) : "—";
    $("k-parts").textContent = day ? `${day.good} / ${day.scrap}` : "—";
    const notes = [];
    if (day) notes.push(`${t("failures")} ${rel.failures} · ${t("planned")} ${PP.duration(day.planned_time)}`
      + (day.no_data > 0 ? ` · ${t("cause_no_data")} ${PP.duration(day.no_data)}` : ""));
    if (day && o.performance === null && (day.good || day.scrap)) notes.push(t("noIdeal"));
    $("oee-note").textContent = notes.join(" · ");
  }

  function renderTimeline() {
    const box = $("timeline");
    if (!day) { box.replaceChildren(); return; }
    const W = 1000, H = 56, span = day.end - day.start;
    const x = (ts) => ((Math.min(Math.max(ts, day.start), day.end) - day.start) / span) * W;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 22}`, role: "img", "aria-label": t("timelineTitle"),
      preserveAspectRatio: "none", class: "tl-svg" });
    chart.append(svg("rect", { x: 0, y: 0, width: W, height: H, class: "tl-unplanned" }));
    for (const [s, e] of day.planned) chart.append(svg("rect", { x: x(s), y: 0, width: Math.max(0, x(e) - x(s)), height: H, class: "tl-planned" }));
    for (const iv of day.intervals) {
      const state = STATES.includes(iv.state) ? iv.state : "unknown";
      const rect = svg("rect", { x: x(iv.start), y: 6, width: Math.max(0.5, x(iv.end) - x(iv.start)), height: H - 12,
        class: `tl-${state}` + (iv.uncertain ? " tl-uncertain" : "") });
      const label = `${stateName(state)} ${PP.time(iv.start)}–${PP.time(iv.end)}` + (iv.fault_code != null ? ` · ${t("faultCode")} ${iv.fault_code}` : "");
      rect.append(svg("title", {}, label));
      rect.dataset.state = state;
      chart.append(rect);
    }
    for (let h = 0; h <= 24; h += 2) {
      const ts = day.start + h * 3600;
      chart.append(svg("line", { x1: x(ts), x2: x(ts), y1: H, y2: H + 5, class: "tl-tick" }));
      if (h < 24) chart.append(svg("text", { x: x(ts) + 2, y: H + 18, class: "tl-label" }, PP.time(ts)));
    }
    const now = PP.now();
    if (now > day.start && now < day.end) chart.append(svg("line", { x1: x(now), x2: x(now), y1: 0, y2: H, class: "tl-now" }));
    box.replaceChildren(chart);
    const seen = [...new Set(day.intervals.map((iv) => (STATES.includes(iv.state) ? iv.state : "unknown")))];
    $("tl-legend").replaceChildren(...seen.map((s) => el("li", `swatch tl-${s}`, stateName(s))),
      el("li", "swatch tl-unplanned", t("unplanned")));
  }

  function renderPareto() {
    const causes = day ? day.causes : [];
    const box = $("pareto");
    const rows = causes.map((c) => {
      const row = el("tr", null, el("td", null, causeName(c)), el("td", "num", PP.duration(c.seconds)),
        el("td", "num", c.category === "reason" ? "—" : String(c.stops)), el("td", "num", PP.percent(c.share)), el("td", "num", PP.percent(c.cumulative)));
      row.dataset.cause = c.category + (c.code !== null ? `-${c.code}` : "") + (c.reason ? `-${c.reason}` : "");
      return row;
    });
    $("causes").querySelector("tbody").replaceChildren(...rows);
    $("causes-note").textContent = day && !causes.length ? t("noDowntime") : "";
    if (!causes.length) { box.replaceChildren(); return; }
    const W = 1000, H = 150, top = causes[0].seconds, n = causes.length, slot = W / n, bar = Math.min(90, slot * 0.6);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 30}`, role: "img", "aria-label": t("paretoTitle"), class: "pareto-svg" });
    const points = [];
    causes.forEach((c, i) => {
      const h = (c.seconds / top) * (H - 10), cx = slot * i + slot / 2;
      const rect = svg("rect", { x: cx - bar / 2, y: H - h, width: bar, height: h,
        class: c.category === "fault" ? "p-fault" : `p-bar tl-${c.category === "reason" ? "idle" : c.category}` });
      rect.append(svg("title", {}, `${causeName(c)}: ${PP.duration(c.seconds)}`));
      chart.append(rect);
      chart.append(svg("text", { x: cx, y: H + 18, class: "p-label", "text-anchor": "middle" }, shortName(c).slice(0, 14)));
      points.push(`${cx},${H - c.cumulative * (H - 10)}`);
    });
    chart.append(svg("line", { x1: 0, x2: W, y1: H - 0.8 * (H - 10), y2: H - 0.8 * (H - 10), class: "p-80" }));
    chart.append(svg("polyline", { points: points.join(" "), class: "p-cum" }));
    box.replaceChildren(chart);
  }

  // GET /api/v1/machines/{id}/dispatch: what runs now, then the queue in order, with projected times
  function renderDispatch() {
    const list = dispatch ? dispatch.operations || [] : [];
    const rows = list.map((op, i) => {
      const pct = op.quantity ? Math.max(0, Math.min(100, (100 * op.good) / op.quantity)) : 0;
      const bar = el("span", "meter", el("span"));
      bar.firstChild.style.width = `${pct}%`;
      const row = el("tr", op.at_risk ? "risk" : null, el("td", "num", String(i + 1)),
        el("td", null, `${op.order_id}/${op.seq} ${op.name || ""}`, op.rush ? el("span", "badge rush", t("rush")) : ""),
        el("td", null, bar, ` ${op.good}/${op.quantity}`),
        el("td", null, t("op_" + op.status) + (op.at_risk ? ` · ${t("st_at_risk")}` : "") + (op.shortage ? ` · ${t("cause_material")}` : "")),
        el("td", null, typeof op.projected_finish === "number" ? PP.dateTime(op.projected_finish) : "—"),
        el("td", null, typeof op.due === "number" ? PP.dateTime(op.due) : "—"));
      row.children[4].dataset.label = t("projectedFinish");
      row.children[5].dataset.label = t("due");
      row.dataset.op = `${op.order_id}/${op.seq}`;
      return row;
    });
    $("dispatch").querySelector("tbody").replaceChildren(...rows);
    const extra = dispatch && dispatch.unmatched_job ? ` · ${t("unmatchedJob")} ${dispatch.unmatched_job}` : "";
    $("dispatch-note").textContent = dispatchProblem || (dispatch && !rows.length ? t("dispatchEmpty") + extra : extra.slice(3));
  }

  function render() {
    renderHead();
    renderKpis();
    renderTimeline();
    renderPareto();
    renderDispatch();
  }

  PP.start({
    title: "machineTitle",
    render,
    onKey: load,
    onSnapshot(data) {
      machine = (data.machines || []).find((m) => m.id === id) || null;
      load();
    },
    on: {
      machine({ machine: m }) {
        if (m.id !== id) return;
        machine = m;
        renderHead();
        soon();
      },
      order() { soon(); },
      progress() { soon(); },
    },
  });
  setInterval(() => { if (PP.connected) load(); }, PERIOD_MS);
})();
