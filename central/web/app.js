// plantpulse live machine-status page (docs/page.md).
//
// State comes from the SSE stream (GET /api/v1/stream): a `snapshot` on every (re)connect replaces
// everything, then `machine`, `gateway` and `alert` events update it. Open alerts are read once per
// snapshot from /api/v1/alerts (the snapshot has machines and gateways only) and merged with the
// alert events by the length of their history, so a late answer never undoes a newer event.
// Times from central are on central's clock: the page keeps the offset to the browser's clock.
"use strict";

(() => {
  const TEXTS = window.PP_TEXTS;
  const LANGS = ["zh-Hans", "zh-Hant", "en"];
  const STATES = ["running", "idle", "setup", "fault", "maintenance", "offline"];
  const SEVERITY = { critical: 3, warning: 2, info: 1 };
  const RETRY_MAX_MS = 5000;
  const SILENCE_MS = 25000; // central pings every 10 s
  const params = new URLSearchParams(location.search);
  const board = ["1", "true", "yes"].includes(params.get("board"));
  const $ = (id) => document.getElementById(id);

  // localStorage may be unavailable (private mode, locked-down kiosk): the page then just forgets.
  const saved = {
    get(name) { try { return localStorage.getItem("plantpulse." + name) || ""; } catch { return ""; } },
    set(name, value) {
      try {
        if (value) localStorage.setItem("plantpulse." + name, value);
        else localStorage.removeItem("plantpulse." + name);
      } catch { /* nothing to remember with */ }
    },
  };

  const machines = new Map(); // id -> MachinePublic
  const gateways = new Map(); // edge_id -> GatewayPublic
  const alerts = new Map(); // id -> alert (with _seq: the alert event it came from, 0 for a fetch)
  const tiles = new Map(); // machine id -> element
  let lang = pickLang();
  let key = params.get("key") || saved.get("key"); // ?key= is for boards; it is not stored
  let offset = 0; // central's clock minus the browser's, seconds
  let source = null;
  let retries = 0;
  let retryTimer = null;
  let silenceTimer = null;
  let connectedOnce = false;
  let alertSeq = 0;
  let fetching = 0;
  let alertsProblem = null; // [text key, detail] when alerts cannot be read
  let acking = null; // id of the alert in the acknowledge dialog
  let askKey = false; // the acknowledge dialog asks for a key

  function pickLang() {
    const asked = params.get("lang") || saved.get("lang");
    if (LANGS.includes(asked)) return asked;
    for (const tag of navigator.languages || [navigator.language || ""]) {
      const l = tag.toLowerCase();
      if (l.startsWith("zh")) return /hant|-tw|-hk|-mo/.test(l) ? "zh-Hant" : "zh-Hans";
      if (l.startsWith("en")) return "en";
    }
    return "en";
  }

  const t = (name) => TEXTS[lang][name] ?? TEXTS.en[name] ?? name;
  const pick = (texts) => (texts ? (lang === "en" ? texts.en : texts.zh) || texts.en || texts.zh || "" : "");
  const serverNow = () => Date.now() / 1000 + offset;
  const noteTime = (data) => { if (typeof data.server_time === "number") offset = data.server_time - Date.now() / 1000; };

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) if (child !== null && child !== undefined && child !== "") node.append(child);
    return node;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    const two = (n) => String(n).padStart(2, "0");
    const hms = h || d ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
    return d ? `${d}${t("days")} ${hms}` : hms;
  }

  // Wall-clock times are shown on central's clock: a board's own clock may be wrong.
  const clockTime = (ts) => new Date(ts * 1000).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });

  // ------------------------------------------------------------------ machine tiles
  function gatewayOnline(m) {
    const gw = m.gateway_id ? gateways.get(m.gateway_id) : undefined;
    return gw && gw.online !== null && gw.online !== undefined ? gw.online : m.gateway_online;
  }

  // links to the other pages keep a key and language given in this page's address (such a key is not
  // stored: the next page could not read without it)
  function href(path) {
    const url = new URL(path, location.origin);
    for (const name of ["key", "lang"]) if (params.get(name)) url.searchParams.set(name, params.get(name));
    return url.pathname + url.search;
  }

  // the name opens the machine's page (its day, downtime causes, OEE, dispatch list); not on a board
  function machineLink(m) {
    if (board) return m.name || m.id;
    const a = el("a", null, m.name || m.id);
    a.href = href(`/machines/${encodeURIComponent(m.id)}`);
    return a;
  }

  function renderTile(m) {
    let tile = tiles.get(m.id);
    if (!tile) {
      tile = el("article");
      tile.dataset.machine = m.id;
      tiles.set(m.id, tile);
    }
    const state = STATES.includes(m.state) ? m.state : "unknown";
    const online = gatewayOnline(m);
    tile.className = `tile state-${state}` + (online === false ? " stale" : "");
    tile.dataset.state = state;
    const elapsed = el("span", "elapsed");
    if (online === false) {
      // nobody can see the machine now: no live timer, but since when it is unknown
      elapsed.classList.add("unknown");
      if (typeof m.gateway_changed_at === "number") elapsed.textContent = `${t("unknownSince")} ${clockTime(m.gateway_changed_at)}`;
    } else if (typeof m.since === "number") {
      elapsed.dataset.since = m.since;
      elapsed.textContent = duration(serverNow() - m.since);
    }
    const stateName = state === "unknown" && m.state ? String(m.state) : t("state")[state];
    const rows = [
      el("div", "head", el("span", "state", stateName), elapsed),
      el("h3", "name", machineLink(m), m.name && m.name !== m.id ? el("span", "id", m.id) : null),
    ];
    if (state === "fault" || m.fault_code != null) {
      const code = m.fault_code != null ? `${t("faultCode")} ${m.fault_code}` : "";
      rows.push(el("p", "fault", [code, pick(m.fault_text)].filter(Boolean).join(" · ")));
    }
    if (state === "offline" && m.reason) rows.push(el("p", "reason", m.reason));
    if (m.uncertain) rows.push(el("p", "reason", t("uncertain")));
    if (m.operation) {
      // the PLC's program number matched to an order's operation: the work order, its progress and ETA
      const op = m.operation;
      const ref = el("strong", null, `${op.order_id}/${op.seq}`);
      if (!board) { // the order's page: its operations, projected finish and why it is at risk
        const a = el("a", null, ref);
        a.href = href(`/orders?order=${encodeURIComponent(op.order_id)}`);
        rows.push(el("p", "job", `${t("job")} `, a, op.name ? ` ${op.name}` : ""));
      } else {
        rows.push(el("p", "job", `${t("job")} `, ref, op.name ? ` ${op.name}` : ""));
      }
      const bar = el("div", "progress");
      bar.append(el("span", "bar"));
      bar.firstChild.style.width = `${Math.max(0, Math.min(100, op.percent || 0))}%`;
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuenow", String(Math.round(op.percent || 0)));
      rows.push(bar);
      if (typeof op.eta === "number") rows.push(el("p", "eta", `${t("eta")} ${clockTime(op.eta)}`));
    } else {
      rows.push(el("p", "job", `${t("program")} `, el("strong", null, m.job || "—")));
    }
    rows.push(el("p", "counts", `${t("today")} ${t("good")} `, el("strong", null, String(m.good_today ?? 0)),
      ` · ${t("scrap")} `, el("strong", null, String(m.scrap_today ?? 0))));
    if (online === false) {
      rows.push(el("p", "gw offline", t("lastKnown")));
    } else if (m.gateway_id) {
      rows.push(el("p", "gw", `${t("gateway")} ${m.gateway_id} · ${online ? t("gwOnline") : "—"}`));
    }
    tile.replaceChildren(...rows);
    tile.setAttribute("aria-label", `${m.name || m.id}: ${stateName}`);
    return tile;
  }

  // on a phone the machines that need someone come first (in fault, or with an order at risk)
  const phone = window.matchMedia("(max-width: 700px)");
  const urgent = (m) => (m.state === "fault" || (m.operation && m.operation.at_risk) ? 0 : 1);

  function renderTiles() {
    const list = [...machines.values()].sort((a, b) =>
      (phone.matches ? urgent(a) - urgent(b) : 0)
      || (a.line || "").localeCompare(b.line || "") || a.id.localeCompare(b.id));
    for (const id of [...tiles.keys()]) if (!machines.has(id)) tiles.delete(id);
    $("tiles").replaceChildren(...list.map(renderTile));
    const note = $("machines-note");
    note.hidden = list.length > 0;
    note.textContent = connectedOnce ? t("noMachines") : t("connecting");
  }

  // ------------------------------------------------------------------ alerts
  function renderAlerts() {
    const open = [...alerts.values()].filter((a) => a.status !== "resolved").sort((a, b) =>
      (SEVERITY[b.severity] || 0) - (SEVERITY[a.severity] || 0)
      || (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1)
      || (b.level || 0) - (a.level || 0)
      || a.opened_at - b.opened_at);
    const items = open.map((a) => {
      const meta = [`${t("since")} ${clockTime(a.since ?? a.opened_at)}`];
      if (a.level > 0) meta.push(`${t("level")} ${a.level}`);
      if (a.historic) meta.push(t("historic"));
      const body = el("div", "body", el("p", "msg", pick(a.message)), el("p", "meta", meta.join(" · ")));
      if (a.status === "acknowledged") {
        body.append(el("p", "acked", [t("acknowledged"), a.acknowledged_by, a.ack_note].filter(Boolean).join(" · ")));
      }
      const item = el("li", `alert sev-${a.severity} status-${a.status}`,
        el("span", "sev", t("severity")[a.severity] || a.severity), body);
      item.dataset.alert = a.id;
      item.dataset.subject = a.subject;
      item.dataset.status = a.status;
      if (a.status === "open" && !board) {
        const button = el("button", "ack", t("acknowledge"));
        button.type = "button";
        button.addEventListener("click", () => openAck(a.id));
        item.append(button);
      }
      return item;
    });
    $("alert-list").replaceChildren(...items);
    $("alert-count").textContent = open.length ? `(${open.length})` : "";
    const note = $("alerts-note");
    note.textContent = alertsProblem ? t(alertsProblem[0]) + (alertsProblem[1] || "") : t("noAlerts");
    note.hidden = open.length > 0 && !alertsProblem;
  }

  function takeAlert(alert, seq) {
    const current = alerts.get(alert.id);
    if (current && current.history.length > alert.history.length) return;
    alert._seq = seq;
    alerts.set(alert.id, alert);
  }

  function pruneResolved() {
    if (fetching > 0) return; // a fetch in flight could bring an older copy back: keep the newer one
    for (const [id, a] of alerts) if (a.status === "resolved") alerts.delete(id);
  }

  async function fetchAlerts() {
    const mark = alertSeq;
    fetching += 1;
    try {
      const response = await fetch("/api/v1/alerts?status=active&limit=1000", { headers: auth(key), cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        alertsProblem = [key ? "alertsBadKey" : "alertsNeedKey", ""];
      } else if (!response.ok) {
        alertsProblem = ["alertsFailed", `HTTP ${response.status}`];
      } else {
        const body = await response.json();
        alertsProblem = null;
        const ids = new Set(body.alerts.map((a) => a.id));
        for (const [id, a] of alerts) if (!ids.has(id) && a._seq <= mark) alerts.delete(id);
        for (const a of body.alerts) takeAlert(a, 0);
      }
    } catch {
      return; // central is unreachable: the stream shows that, and its next snapshot fetches again
    } finally {
      fetching -= 1;
    }
    pruneResolved();
    renderAlerts();
  }

  const auth = (k) => (k ? { Authorization: `Bearer ${k}` } : {});

  // ------------------------------------------------------------------ acknowledge
  function showAckError(text) {
    $("ack-error").textContent = text;
    $("ack-error").hidden = !text;
  }

  function openAck(id) {
    const alert = alerts.get(id);
    if (!alert) return;
    acking = id;
    askKey = !key;
    $("ack-message").textContent = pick(alert.message);
    $("ack-name").value = saved.get("name");
    $("ack-note").value = "";
    $("ack-key").value = "";
    $("ack-key-row").hidden = !askKey;
    showAckError("");
    $("ack-dialog").showModal();
    ($("ack-name").value ? $("ack-note") : $("ack-name")).focus();
  }

  async function sendAck(event) {
    event.preventDefault();
    const name = $("ack-name").value.trim();
    const candidate = askKey ? $("ack-key").value.trim() : key;
    if (!name) return showAckError(t("needName"));
    if (!candidate) return showAckError(t("needKey"));
    saved.set("name", name);
    const send = $("ack-send");
    send.disabled = true;
    send.textContent = t("sending");
    try {
      const note = $("ack-note").value.trim();
      const response = await fetch(`/api/v1/alerts/${encodeURIComponent(acking)}/ack`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...auth(candidate) },
        body: JSON.stringify({ by: name, note: note || null }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        key = candidate;
        saved.set("key", candidate);
        takeAlert(body, ++alertSeq);
        renderAlerts();
        $("ack-dialog").close();
      } else if (response.status === 401 || response.status === 403) {
        if (response.status === 401) { key = ""; saved.set("key", ""); }
        askKey = true;
        $("ack-key-row").hidden = false;
        showAckError(t(response.status === 401 ? "err401" : "err403"));
        $("ack-key").focus();
      } else if (response.status === 409) {
        showAckError(t("err409") + (body.detail || ""));
        fetchAlerts();
      } else {
        showAckError(t("errOther") + (body.detail || `HTTP ${response.status}`));
      }
    } catch (err) {
      showAckError(t("errOther") + err);
    } finally {
      send.disabled = false;
      send.textContent = t("acknowledge");
    }
  }

  // ------------------------------------------------------------------ the stream
  let bannerText = "lost"; // or readNeedKey / readBadKey when central refuses to be read without a key

  function setBanner(lost, text = "lost") {
    bannerText = text;
    $("banner").textContent = t(text);
    $("banner").hidden = !lost;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) source.close();
    const es = new EventSource("/api/v1/stream" + (key ? `?key=${encodeURIComponent(key)}` : ""));
    source = es;
    const on = (name, handle) => es.addEventListener(name, (e) => {
      if (source !== es) return;
      watch(es);
      const data = JSON.parse(e.data);
      noteTime(data);
      handle(data);
    });
    on("snapshot", (data) => {
      retries = 0;
      connectedOnce = true;
      setBanner(false);
      machines.clear();
      gateways.clear();
      for (const g of data.gateways || []) gateways.set(g.edge_id, g);
      for (const m of data.machines || []) machines.set(m.id, m);
      renderTiles();
      fetchAlerts();
    });
    on("machine", ({ machine }) => {
      const known = machines.has(machine.id);
      machines.set(machine.id, machine);
      if (known) renderTile(machine); else renderTiles();
    });
    on("gateway", ({ gateway }) => {
      gateways.set(gateway.edge_id, gateway);
      for (const m of machines.values()) if (m.gateway_id === gateway.edge_id) renderTile(m);
    });
    on("alert", ({ alert }) => {
      takeAlert(alert, ++alertSeq);
      pruneResolved();
      renderAlerts();
    });
    on("bye", () => lost(es)); // central is shutting down
    on("ping", () => {}); // central pings every 10 s: silence means a dead connection
    es.onerror = () => lost(es);
    watch(es);
  }

  // A connection can die without an error (a cable pulled between switches): no event, not even
  // central's ping, for SILENCE_MS means it is gone.
  function watch(es) {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => lost(es), SILENCE_MS);
  }

  // Our own capped, jittered backoff: EventSource gives up for good on some errors (an HTTP error
  // answer), and a board must never stay disconnected.
  function lost(es) {
    if (source !== es) return;
    clearTimeout(silenceTimer);
    es.close();
    source = null;
    setBanner(true);
    const delay = Math.min(RETRY_MAX_MS, 500 * 2 ** retries) * (0.75 + Math.random() * 0.5);
    retries = Math.min(retries + 1, 10);
    retryTimer = setTimeout(connect, delay);
    whyLost();
  }

  // EventSource hides the HTTP status: ask once whether central refused the key, and say so (a
  // board or phone without a read key would otherwise just show "reconnecting" forever).
  async function whyLost() {
    try {
      const response = await fetch("/api/v1/machines", { headers: auth(key), cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        setBanner(true, key ? "readBadKey" : "readNeedKey");
        if (!board) $("key-dialog").showModal();
      }
    } catch {
      // central is unreachable: "reconnecting" is the truth
    }
  }

  // ------------------------------------------------------------------ page
  function applyLang() {
    document.documentElement.lang = lang;
    document.title = `${t("title")} · plantpulse`;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    $("lang").value = lang;
    if (!$("banner").hidden) setBanner(true, bannerText);
    renderTiles();
    renderAlerts();
  }

  function tick() {
    const now = serverNow();
    for (const span of document.querySelectorAll(".elapsed[data-since]:not(.unknown)")) {
      span.textContent = duration(now - Number(span.dataset.since));
    }
    $("clock").textContent = new Date(now * 1000).toLocaleTimeString(lang);
  }

  function saveKey(value) {
    key = value;
    saved.set("key", value);
    connect(); // the stream and the alerts are read with the new key
  }

  function start() {
    for (const a of document.querySelectorAll(".nav a")) a.href = href(a.getAttribute("href"));
    phone.addEventListener("change", renderTiles);
    if (board) {
      document.body.classList.add("board");
      document.querySelector(".controls").hidden = true;
    }
    $("lang").addEventListener("change", () => { lang = $("lang").value; saved.set("lang", lang); applyLang(); });
    $("ack-form").addEventListener("submit", sendAck);
    $("ack-cancel").addEventListener("click", () => $("ack-dialog").close());
    $("key-button").addEventListener("click", () => { $("key-input").value = ""; $("key-dialog").showModal(); });
    $("key-cancel").addEventListener("click", () => $("key-dialog").close());
    $("key-forget").addEventListener("click", () => { $("key-dialog").close(); saveKey(""); });
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      $("key-dialog").close();
      saveKey($("key-input").value.trim());
    });
    applyLang();
    connect();
    tick();
    setInterval(tick, 1000);
  }

  start();
})();
