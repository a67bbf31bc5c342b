// The scan-to-report page, /scan (docs/scan.md): an operator scans an operation's code with a
// keyboard-wedge scanner (it types the code and Enter into the focused field) or the camera, then
// reports start, good, scrap, a stop with its reason, or finish.
//
// Never twice: every report gets a client id when it is made, kept with it until central has
// answered, and sent again with the same id after a failure (central answers the same id with
// the same content as a no-op). The buttons are disabled from the tap until the answer, and the
// same report made again within DOUBLE_TAP_MS reuses the id of the first. Reports not yet
// answered are kept in this browser (localStorage) and resent after a reload.
"use strict";

(() => {
  const PP = window.PP, $ = PP.$, el = PP.el, t = PP.t;
  const DOUBLE_TAP_MS = 3000, RETRY_MS = 4000, KEEP_SENT = 20;
  // the stop causes central knows (central/progress/stops.py); "other" needs a note
  const STOP_REASONS = ["material", "no_operator", "quality_hold", "tooling", "planned_stop", "other"];
  let op = null; // {order, seq}
  let info = null; // the operation as central knows it
  let infoProblem = null;
  let pending = load(); // [{client_id, path, body, made, tries, error}]
  const sent = []; // [{body, at, outcome}]
  let busy = false, retryTimer = null, camera = null;
  let machines = []; // every machine (from the stream's snapshot): a work-centre operation's choices

  function load() {
    try { return JSON.parse(localStorage.getItem("plantpulse.scan.pending") || "[]"); } catch { return []; }
  }
  function store() {
    try { localStorage.setItem("plantpulse.scan.pending", JSON.stringify(pending)); } catch { /* forget */ }
  }

  // a client id without crypto.randomUUID (which plain-HTTP pages do not have)
  function newId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "scan-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------------ codes
  // A card's QR code holds the scan page's address (/scan?op=SO-1001/20); a scanner may also type
  // just "SO-1001/20". The seq is the number after the last slash (order ids may contain slashes).
  function parseCode(text) {
    let code = (text || "").trim();
    try {
      const url = new URL(code);
      if (url.searchParams.get("op")) code = url.searchParams.get("op");
    } catch { /* not an address */ }
    const m = /^(.+)\/(\d{1,7})$/.exec(code);
    return m ? { order: m[1], seq: Number(m[2]) } : null;
  }

  async function openOp(parsed) {
    op = parsed;
    info = null;
    infoProblem = null;
    const url = new URL(location.href);
    url.searchParams.set("op", `${op.order}/${op.seq}`);
    history.replaceState(null, "", url.pathname + url.search);
    render();
    await refreshOp();
  }

  async function refreshOp() {
    if (!op) return;
    try {
      const answer = await PP.api(`/api/v1/orders/${encodeURIComponent(op.order)}`);
      if (answer.ok) {
        const order = answer.body.order || answer.body;
        info = (order.operations || []).find((o) => o.seq === op.seq) || null;
        if (info) info._order = order;
        infoProblem = info ? null : t("noSuchOp");
      } else {
        infoProblem = PP.problem(answer);
      }
    } catch (err) {
      infoProblem = String(err);
    }
    render();
  }

  // ------------------------------------------------------------------ reports
  function operatorId() {
    const operator = $("operator").value.trim();
    if (!operator) { say(t("needOperator"), true); $("operator").focus(); return null; }
    PP.saved.set("operator", operator);
    return operator;
  }

  function makeReport(kind, extra = {}) {
    if (!op) return;
    const operator = operatorId();
    if (!operator) return;
    // a work-centre operation runs on one of the centre's machines: the operator says which
    const where = info && !info.machine && info.work_centre ? $("where").value : "";
    const body = { operator, order_id: op.order, seq: op.seq, kind, ...(where ? { machine: where } : {}), ...extra };
    queue("/api/v1/reports", body);
  }

  // why the operation's machine stands (a stop reason for the machine, not a report on the operation)
  function makeStop() {
    if (!op) return;
    const operator = operatorId();
    if (!operator) return;
    const machine = info && (info.machine || (info.running_on || [])[0] || (info.work_centre ? $("where").value : ""));
    if (!machine) { say(t("stopNeedsMachine"), true); return; }
    const reason = $("stop-reason").value, note = $("stop-note").value.trim();
    if (reason === "other" && !note) { say(t("stopNeedsNote"), true); $("stop-note").focus(); return; }
    const body = { operator, machine, reason, ...(note ? { note } : {}) };
    queue("/api/v1/stops", body);
  }

  function queue(path, body) {
    const same = JSON.stringify(body);
    const twin = [...pending, ...sent.map((s) => s.report)].find((r) => r && r.same === same && Date.now() - r.made < DOUBLE_TAP_MS);
    if (twin) return; // a double tap: the first one is (being) sent
    const report = { client_id: newId(), path, body, same, made: Date.now(), tries: 0, error: null };
    pending.push(report);
    store();
    flush();
  }

  async function flush() {
    if (busy) return;
    busy = true;
    render();
    try {
      while (pending.length) {
        const report = pending[0];
        report.tries += 1;
        let answer;
        try {
          answer = await PP.api(report.path, { json: { client_id: report.client_id, ...report.body } });
        } catch (err) {
          report.error = `${t("offlineRetry")} (${err})`;
          break; // no answer: keep it, same id, try again
        }
        // 201 counted, 200 a duplicate (counted once before); 4xx: refused for good, never resent
        if (answer.ok || [400, 404, 409, 422].includes(answer.status)) {
          pending.shift();
          const outcome = answer.ok ? "ok" : "refused";
          sent.unshift({ report, at: PP.now(), outcome, detail: answer.ok ? "" : PP.problem(answer) });
          sent.length = Math.min(sent.length, KEEP_SENT);
          say(answer.ok ? t("reported") : PP.problem(answer), !answer.ok);
          continue;
        }
        report.error = PP.problem(answer);
        if (answer.status === 401 || answer.status === 403) { say(report.error, true); PP.askKey(); }
        break; // 5xx or a key problem: keep it with its id
      }
    } finally {
      busy = false;
      store();
      render();
      refreshOp();
      clearTimeout(retryTimer);
      if (pending.length) retryTimer = setTimeout(flush, RETRY_MS);
    }
  }

  function say(text, bad = false) {
    $("send-note").textContent = text;
    $("send-note").className = bad ? "error" : "ok";
  }

  // ------------------------------------------------------------------ camera
  // BarcodeDetector where the browser has one, else the vendored jsQR on canvas frames. Both
  // need a secure context (HTTPS, or localhost) for the camera: on plain HTTP the scanner or the
  // keyboard still work, and the page says why the camera does not.
  async function startCamera() {
    if (camera) return stopCamera();
    if (!window.isSecureContext || !navigator.mediaDevices) { $("camera-note").textContent = t("cameraNeedsHttps"); return; }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (err) {
      $("camera-note").textContent = `${t("cameraFailed")} ${err.name || err}`;
      return;
    }
    const video = $("video");
    video.srcObject = stream;
    video.hidden = false;
    await video.play().catch(() => {});
    let detect;
    if ("BarcodeDetector" in window) {
      const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      detect = async () => { const found = await detector.detect(video); return found.length ? found[0].rawValue : null; };
    } else {
      await loadJsQr();
      const canvas = document.createElement("canvas"), ctx = canvas.getContext("2d", { willReadFrequently: true });
      detect = async () => {
        if (!video.videoWidth) return null;
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        ctx.drawImage(video, 0, 0);
        const found = window.jsQR(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
        return found ? found.data : null;
      };
    }
    camera = { stream, timer: null };
    $("camera-note").textContent = t("cameraOn");
    const look = async () => {
      if (!camera) return;
      const text = await detect().catch(() => null);
      const parsed = text ? parseCode(text) : null;
      if (parsed) { stopCamera(); $("code").value = text; openOp(parsed); return; }
      camera.timer = setTimeout(look, 150);
    };
    look();
  }

  function stopCamera() {
    if (!camera) return;
    clearTimeout(camera.timer);
    for (const track of camera.stream.getTracks()) track.stop();
    camera = null;
    $("video").hidden = true;
    $("camera-note").textContent = "";
  }

  function loadJsQr() {
    if (window.jsQR) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/jsqr.js";
      script.onload = resolve;
      script.onerror = reject;
      document.head.append(script);
    });
  }

  // ------------------------------------------------------------------ rendering
  function render() {
    const card = $("op-card");
    card.hidden = !op;
    if (op) {
      $("op-title").textContent = `${op.order} / ${op.seq}` + (info && info.name ? ` · ${info.name}` : "");
      const meta = [];
      if (info) {
        const where = info.machine || (info.work_centre ? `${t("workCentre")} ${info.work_centre}` : "");
        if (where) meta.push(where);
        if (info.status) meta.push(t("op_" + info.status));
      }
      $("op-meta").textContent = infoProblem || meta.join(" · ");
      const pct = info && typeof info.percent === "number" ? info.percent : null;
      $("op-bar").style.width = `${Math.max(0, Math.min(100, pct || 0))}%`;
      $("op-percent").textContent = pct === null ? "" : `${Math.round(pct)}%`;
      $("op-counts").textContent = info
        ? `${t("good")} ${info.good ?? 0} / ${info.quantity ?? "?"} · ${t("scrap")} ${info.scrap ?? 0}` : "";
      card.dataset.op = `${op.order}/${op.seq}`;
      renderWhere();
    }
    for (const b of card.querySelectorAll("button.action")) b.disabled = busy;
    const select = $("stop-reason");
    const chosen = select.value;
    select.replaceChildren(...STOP_REASONS.map((r) => { const o = el("option", null, t("reason_" + r)); o.value = r; return o; }));
    if (chosen) select.value = chosen;
    const items = [
      ...pending.map((r) => el("li", "pending", `${describe(r.body)} · ${r.error || t("sending")}`)),
      ...sent.map((s) => el("li", s.outcome, `${PP.time(s.at)} ${describe(s.report.body)}` + (s.detail ? ` · ${s.detail}` : " ✓"))),
    ];
    $("sent").replaceChildren(...items);
  }

  function renderWhere() {
    const centre = info && !info.machine ? info.work_centre : null;
    $("where-row").hidden = !centre;
    if (!centre) return;
    const select = $("where"), chosen = select.value || (info.running_on || [])[0] || PP.saved.get("where");
    const ids = machines.filter((m) => m.work_centre === centre).map((m) => m.id);
    select.replaceChildren(...ids.map((id) => { const o = el("option", null, id); o.value = id; return o; }));
    if (ids.includes(chosen)) select.value = chosen;
  }

  function describe(body) {
    if (body.reason) return `${body.machine} ${t("stop")}: ${t("reason_" + body.reason)}` + (body.note ? ` (${body.note})` : "");
    const what = body.kind === "count"
      ? [body.good ? `${t("good")} ${body.good}` : "", body.scrap ? `${t("scrap")} ${body.scrap}` : ""].filter(Boolean).join(" ")
      : t(body.kind);
    return `${body.order_id}/${body.seq} ${what}`;
  }

  const qty = (id) => {
    const n = Math.floor(Number($(id).value));
    if (!(n >= 1 && n <= 1000000)) { say(t("badQty"), true); return null; }
    return n;
  };

  function start() {
    $("operator").value = PP.saved.get("operator");
    $("code-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const parsed = parseCode($("code").value);
      if (!parsed) { say(t("badCode"), true); return; }
      say("");
      openOp(parsed);
      $("code").select();
    });
    $("camera-button").addEventListener("click", startCamera);
    $("where").addEventListener("change", () => PP.saved.set("where", $("where").value));
    $("do-start").addEventListener("click", () => makeReport("start"));
    $("do-finish").addEventListener("click", () => makeReport("finish"));
    $("do-stop").addEventListener("click", makeStop);
    $("do-good").addEventListener("click", () => { const n = qty("good-qty"); if (n) makeReport("count", { good: n }); });
    $("do-scrap").addEventListener("click", () => { const n = qty("scrap-qty"); if (n) makeReport("count", { scrap: n }); });
    const asked = parseCode(PP.params.get("op") || "");
    if (asked) { $("code").value = `${asked.order}/${asked.seq}`; openOp(asked); }
    $(PP.saved.get("operator") ? "code" : "operator").focus();
    if (pending.length) flush();
  }

  PP.start({
    title: "scanTitle",
    render,
    onKey: () => { refreshOp(); flush(); },
    onSnapshot: (data) => { machines = data.machines || []; refreshOp(); },
    on: { order: () => refreshOp(), progress: () => refreshOp(), operation: () => refreshOp() },
  });
  start();
  window.PP_SCAN = { parseCode }; // for the tests
})();
