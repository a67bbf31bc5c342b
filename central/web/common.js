// What the pages share (docs/pages.md): the header (navigation, language switch, key), the
// languages, the key kept in this browser, API calls with it, and the live stream with its
// lost-connection banner and capped, jittered reconnects. Each page's own script calls
// PP.start({ title, onSnapshot, on: { event: handler }, render }) once.
"use strict";

(() => {
  const LANGS = ["zh-Hans", "zh-Hant", "en"];
  const RETRY_MAX_MS = 5000;
  const SILENCE_MS = 25000; // central pings every 10 s
  const params = new URLSearchParams(location.search);
  const board = ["1", "true", "yes"].includes(params.get("board"));
  const $ = (id) => document.getElementById(id);
  const NAV = [["/", "navStatus"], ["/orders", "navOrders"], ["/schedule", "navSchedule"], ["/scan", "navScan"]];

  const saved = {
    get(name) { try { return localStorage.getItem("plantpulse." + name) || ""; } catch { return ""; } },
    set(name, value) {
      try {
        if (value) localStorage.setItem("plantpulse." + name, value);
        else localStorage.removeItem("plantpulse." + name);
      } catch { /* nothing to remember with */ }
    },
  };

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

  // a link to another page keeps what this page's address was given (a board's key, language, board
  // mode): a key given in the address is not stored, so a page opened without it could not read
  const carried = ["key", "lang", "board"].filter((name) => params.get(name));
  function href(path) {
    if (!carried.length) return path;
    const url = new URL(path, location.origin);
    for (const name of carried) if (!url.searchParams.has(name)) url.searchParams.set(name, params.get(name));
    return url.pathname + url.search;
  }

  const PP = {
    board, params, saved, $, href,
    lang: pickLang(),
    key: params.get("key") || saved.get("key"), // ?key= is for boards; it is not stored
    offset: 0, // central's clock minus the browser's, seconds
    connected: false,
  };

  const texts = () => ({ ...window.PP_TEXTS.en, ...window.PP_PAGE_TEXTS.en });
  PP.t = (name) => {
    const own = window.PP_PAGE_TEXTS[PP.lang] || {}, base = window.PP_TEXTS[PP.lang] || {};
    return own[name] ?? base[name] ?? texts()[name] ?? name;
  };
  // data from central (fault texts) comes in zh and en; both Chinese variants show zh
  PP.pick = (txt) => (txt ? (PP.lang === "en" ? txt.en : txt.zh) || txt.en || txt.zh || "" : "");
  PP.now = () => Date.now() / 1000 + PP.offset;
  PP.noteTime = (data) => { if (typeof data.server_time === "number") PP.offset = data.server_time - Date.now() / 1000; };

  PP.el = function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) if (child !== null && child !== undefined && child !== "") node.append(child);
    return node;
  };

  PP.duration = (seconds) => {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, Math.round(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}${PP.t("days")} ${h}h`;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    return m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s % 60}s`;
  };
  PP.percent = (ratio) => (ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)}%`);
  // wall-clock times on central's clock, in the plant's time zone once an answer said which (PP.zone)
  PP.zone = undefined;
  const fmt = (ts, options) => {
    try { return new Date(ts * 1000).toLocaleString(PP.lang, { ...options, hourCycle: "h23", timeZone: PP.zone }); }
    catch { return new Date(ts * 1000).toLocaleString(PP.lang, { ...options, hourCycle: "h23" }); }
  };
  PP.time = (ts) => fmt(ts, { hour: "2-digit", minute: "2-digit" });
  PP.dateTime = (ts) => fmt(ts, { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });

  PP.headers = (k = PP.key) => (k ? { Authorization: `Bearer ${k}` } : {});

  // One API call: {ok, status, body}; body is the JSON answer (or {detail} for a non-JSON one).
  PP.api = async (path, options = {}) => {
    const init = { cache: "no-store", ...options, headers: { ...PP.headers(options.key), ...(options.headers || {}) } };
    if (options.json !== undefined) {
      init.method = init.method || "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    }
    delete init.json;
    delete init.key;
    const response = await fetch(path, init);
    const body = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
    return { ok: response.ok, status: response.status, body };
  };
  PP.problem = (answer) => {
    const d = answer.body && answer.body.detail;
    const text = typeof d === "string" ? d : d ? JSON.stringify(d) : `HTTP ${answer.status}`;
    if (answer.status === 401) return PP.t("err401") + " " + text;
    if (answer.status === 403) return PP.t("err403") + " " + text;
    return text;
  };

  // ------------------------------------------------------------------ header, key and language
  let page = {};

  function header() {
    const bar = $("bar");
    const nav = PP.el("nav", "nav");
    for (const [href, name] of NAV) {
      const a = PP.el("a", location.pathname === href ? "here" : null, PP.t(name));
      a.href = PP.href(href);
      a.dataset.t = name;
      nav.append(a);
    }
    const select = PP.el("select");
    select.id = "lang";
    for (const [value, label] of [["zh-Hans", "简体中文"], ["zh-Hant", "繁體中文"], ["en", "English"]]) {
      const option = PP.el("option", null, label);
      option.value = value;
      option.lang = value;
      select.append(option);
    }
    const label = PP.el("label", null, PP.el("span", null, PP.t("language")), select);
    label.firstChild.dataset.t = "language";
    const keyButton = PP.el("button", null, PP.t("keyButton"));
    keyButton.type = "button";
    keyButton.id = "key-button";
    keyButton.dataset.t = "keyButton";
    const title = PP.el("h1", null, PP.el("span", null, ""));
    title.id = "page-title";
    const clock = PP.el("span", "clock");
    clock.id = "clock";
    bar.replaceChildren(title, nav, clock, PP.el("div", "controls", label, keyButton));
    if (board) bar.querySelector(".controls").hidden = true;
    select.addEventListener("change", () => { PP.lang = select.value; PP.saved.set("lang", PP.lang); applyLang(); });
    keyButton.addEventListener("click", PP.askKey);
    $("key-cancel").addEventListener("click", () => $("key-dialog").close());
    $("key-forget").addEventListener("click", () => { $("key-dialog").close(); saveKey(""); });
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      $("key-dialog").close();
      saveKey($("key-input").value.trim());
    });
  }

  PP.askKey = () => { $("key-input").value = ""; $("key-dialog").showModal(); };

  // the plant's time zone for every time shown (GET /api/v1/site); the browser's until it answers
  async function loadSite() {
    try {
      const answer = await PP.api("/api/v1/site");
      if (answer.ok) { PP.noteTime(answer.body); if (!zoneFixed) PP.setZone(answer.body.timezone); }
    } catch { /* the stream's banner says central is away */ }
  }
  let zoneFixed = false; // a page that knows a better zone (the machine's line) keeps it

  function saveKey(value) {
    PP.key = value;
    PP.saved.set("key", value);
    if (page.onKey) page.onKey();
    loadSite();
    connect();
  }

  // a write succeeded with a key typed into a form: keep it, as the status page does
  PP.keepKey = (value) => { if (value && value !== PP.key) { PP.key = value; PP.saved.set("key", value); } };

  function applyLang() {
    document.documentElement.lang = PP.lang;
    const title = PP.t(page.title);
    document.title = `${title} · plantpulse`;
    $("page-title").firstChild.textContent = title;
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = PP.t(node.dataset.t);
    for (const node of document.querySelectorAll("[data-tp]")) node.placeholder = PP.t(node.dataset.tp);
    $("lang").value = PP.lang;
    if (!$("banner").hidden) setBanner(true, bannerText);
    if (page.render) page.render();
  }

  // ------------------------------------------------------------------ the stream
  let source = null, retries = 0, retryTimer = null, silenceTimer = null, bannerText = "lost";

  function setBanner(lost, text = "lost") {
    bannerText = text;
    $("banner").textContent = PP.t(text);
    $("banner").hidden = !lost;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) source.close();
    const es = new EventSource("/api/v1/stream" + (PP.key ? `?key=${encodeURIComponent(PP.key)}` : ""));
    source = es;
    const on = (name, handle) => es.addEventListener(name, (e) => {
      if (source !== es) return;
      watch(es);
      const data = JSON.parse(e.data);
      PP.noteTime(data);
      if (handle) handle(data);
    });
    on("snapshot", (data) => {
      retries = 0;
      if (!PP.zone) loadSite(); // the first answer may have been refused for want of a key
      PP.connected = true;
      setBanner(false);
      if (page.onSnapshot) page.onSnapshot(data);
    });
    for (const [name, handle] of Object.entries(page.on || {})) on(name, handle);
    on("bye", () => lost(es));
    on("ping", null);
    es.onerror = () => lost(es);
    watch(es);
  }

  function watch(es) {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => lost(es), SILENCE_MS);
  }

  function lost(es) {
    if (source !== es) return;
    clearTimeout(silenceTimer);
    es.close();
    source = null;
    PP.connected = false;
    setBanner(true);
    const delay = Math.min(RETRY_MAX_MS, 500 * 2 ** retries) * (0.75 + Math.random() * 0.5);
    retries = Math.min(retries + 1, 10);
    retryTimer = setTimeout(connect, delay);
    whyLost();
  }

  async function whyLost() {
    try {
      const response = await fetch("/api/v1/machines", { headers: PP.headers(), cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        setBanner(true, PP.key ? "readBadKey" : "readNeedKey");
        if (!board && !$("key-dialog").open) $("key-dialog").showModal();
      }
    } catch {
      // central is unreachable: "reconnecting" is the truth
    }
  }

  function tick() {
    $("clock").textContent = fmt(PP.now(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    if (page.tick) page.tick();
  }

  PP.start = (options) => {
    page = options;
    if (board) document.body.classList.add("board");
    header();
    applyLang();
    loadSite();
    if (options.stream !== false) connect();
    tick();
    setInterval(tick, 1000);
  };
  PP.applyLang = applyLang;
  // the plant's time zone, once an answer said it: every time on the page (and the clock) follows
  PP.setZone = (zone, fixed = false) => {
    zoneFixed = zoneFixed || fixed;
    if (zone && zone !== PP.zone) { PP.zone = zone; tick(); if (page.render) page.render(); }
  };

  window.PP = PP;
})();
