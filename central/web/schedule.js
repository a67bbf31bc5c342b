// The schedule page, /schedule (docs/pages.md): a hand-drawn SVG Gantt of the projected schedule
// per machine (GET /api/v1/schedule): operations (at risk outlined), setups, machines down, time
// off shift and breaks, each order's due time, and "now". Live: read again after the stream's
// order/projection events (at most every REFRESH_MS) and every PERIOD_MS, as the projection moves.
"use strict";

(() => {
  const PP = window.PP, $ = PP.$, el = PP.el, t = PP.t;
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 2000, PERIOD_MS = 15000, ROW = 34, LEFT = 110, TOP = 34;
  let schedule = null, problem = null, refreshTimer = null, last = 0;
  const horizon = () => Number($("horizon").value || 1);

  const svg = (tag, attrs = {}, ...children) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    for (const c of children) node.append(c);
    return node;
  };

  // the same order keeps the same colour everywhere (a hue from its id)
  function hue(id) {
    let h = 0;
    for (const ch of id || "") h = (h * 31 + ch.charCodeAt(0)) % 360;
    return h;
  }

  async function load() {
    last = Date.now();
    // from two hours ago (what just happened) over the chosen number of days, on whole hours
    const from = Math.floor((PP.now() - 2 * 3600) / 3600) * 3600, to = from + horizon() * 86400;
    try {
      const answer = await PP.api(`/api/v1/schedule?start=${from}&end=${to}`);
      if (answer.ok) { schedule = answer.body; problem = null; PP.noteTime(schedule); } else {
        problem = answer.status === 404 ? t("noOrdersApi") : PP.problem(answer);
      }
    } catch (err) {
      problem = String(err);
    }
    render();
  }

  function soon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; load(); }, Math.max(0, REFRESH_MS - (Date.now() - last)));
  }

  function render() {
    const box = $("gantt");
    $("gantt-note").textContent = problem || (schedule && schedule.projected_at
      ? `${t("projectedAt")} ${PP.time(schedule.projected_at)}` : "");
    if (!schedule) { box.replaceChildren(); return; }
    const rows = schedule.rows || [];
    const W = Math.max(900, box.clientWidth || 900), span = schedule.end - schedule.start;
    const H = TOP + rows.length * ROW + 8;
    const x = (ts) => LEFT + ((Math.min(Math.max(ts, schedule.start), schedule.end) - schedule.start) / span) * (W - LEFT - 8);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": t("ganttTitle"), class: "gantt-svg" });
    // hour ticks (every 2 h for a day, every 6 h for longer) and day lines
    const step = span <= 86400 * 1.01 ? 7200 : span <= 3 * 86400 * 1.01 ? 6 * 3600 : 12 * 3600;
    const hourOf = (ts) => Number(new Intl.DateTimeFormat("en", { hour: "numeric", hourCycle: "h23", timeZone: PP.zone }).format(new Date(ts * 1000)));
    for (let ts = schedule.start; ts <= schedule.end; ts += step) {
      const midnight = hourOf(ts) < step / 3600;
      chart.append(svg("line", { x1: x(ts), x2: x(ts), y1: TOP - 6, y2: H, class: midnight ? "g-day" : "g-tick" }));
      if (ts < schedule.end - step / 2) chart.append(svg("text", { x: x(ts) + 3, y: 14, class: "g-label" }, midnight ? PP.dateTime(ts) : PP.time(ts)));
    }
    rows.forEach((row, i) => {
      const y = TOP + i * ROW;
      const name = svg("a", { href: PP.href(`/machines/${encodeURIComponent(row.machine_id)}`) },
        svg("text", { x: 6, y: y + ROW / 2 + 5, class: "g-machine" }, row.machine_id));
      chart.append(svg("rect", { x: LEFT, y, width: W - LEFT - 8, height: ROW - 4, class: "g-row" }), name);
      for (const b of row.blocks || []) {
        const end = typeof b.end === "number" ? b.end : schedule.end;
        const x0 = x(b.start), x1 = x(end);
        if (x1 - x0 <= 0) continue;
        const kind = ["operation", "setup", "down", "off"].includes(b.kind) ? b.kind : "operation";
        const rect = svg("rect", { x: x0, y: y + 2, width: Math.max(1, x1 - x0), height: ROW - 8, rx: 2,
          class: `g-${kind}` + (b.at_risk ? " g-risk" : "") });
        if (kind === "operation") rect.style.fill = `hsl(${hue(b.order_id)} 55% 42%)`;
        rect.dataset.kind = kind;
        if (b.order_id) rect.dataset.op = `${b.order_id}/${b.seq}`;
        const label = b.order_id ? `${b.order_id}/${b.seq}${b.label ? " " + b.label : ""}` : t("g_" + kind);
        rect.append(svg("title", {}, `${label} · ${PP.dateTime(b.start)}–${typeof b.end === "number" ? PP.dateTime(b.end) : "…"}`));
        chart.append(rect);
        if (kind === "operation" && x1 - x0 > 60) {
          chart.append(svg("text", { x: x0 + 4, y: y + ROW / 2 + 3, class: "g-text" }, label.slice(0, Math.floor((x1 - x0) / 7))));
        }
      }
    });
    for (const d of schedule.due || []) {
      if (d.due < schedule.start || d.due > schedule.end) continue;
      const dx = x(d.due);
      const mark = svg("g", { class: "g-due" + (d.at_risk ? " g-due-risk" : "") },
        svg("line", { x1: dx, x2: dx, y1: TOP - 10, y2: H }),
        svg("path", { d: `M${dx - 5},${TOP - 14} L${dx + 5},${TOP - 14} L${dx},${TOP - 6} Z` }),
        svg("title", {}, `${d.order_id} ${t("due")} ${PP.dateTime(d.due)}`));
      mark.dataset.order = d.order_id;
      chart.append(mark);
    }
    const now = PP.now();
    if (now >= schedule.start && now <= schedule.end) chart.append(svg("line", { x1: x(now), x2: x(now), y1: TOP - 6, y2: H, class: "g-now" }));
    box.replaceChildren(chart);
    if (!rows.length) box.append(el("p", "note", t("noSchedule")));
  }

  $("horizon").addEventListener("change", load);
  PP.start({
    title: "scheduleTitle",
    render,
    onKey: load,
    onSnapshot: load,
    on: { order: soon, projection: soon, schedule: soon },
  });
  setInterval(() => { if (PP.connected) load(); }, PERIOD_MS);
  window.addEventListener("resize", render);
})();
