// labkit live page: polls the JSON API of `labkit serve` and draws sessions, charts and decisions.
// Plain ES2020, no framework and no outside host (the server's CSP is default-src 'self').
// Every value from the server reaches the page through textContent, never as HTML.
"use strict";

(() => {
  const POLL_MS = 1500; // the sessions list and the open session, while the server answers
  const HIDDEN_POLL_MS = 10000; // while the tab is in the background
  const MAX_BACKOFF_MS = 30000; // the longest wait between attempts while the server is down
  const FETCH_TIMEOUT_MS = 8000;
  const COMMAND_TIMEOUT_MS = 40000; // an emergency stop waits up to 15 s for the session to confirm
  const DECISIONS_KEPT = 500; // journal lines kept in memory: the block reasons count over them
  const DECISIONS_SHOWN = 30;
  const DECISIONS_SHOWN_NARROW = 20; // on a phone, where each is a card
  const narrow = window.matchMedia("(max-width: 640px)");
  const EQUITY_POINTS = 600;
  const LOG_LINES = 40; // the session log's tail shown under the decisions
  const SUMMARY_EVERY_MS = 10000; // a listed session's peak equity, for its drawdown
  const REPORTS_EVERY_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    sessions: null, // the last list the server gave, normalised
    selected: null, // the name of the session shown in detail, or null
    detail: null, // {name, lastSeq, decisions, equity, decisionsError}
    reports: null,
    reportsAt: 0,
    summaries: new Map(), // name -> {peak, maxDrawdown, at}: the drawdown column of the list
    decisionsLimit: DECISIONS_KEPT, // lowered when the server's serve.decisions_limit_max is lower
    failures: 0,
    downSince: null,
    lastOk: null,
    timer: null,
    nextAt: 0,
    clockOffset: 0, // the server's clock minus ours, from the Date header, when they differ much
    key: null, // the API key: in this tab's memory only, never in storage
    pending: null, // {action, name} while the key dialog is open
    server: null, // {control, commands} from /api/server: whether the buttons can work at all
  };

  // ---------------------------------------------------------------- formatting

  const numberFormats = new Map();
  function fmtNumber(value, digits = 2, minDigits = digits) {
    if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
    const key = `${minDigits}/${digits}`;
    if (!numberFormats.has(key)) {
      numberFormats.set(key, new Intl.NumberFormat("en-US", { minimumFractionDigits: minDigits, maximumFractionDigits: digits }));
    }
    return numberFormats.get(key).format(Number(value));
  }

  function fmtMoney(value, quote) {
    const text = fmtNumber(value, 2);
    return text === "–" || !quote ? text : `${text} ${quote}`;
  }

  function fmtUnits(value) {
    if (value === null || value === undefined) return "–";
    const v = Number(value);
    if (v === 0) return "0";
    return fmtNumber(v, Math.abs(v) >= 1000 ? 2 : Math.abs(v) >= 1 ? 4 : 6, 0);
  }

  function fmtPct(fraction, digits = 2) {
    if (fraction === null || fraction === undefined || !Number.isFinite(Number(fraction))) return "–";
    return `${fmtNumber(Number(fraction) * 100, digits)} %`;
  }

  function fmtDetailValue(v) {
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return fmtNumber(v, a >= 100 ? 2 : a >= 1 ? 3 : 4, 0).replace(/,/g, "");
    }
    if (v === null) return "null";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function parseTime(value) {
    if (value === null || value === undefined || value === "") return NaN;
    if (typeof value === "number") return value < 1e11 ? value * 1000 : value; // seconds or ms
    return Date.parse(value);
  }

  const pad = (n) => String(n).padStart(2, "0");
  function fmtUtc(value, withDate = true) {
    const t = parseTime(value);
    if (!Number.isFinite(t)) return "–";
    const d = new Date(t);
    const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return withDate ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time}` : time;
  }

  // An instant of today (UTC) as its time, an older one with its date.
  function fmtWhen(value) {
    const full = fmtUtc(value);
    return full.slice(0, 10) === fmtUtc(serverNow()).slice(0, 10) ? `${full.slice(11)} UTC` : `${full} UTC`;
  }

  // The same units as `labkit status`: 12 s, 3 min, 2 h, 4 d (each up to 90 of it, hours up to 48).
  function humanDuration(seconds) {
    const s = Math.max(0, seconds);
    if (s < 90) return `${Math.floor(s)} s`;
    if (s < 90 * 60) return `${Math.floor(s / 60)} min`;
    if (s < 48 * 3600) return `${Math.floor(s / 3600)} h`;
    return `${Math.floor(s / 86400)} d`;
  }

  const serverNow = () => Date.now() + state.clockOffset;

  function ageText(session) {
    const seconds = beatAge(session);
    return seconds === null ? "never" : `${humanDuration(seconds)} ago`;
  }

  function beatAge(session) {
    if (session.beatAge !== null) return session.beatAge + (Date.now() - session.fetchedAt) / 1000;
    const t = parseTime(session.lastBeat);
    return Number.isFinite(t) ? (serverNow() - t) / 1000 : null;
  }

  // ---------------------------------------------------------------- what the server returns

  const first = (obj, ...keys) => {
    for (const k of keys) if (obj && obj[k] !== undefined && obj[k] !== null) return obj[k];
    return null;
  };

  const numberOrNull = (v) => (v === null || v === "" || !Number.isFinite(Number(v)) ? null : Number(v));

  function quoteOf(raw) {
    const q = first(raw, "quote", "quote_currency", "currency");
    if (q) return String(q);
    // A book's symbol names them all (A/Q,B/Q): its money is its first symbol's quote.
    const symbol = first(raw, "symbol");
    if (typeof symbol === "string" && symbol.includes("/")) return symbol.split(",")[0].split("/")[1].split(":")[0];
    return "";
  }

  function normSession(raw, fetchedAt) {
    const status = String(first(raw, "status_word", "status") || "unknown");
    const halted = Boolean(first(raw, "halted"));
    const equity = first(raw, "equity");
    const peak = first(raw, "peak", "peak_equity", "equity_peak");
    let drawdown = first(raw, "drawdown", "drawdown_frac");
    if (drawdown === null && peak !== null && equity !== null && peak > 0) drawdown = Math.max(0, 1 - equity / peak);
    return {
      raw,
      name: String(first(raw, "session", "name")),
      status,
      halted,
      haltReason: first(raw, "halt_reason"),
      mode: first(raw, "mode"),
      symbol: first(raw, "symbol"),
      symbols: first(raw, "symbols"),
      positions: first(raw, "positions"),
      timeframe: first(raw, "timeframe"),
      quote: quoteOf(raw),
      equity,
      cash: first(raw, "cash"),
      position: first(raw, "position"),
      peak,
      drawdown,
      decisions: first(raw, "decisions", "total_decisions"),
      lastBar: first(raw, "last_decision_ts"),
      lastBeat: first(raw, "last_beat"),
      beatAge: numberOrNull(first(raw, "heartbeat_age_seconds", "heartbeat_age_s", "heartbeat_age")),
      fetchedAt,
      problem: first(raw, "problem"),
      repair: first(raw, "repair"),
      pid: first(raw, "pid"),
    };
  }

  // The status word a person needs: a running session that is halted shows as halted.
  function displayStatus(s) {
    if (s.halted && (s.status === "running" || s.status === "stopped")) return s.status === "running" ? "halted" : "stopped, halted";
    return s.status;
  }

  const TONES = { running: "ok", halted: "warn", stale: "warn", "stopped, halted": "warn", stopped: "idle", broken: "bad", dead: "bad" };
  const STATUS_HELP = {
    running: "running: deciding bars, heartbeat fresh",
    halted: "halted: entries refused until labkit resume",
    stale: "stale: the process is alive but has not beaten lately",
    stopped: "stopped: not running",
    "stopped, halted": "stopped, and halted: entries stay refused after a restart until labkit resume",
    broken: "broken: its files cannot carry it on",
    dead: "dead: its heartbeat says running but the process is gone",
  };

  function setBadge(el, word) {
    el.textContent = word;
    el.dataset.status = word;
    el.dataset.tone = TONES[word] || "idle";
    el.title = STATUS_HELP[word] || word;
  }

  // ---------------------------------------------------------------- HTTP

  class HttpError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  function noteServerClock(res) {
    const date = Date.parse(res.headers.get("Date") || "");
    if (!Number.isFinite(date)) return;
    const offset = date - Date.now();
    // The Date header has whole seconds: follow it only when the clocks are visibly apart.
    state.clockOffset = Math.abs(offset) > 2500 ? offset : 0;
  }

  async function messageOf(res) {
    try {
      const text = await res.text();
      try {
        const body = JSON.parse(text);
        const m = first(body, "detail", "error", "message", "result");
        if (m !== null) return typeof m === "string" ? m : JSON.stringify(m);
      } catch (_) {
        /* not JSON: the text itself */
      }
      return text.slice(0, 300);
    } catch (_) {
      return "";
    }
  }

  async function request(path, options = {}, timeout = FETCH_TIMEOUT_MS) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout);
    try {
      const res = await fetch(path, { cache: "no-store", ...options, signal: controller.signal, headers: { Accept: "application/json", ...(options.headers || {}) } });
      noteServerClock(res);
      if (!res.ok) throw new HttpError(res.status, await messageOf(res), res.headers.get("Retry-After"));
      const text = await res.text();
      return text ? JSON.parse(text) : null;
    } finally {
      clearTimeout(timer);
    }
  }

  const getJSON = (path) => request(path);
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- polling

  function schedule(delay) {
    clearTimeout(state.timer);
    state.nextAt = Date.now() + delay;
    state.timer = setTimeout(poll, delay);
  }

  function nextDelay() {
    if (state.failures > 0) return Math.min(POLL_MS * 2 ** state.failures, MAX_BACKOFF_MS);
    return document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  }

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const list = await getJSON("/api/sessions");
      const now = Date.now();
      const items = Array.isArray(list) ? list : first(list, "sessions") || [];
      // By name: the server lists them by folder time, which moves with every bar.
      state.sessions = items.map((raw) => normSession(raw, now)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (state.server === null) state.server = await getJSON("/api/server");
      chooseSession();
      renderSessions();
      if (state.selected) await refreshDetail();
      else renderDetail();
      await refreshSummary();
      await refreshReports(false);
      serverUp();
    } catch (err) {
      serverDown(err);
    } finally {
      polling = false;
      schedule(nextDelay());
    }
  }

  function serverUp() {
    state.failures = 0;
    state.downSince = null;
    state.lastOk = Date.now();
    $("banner").hidden = true;
    renderConn();
  }

  function serverDown(err) {
    state.failures += 1;
    if (state.downSince === null) state.downSince = Date.now();
    const http = err instanceof HttpError;
    state.lastError = http ? `it answered ${err.status}${err.message ? `: ${err.message}` : ""}` : "no answer";
    $("banner-title").textContent = http ? (err.status === 429 ? "Server busy: too many requests." : "Server error.") : "Server unreachable.";
    $("banner").hidden = false;
    renderBanner();
    renderConn();
  }

  function renderBanner() {
    if (state.downSince === null) return;
    const wait = Math.max(0, Math.ceil((state.nextAt - Date.now()) / 1000));
    const last = state.lastOk ? `Last update ${fmtUtc(state.lastOk, false)} UTC; the figures below may be out of date.` : "Nothing loaded yet.";
    $("banner-text").textContent = `${capitalise(state.lastError)} (${state.failures} ${state.failures === 1 ? "attempt" : "attempts"}). ${last} Retrying in ${wait} s.`;
  }

  function renderConn() {
    const conn = $("conn");
    if (state.downSince !== null) {
      conn.dataset.state = "down";
      $("conn-text").textContent = $("banner-title").textContent.replace(/[.:].*$/, "");
    } else if (state.lastOk) {
      conn.dataset.state = "live";
      $("conn-text").textContent = `Live · updated ${fmtUtc(state.lastOk, false)} UTC`;
    }
  }

  const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

  // ---------------------------------------------------------------- sessions

  function hashSession() {
    const m = /^#session=(.+)$/.exec(location.hash);
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]);
    } catch (_) {
      return null;
    }
  }

  function chooseSession() {
    const wanted = hashSession();
    const names = state.sessions.map((s) => s.name);
    let pick = null;
    if (wanted !== null) pick = wanted; // shown even when gone, so the page says so
    else if (state.selected && names.includes(state.selected)) pick = state.selected;
    else if (names.length === 1) pick = names[0];
    if (pick !== state.selected) {
      state.selected = pick;
      state.detail = pick === null ? null : { name: pick, lastSeq: -1, decisions: [], equity: null, fresh: new Set() };
      $("d-notice").hidden = true; // a command's answer belongs to the session it was sent to
    }
  }

  function renderSessions() {
    const sessions = state.sessions || [];
    $("sessions-loading").hidden = true;
    $("sessions-empty").hidden = sessions.length > 0;
    $("sessions").hidden = sessions.length === 0;
    $("sessions-hint").hidden = sessions.length === 0 || state.selected !== null;
    $("sessions-count").textContent = sessions.length ? `${sessions.length} ${sessions.length === 1 ? "session" : "sessions"}` : "";
    const body = $("sessions-body");
    // The rows are rebuilt on every poll: keep the keyboard's place on the session it was on.
    const active = document.activeElement;
    const focusedRow = active && body.contains(active) ? active.closest("tr[data-session]") : null;
    const rows = [];
    for (const s of sessions) {
      const tr = document.createElement("tr");
      tr.dataset.session = s.name;
      tr.dataset.status = displayStatus(s);
      if (s.name === state.selected) tr.setAttribute("aria-current", "true");
      const link = document.createElement("a");
      link.className = "session-link";
      link.href = `#session=${enc(s.name)}`;
      link.textContent = s.name;
      const badge = document.createElement("span");
      badge.className = "badge";
      setBadge(badge, displayStatus(s));
      const symbol = document.createElement("span");
      symbol.textContent = s.symbol || "–";
      const tf = document.createElement("span");
      tf.className = "tf";
      tf.textContent = s.timeframe ? ` ${s.timeframe}` : "";
      symbol.append(tf);
      const beat = document.createElement("span");
      beat.className = "beat-age";
      beat.textContent = ageText(s);
      rows.push(
        rowOf(tr, [
          [link, "Session", "card-title"],
          [badge, "Status", "c-status"],
          [beat, "Heartbeat", "c-beat"],
          [s.mode || "–", "Mode", "c-mode"],
          [symbol, "Symbol", "c-symbol"],
          [fmtMoney(s.equity, s.quote), "Equity", "num c-equity"],
          [fmtUnits(s.position), "Position", "num c-pos"],
          [fmtPct(drawdownOf(s)), "Drawdown", "num c-dd"],
          [s.decisions === null ? "–" : fmtNumber(s.decisions, 0), "Decisions", "num c-dec"],
        ]),
      );
    }
    body.replaceChildren(...rows);
    if (focusedRow) {
      const link = body.querySelector(`tr[data-session="${CSS.escape(focusedRow.dataset.session)}"] a`);
      if (link) link.focus({ preventScroll: true });
    }
  }

  // The drawdown now, from the running peak: the status's when it has one, else the equity curve's peak.
  function drawdownOf(s) {
    if (s.drawdown !== null) return s.drawdown;
    const summary = state.summaries.get(s.name);
    if (!summary || summary.peak === null || s.equity === null || !(summary.peak > 0)) return null;
    return Math.max(0, 1 - Math.min(s.equity, summary.peak) / summary.peak);
  }

  function peakOf(s) {
    if (s.peak !== null) return s.peak;
    const summary = state.summaries.get(s.name);
    if (!summary || summary.peak === null) return null;
    return s.equity !== null ? Math.max(summary.peak, s.equity) : summary.peak;
  }

  // One session's peak per poll, the one known longest ago, so the list's drawdowns stay fresh
  // without a request per session per poll (the open session's comes with its chart).
  async function refreshSummary() {
    const due = (state.sessions || [])
      .filter((s) => s.name !== state.selected && s.drawdown === null && s.equity !== null)
      .map((s) => [s.name, (state.summaries.get(s.name) || { at: 0 }).at])
      .filter(([, at]) => Date.now() - at > SUMMARY_EVERY_MS)
      .sort((a, b) => a[1] - b[1]);
    if (!due.length) return;
    const name = due[0][0];
    try {
      const curve = await getJSON(`/api/sessions/${enc(name)}/equity?points=1`);
      noteSummary(name, curve);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      state.summaries.set(name, { peak: null, maxDrawdown: null, at: Date.now() });
    }
    renderSessions();
  }

  function noteSummary(name, raw) {
    const curve = raw && !Array.isArray(raw) ? raw : {};
    let peak = first(curve, "peak_equity", "peak");
    const points = first(curve, "points");
    if (peak === null && Array.isArray(points) && points.length) peak = Math.max(...points.map((p) => Number(first(p, "equity", "value"))));
    state.summaries.set(name, { peak, maxDrawdown: first(curve, "max_drawdown"), at: Date.now() });
  }

  function rowOf(tr, cells) {
    for (const [content, label, cls] of cells) {
      const td = document.createElement("td");
      td.dataset.label = label;
      if (cls) td.className = cls;
      const parts = Array.isArray(content) ? content : [content];
      for (const part of parts) td.append(typeof part === "string" ? document.createTextNode(part) : part);
      tr.append(td);
    }
    return tr;
  }

  // A click anywhere on a row opens its session, as its link does.
  $("sessions-body").addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-session]");
    if (!tr || event.target.closest("a")) return;
    location.hash = `session=${enc(tr.dataset.session)}`;
  });

  window.addEventListener("hashchange", () => {
    chooseSession();
    renderSessions();
    renderDetail();
    // On a narrow screen the detail sits below the whole list: bring it into view.
    if (state.detail && narrow.matches) $("detail").scrollIntoView({ block: "start" });
    schedule(0);
  });

  // ---------------------------------------------------------------- one session

  function currentSession() {
    return (state.sessions || []).find((s) => s.name === state.selected) || null;
  }

  async function refreshDetail() {
    const d = state.detail;
    const s = currentSession();
    if (!s) {
      renderDetail();
      return;
    }
    // Only the newest lines matter: a session far ahead of what we hold is read from its tail.
    let after = d.lastSeq;
    if (s.decisions !== null && (s.decisions - 1 < after || s.decisions - 1 - after > DECISIONS_KEPT)) {
      after = Math.max(-1, s.decisions - 1 - DECISIONS_KEPT);
      d.decisions = [];
    }
    const name = enc(d.name);
    const [lines, curve, log] = await Promise.all([
      getJSON(`/api/sessions/${name}/decisions?after_seq=${after}&limit=${state.decisionsLimit}`).catch((e) => {
        // A server that allows fewer lines a request (serve.decisions_limit_max) says so with a 400.
        if (e instanceof HttpError && e.status === 400 && /limit/.test(e.message) && state.decisionsLimit > 100) state.decisionsLimit = 100;
        return soft(e, d, "decisionsError");
      }),
      getJSON(`/api/sessions/${name}/equity?points=${EQUITY_POINTS}`).catch((e) => soft(e, d, "equityError")),
      getJSON(`/api/sessions/${name}/log?lines=${LOG_LINES}`).catch((e) => soft(e, d, "logError")),
    ]);
    if (state.detail !== d) return; // another session was chosen meanwhile
    if (lines) {
      d.decisionsError = null;
      const items = Array.isArray(lines) ? lines : first(lines, "decisions", "lines", "items") || [];
      d.total = Array.isArray(lines) ? null : first(lines, "total");
      d.fresh = new Set();
      for (const line of items) {
        if (typeof line.seq !== "number" || line.seq <= d.lastSeq) continue;
        d.decisions.push(line);
        if (d.lastSeq >= 0) d.fresh.add(line.seq);
        d.lastSeq = line.seq;
      }
      if (d.decisions.length > DECISIONS_KEPT) d.decisions.splice(0, d.decisions.length - DECISIONS_KEPT);
    }
    if (log) {
      d.logError = null;
      d.log = first(log, "lines") || [];
    }
    if (curve) {
      d.equityError = null;
      d.equity = normCurve(curve);
      noteSummary(d.name, curve);
    }
    renderDetail();
  }

  // A 404 or 422 on a detail endpoint is shown in its place; a network failure fails the whole poll.
  function soft(err, d, field) {
    if (err instanceof HttpError && err.status < 500) {
      d[field] = `${err.status}${err.message ? `: ${err.message}` : ""}`;
      return null;
    }
    throw err;
  }

  function normCurve(raw) {
    let times = first(raw, "times", "ts", "t");
    let equity = first(raw, "equity", "values", "value");
    let drawdown = first(raw, "drawdown", "drawdowns");
    const points = Array.isArray(raw) ? raw : first(raw, "points");
    if (!times && Array.isArray(points)) {
      times = points.map((p) => first(p, "ts", "time", "t"));
      equity = points.map((p) => first(p, "equity", "value", "v"));
      drawdown = points.map((p) => first(p, "drawdown", "dd"));
    }
    times = (times || []).map(parseTime);
    equity = (equity || []).map(Number);
    if (!drawdown || drawdown.length !== equity.length) {
      let peak = -Infinity;
      drawdown = equity.map((e) => {
        peak = Math.max(peak, e);
        return peak > 0 ? 1 - e / peak : 0;
      });
    }
    drawdown = drawdown.map((v) => Math.abs(Number(v))); // a positive fraction, whichever sign was sent
    const peak = first(raw, "peak_equity", "peak");
    return { times, equity, drawdown, peak: peak === null && equity.length ? Math.max(...equity) : peak, quote: first(raw, "quote", "currency") };
  }

  function renderDetail() {
    const d = state.detail;
    $("detail").hidden = d === null;
    if (d === null) return;
    const s = currentSession();
    $("d-name").textContent = d.name;
    document.title = `${d.name} · labkit live`;
    const word = s ? displayStatus(s) : state.sessions ? "not found" : "loading";
    setBadge($("d-status"), word);
    $("btn-stop").disabled = $("btn-estop").disabled = !s;
    // A stopped session has nothing to stop; an emergency stop still holds it halted when it restarts.
    if (s && (s.status === "stopped" || s.status === "broken")) $("btn-stop").disabled = true;
    $("btn-stop").title = $("btn-stop").disabled ? "The session is not running" : "Stop after the current bar";
    renderControl(d.name);
    const problem = $("d-problem");
    if (!s) {
      problem.hidden = state.sessions === null;
      problem.textContent = `No session named “${d.name}” under this home.`;
      return;
    }
    problem.hidden = !s.problem;
    problem.textContent = s.problem ? `${s.problem}${s.repair ? `. Repair: ${s.repair}` : ""}` : "";
    const halt = $("d-halt");
    halt.hidden = !s.halted;
    halt.textContent = s.halted ? `Halted${s.haltReason ? ` (${s.haltReason})` : ""}: entries are refused and a position is flattened at the next open, until labkit resume.` : "";
    const lastBarText = s.lastBar ? `last bar ${fmtWhen(s.lastBar)}` : "no bar yet";
    const meta = [s.mode, [s.symbol, s.timeframe].filter(Boolean).join(" "), lastBarText, s.pid && ["running", "halted", "stale", "dead"].includes(s.status) ? `pid ${s.pid}` : null];
    $("d-meta").textContent = meta.filter(Boolean).join(" · ");

    setMoney($("d-equity"), s.equity, s.quote);
    $("d-equity").dataset.value = s.equity === null ? "" : String(s.equity);
    setMoney($("d-cash"), s.cash, s.quote);
    $("d-position").textContent = fmtUnits(s.position);
    const base = typeof s.symbol === "string" && s.symbol.includes("/") ? s.symbol.split("/")[0] : "";
    if (base && s.position !== null) appendUnit($("d-position"), base);
    $("d-drawdown").textContent = fmtPct(drawdownOf(s));
    const summary = state.summaries.get(s.name);
    if (summary && summary.maxDrawdown !== null && summary.maxDrawdown !== undefined) $("d-drawdown").title = `deepest so far ${fmtPct(summary.maxDrawdown)}`;
    setMoney($("d-peak"), peakOf(s), s.quote);
    $("d-decisions").textContent = s.decisions === null ? "–" : fmtNumber(s.decisions, 0);
    $("d-decisions").dataset.value = s.decisions === null ? "" : String(s.decisions);
    $("d-beat").textContent = ageText(s);
    renderUnrealised(d, s);

    renderPrice(d, s);
    renderCharts(d, s);
    renderBlocks(d);
    renderDecisions(d);
    renderLog(d);
    renderReports();
  }

  // With no serve.api_keys every command would be refused: the buttons say so, and the page shows
  // the commands that work instead, rather than asking for a key that cannot exist.
  function renderControl(name) {
    const off = state.server !== null && state.server.control === false;
    $("d-control").hidden = !off;
    if (!off) return;
    const commands = state.server.commands || {};
    const command = (action) => String(commands[action] || `labkit ${action} --session NAME`).replace("NAME", name);
    $("d-control-stop").textContent = command("stop");
    $("d-control-estop").textContent = command("emergency-stop");
    for (const [id, action] of [["btn-stop", "stop"], ["btn-estop", "emergency-stop"]]) {
      $(id).disabled = true;
      $(id).title = `Control over HTTP is off on this server (no serve.api_keys): run ${command(action)}`;
    }
  }

  // The fills of a line, in the order they happened: at the open, then on the bar's range.
  const lineFills = (line) => [line.fill, line.exit_fill].filter(Boolean);

  // The cost of the open position (fees included) from the fills held, or null when its entry is
  // older than the lines the page holds.
  function entryCost(decisions) {
    let cost = null;
    for (const line of decisions) {
      const fills = lineFills(line);
      let before = Number(line.position);
      for (const f of fills) before += f.side === "BUY" ? -Number(f.units) : Number(f.units);
      for (const f of fills) {
        const flow = Number(f.cash_flow);
        if (f.side === "BUY") {
          cost = before <= 1e-12 ? -flow : cost === null ? null : cost - flow;
          before += Number(f.units);
        } else {
          const after = before - Number(f.units);
          cost = after <= 1e-12 ? 0 : cost === null ? null : cost * (after / before);
          before = after;
        }
      }
      if (Number(line.position) <= 1e-12) cost = 0;
    }
    return cost;
  }

  // A book over a universe: its symbols, in decision order (none for one symbol).
  function bookSymbols(s) {
    return Array.isArray(s.symbols) && s.symbols.length > 1 ? s.symbols : null;
  }

  function renderUnrealised(d, s) {
    const el = $("d-unrealised");
    const last = d.decisions.length ? d.decisions[d.decisions.length - 1] : null;
    el.title = "";
    const book = bookSymbols(s);
    if (book) {
      // A book's lines carry one symbol's position each: say what it holds instead.
      const held = Object.entries(s.positions || {}).filter(([, units]) => Number(units) > 0).map(([sym]) => sym);
      el.textContent = held.length ? `holding ${held.join(", ")}` : "flat";
      el.dataset.value = "";
      el.title = `a book over ${book.length} symbols; labkit status --session ${s.session} shows each position`;
      return;
    }
    if (!last || !(Number(last.position) > 0)) {
      el.textContent = last ? "flat" : "–";
      el.dataset.value = last ? "0" : "";
      return;
    }
    const cost = entryCost(d.decisions);
    if (cost === null) {
      el.textContent = "–";
      el.dataset.value = "";
      el.title = "The entry is older than the decisions this page holds";
      return;
    }
    const value = Number(last.equity) - Number(last.cash) - cost;
    el.textContent = `${value >= 0 ? "+" : "\u2212"}${fmtNumber(Math.abs(value), 2)}`;
    if (s.quote) appendUnit(el, s.quote);
    appendUnit(el, cost > 0 ? `${value >= 0 ? "+" : "\u2212"}${fmtNumber(Math.abs(value / cost) * 100, 2)} %` : "");
    el.dataset.value = String(value);
    el.dataset.tone = value >= 0 ? "gain" : "loss";
    el.title = `at the last close ${fmtNumber(last.price, 2)}, against an entry cost of ${fmtNumber(cost, 2)} (fees included)`;
  }

  // The close of each decision held, and a marker at each fill: where and at what price it filled.
  function renderPrice(d, s) {
    // A book's chart follows its first symbol: the lines of the others are other markets' prices.
    const book = bookSymbols(s);
    const lines = d.decisions.filter(
      (l) => Number.isFinite(Number(l.price)) && l.price !== null && (!book || l.symbol === book[0])
    );
    const has = lines.length > 1;
    $("chart-price").hidden = !has;
    $("price-empty").hidden = has;
    if (!has) {
      $("price-readout").textContent = "";
      return;
    }
    const times = lines.map((l) => parseTime(l.ts));
    const values = lines.map((l) => Number(l.price));
    const markers = [];
    for (const line of lines) for (const f of lineFills(line)) markers.push({ t: parseTime(line.ts), price: Number(f.price), side: f.side, seq: line.seq });
    drawChart($("chart-price"), {
      times,
      values,
      kind: "price",
      markers,
      noArea: true,
      format: (v, step) => fmtNumber(v, Math.min(2, stepDigits(step))),
      readout: (i) => `${book ? book[0] + " " : ""}close ${fmtMoney(values[i], s.quote)} at ${fmtWhen(times[i])} (#${lines[i].seq}); ${markers.length} ${markers.length === 1 ? "fill" : "fills"} over the last ${lines.length} bars`,
      readoutEl: $("price-readout"),
    });
  }

  function logText(entry) {
    const when = entry.ts ? `${fmtUtc(entry.ts, false)} ` : "";
    const level = entry.level ? `${String(entry.level).toUpperCase().padEnd(7)} ` : "";
    return `${when}${level}${entry.message === undefined ? JSON.stringify(entry) : entry.message}`;
  }

  function renderLog(d) {
    const lines = d.log || [];
    const pre = $("log-tail");
    pre.hidden = lines.length === 0;
    $("log-empty").hidden = lines.length > 0;
    $("log-empty").textContent = d.logError ? `The session log could not be read (${d.logError}).` : "Nothing logged yet.";
    $("log-scope").textContent = lines.length ? `The last ${lines.length} lines of logs/session.jsonl, redacted; times UTC.` : "";
    const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
    pre.textContent = lines.map(logText).join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight; // follow the tail unless the reader scrolled up
  }

  function setMoney(el, value, quote) {
    el.textContent = fmtNumber(value, 2);
    if (quote && value !== null && value !== undefined) appendUnit(el, quote);
  }

  function appendUnit(el, unit) {
    const span = document.createElement("span");
    span.className = "unit";
    span.textContent = unit;
    el.append(span);
  }

  // ---------------------------------------------------------------- charts (inline SVG)

  const chartState = new Map(); // svg id -> what was drawn, for the pointer readout

  function renderCharts(d, s) {
    const curve = d.equity;
    const has = curve && curve.times.length > 0;
    const quote = (curve && curve.quote) || s.quote;
    for (const [id, emptyId] of [["chart-equity", "equity-empty"], ["chart-drawdown", "drawdown-empty"]]) {
      $(id).hidden = !has;
      $(emptyId).hidden = has;
      if (!has) $(emptyId).textContent = d.equityError ? `The equity curve could not be read (${d.equityError}).` : $(emptyId).textContent;
    }
    if (!has) {
      $("equity-readout").textContent = "";
      $("drawdown-readout").textContent = "";
      return;
    }
    drawChart($("chart-equity"), {
      times: curve.times,
      values: curve.equity,
      kind: "equity",
      format: (v, step) => fmtNumber(v, Math.min(2, stepDigits(step))),
      readout: (i) => `${fmtMoney(curve.equity[i], quote)} at ${fmtWhen(curve.times[i])}`,
      readoutEl: $("equity-readout"),
    });
    drawChart($("chart-drawdown"), {
      times: curve.times,
      values: curve.drawdown.map((v) => -v),
      kind: "drawdown",
      format: (v, step) => `${fmtNumber(v * 100, Math.min(3, stepDigits(step * 100))).replace("-", "\u2212")} %`,
      readout: (i) => `${fmtPct(curve.drawdown[i])} below the peak at ${fmtWhen(curve.times[i])}`,
      readoutEl: $("drawdown-readout"),
      ceilingZero: true,
    });
  }

  // The decimals a tick step needs to be written exactly (0.25 needs 2, 50 needs 0).
  function stepDigits(step) {
    for (let d = 0; d < 8; d += 1) {
      const scaled = step * 10 ** d;
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
    }
    return 8;
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) {
      const pad = Math.abs(lo) * 0.001 || 1;
      lo -= pad;
      hi += pad;
    }
    const raw = (hi - lo) / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
    const start = Math.floor(lo / step) * step;
    const end = Math.ceil(hi / step) * step;
    const decimals = Math.max(0, 2 - Math.floor(Math.log10(step)));
    const ticks = [];
    for (let i = 0; start + i * step <= end + step / 2; i += 1) ticks.push(Number((start + i * step).toFixed(decimals)));
    return { lo: start, hi: end, ticks };
  }

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function drawChart(svg, opts) {
    const width = Math.max(240, Math.round(svg.getBoundingClientRect().width || svg.parentNode.clientWidth || 600));
    const height = Math.round(svg.getBoundingClientRect().height || 220);
    const { times, values } = opts;
    const marked = (opts.markers || []).map((mk) => mk.price);
    let lo = Math.min(...values, ...marked);
    let hi = Math.max(...values, ...marked);
    if (opts.ceilingZero) {
      hi = 0;
      lo = Math.min(lo, -0.01); // a flat 0 % still gets an axis down to -1 %
    }
    const rows = height < 200 ? 3 : 4;
    const y = niceTicks(lo, hi, rows);
    if (opts.ceilingZero) y.hi = 0;
    const step = y.ticks.length > 1 ? y.ticks[1] - y.ticks[0] : 1;
    const format = (v) => opts.format(v, step);
    const labels = y.ticks.filter((v) => v >= y.lo && v <= y.hi).map(format);
    const left = Math.max(...labels.map((l) => l.length)) * 6.6 + 12;
    const m = { left, right: 10, top: 8, bottom: 24 };
    const w = width - m.left - m.right;
    const h = height - m.top - m.bottom;
    const t0 = times[0];
    const t1 = times[times.length - 1];
    const sx = (t) => m.left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * w : w);
    const sy = (v) => m.top + (1 - (v - y.lo) / (y.hi - y.lo || 1)) * h;

    const nodes = [];
    y.ticks.forEach((v) => {
      if (v < y.lo || v > y.hi) return;
      const py = sy(v).toFixed(1);
      nodes.push(svgEl("line", { class: v === 0 && opts.ceilingZero ? "zero" : "gridline", x1: m.left, x2: width - m.right, y1: py, y2: py }));
      nodes.push(svgEl("text", { class: "tick", x: m.left - 8, y: py, "text-anchor": "end", "dominant-baseline": "middle" }, format(v)));
    });
    const sameDay = fmtUtc(t0).slice(0, 10) === fmtUtc(t1).slice(0, 10);
    const xLabel = (t) => (sameDay ? fmtUtc(t, false) : fmtUtc(t).slice(5, 16));
    const xTicks = w > 420 ? [t0, t0 + (t1 - t0) / 2, t1] : [t0, t1];
    xTicks.forEach((t, i) => {
      const anchor = i === 0 ? "start" : i === xTicks.length - 1 ? "end" : "middle";
      nodes.push(svgEl("text", { class: "tick", x: sx(t).toFixed(1), y: height - 6, "text-anchor": anchor }, xLabel(t)));
    });

    let path = "";
    for (let i = 0; i < values.length; i += 1) path += `${i ? "L" : "M"}${sx(times[i]).toFixed(1)},${sy(values[i]).toFixed(1)}`;
    const base = opts.ceilingZero ? sy(0) : m.top + h;
    const area = `${path}L${sx(t1).toFixed(1)},${base.toFixed(1)}L${sx(t0).toFixed(1)},${base.toFixed(1)}Z`;
    if (!opts.noArea) nodes.push(svgEl("path", { class: `area-${opts.kind}`, d: area }));
    nodes.push(svgEl("path", { class: `line line-${opts.kind}`, d: path }));
    for (const mk of opts.markers || []) {
      // An upward triangle below a buy, a downward one above a sell, its tip at the fill price.
      const px = sx(mk.t);
      const py = sy(mk.price);
      const dir = mk.side === "BUY" ? 1 : -1;
      const pts = [[px, py], [px - 6, py + dir * 10], [px + 6, py + dir * 10]].map((p) => p.map((v) => v.toFixed(1)).join(",")).join(" ");
      const mark = svgEl("polygon", { class: `mark mark-${mk.side === "BUY" ? "buy" : "sell"}`, points: pts, "data-seq": mk.seq });
      mark.append(svgEl("title", {}, `${mk.side} filled at ${fmtNumber(mk.price, 2)}, ${fmtWhen(mk.t)} (#${mk.seq})`));
      nodes.push(mark);
    }
    const guide = svgEl("line", { class: "guide", y1: m.top, y2: m.top + h, x1: -10, x2: -10 });
    const dot = svgEl("circle", { class: `dot-${opts.kind}`, r: 4, cx: -10, cy: -10 });
    nodes.push(guide, dot);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren(...nodes);

    const drawn = { opts, sx, sy, guide, dot, hover: null };
    const previous = chartState.get(svg.id);
    chartState.set(svg.id, drawn);
    if (!svg.dataset.bound) {
      svg.dataset.bound = "1";
      svg.addEventListener("pointermove", (e) => hoverChart(svg, e));
      svg.addEventListener("pointerleave", () => hoverChart(svg, null));
    }
    // Keep a hovered point where the pointer is while the curve grows under it.
    if (previous && previous.hover !== null) hoverChart(svg, { clientX: previous.hover });
    else showPoint(drawn, values.length - 1, false);
  }

  function hoverChart(svg, event) {
    const drawn = chartState.get(svg.id);
    if (!drawn) return;
    const { times } = drawn.opts;
    if (event === null) {
      drawn.hover = null;
      showPoint(drawn, times.length - 1, false);
      return;
    }
    drawn.hover = event.clientX;
    const box = svg.getBoundingClientRect();
    const x = event.clientX - box.left;
    let best = 0;
    let bestDist = Infinity;
    for (let i = 0; i < times.length; i += 1) {
      const dist = Math.abs(drawn.sx(times[i]) - x);
      if (dist < bestDist) {
        best = i;
        bestDist = dist;
      }
    }
    showPoint(drawn, best, true);
  }

  function showPoint(drawn, i, guide) {
    const { opts, sx, sy } = drawn;
    if (i < 0) return;
    const px = sx(opts.times[i]).toFixed(1);
    drawn.dot.setAttribute("cx", px);
    drawn.dot.setAttribute("cy", sy(opts.values[i]).toFixed(1));
    drawn.guide.setAttribute("x1", guide ? px : -10);
    drawn.guide.setAttribute("x2", guide ? px : -10);
    opts.readoutEl.textContent = (guide ? "" : "latest ") + opts.readout(i);
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.detail && currentSession()) renderPrice(state.detail, currentSession());
      if (state.detail && state.detail.equity && currentSession()) renderCharts(state.detail, currentSession());
    }, 120);
  });

  // ---------------------------------------------------------------- block reasons and decisions

  function renderBlocks(d) {
    const counts = new Map();
    for (const line of d.decisions) {
      const trace = line.gate_trace || {};
      if (!trace.stage || trace.stage === "passed") continue;
      const reason = trace.reason || line.rejection_reason || "(no reason)";
      const key = `${trace.stage}\u0000${reason}`;
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
    const n = d.decisions.length;
    $("blocks-scope").textContent = n ? `Over the last ${fmtNumber(n, 0)} ${n === 1 ? "decision" : "decisions"}.` : "";
    const list = $("blocks");
    const empty = $("blocks-empty");
    empty.hidden = top.length > 0;
    empty.textContent = n ? "Nothing blocked: every proposal passed the gates." : "No decisions yet.";
    list.replaceChildren(
      ...top.map(([key, count]) => {
        const [stage, reason] = key.split("\u0000");
        const li = document.createElement("li");
        li.className = "block-row";
        const name = document.createElement("span");
        name.className = "block-name";
        const code = document.createElement("code");
        code.textContent = reason;
        const st = document.createElement("span");
        st.className = "block-stage";
        st.textContent = stage;
        name.append(code, st);
        const c = document.createElement("span");
        c.className = "block-count";
        c.textContent = `${fmtNumber(count, 0)} (${fmtNumber((count / n) * 100, 0)} %)`;
        const bar = document.createElement("span");
        bar.className = "block-bar";
        bar.setAttribute("aria-hidden", "true");
        const fill = document.createElement("span");
        fill.style.width = `${Math.max(1, (count / n) * 100)}%`; // the share of the decisions counted
        bar.append(fill);
        li.append(name, c, bar);
        return li;
      }),
    );
  }

  function fillText(fill) {
    let text = `${fill.side} ${fmtUnits(fill.units)} @ ${fmtNumber(fill.price, 2)}`;
    if (fill.pnl !== null && fill.pnl !== undefined) text += `, P&L ${fill.pnl >= 0 ? "+" : "\u2212"}${fmtNumber(Math.abs(fill.pnl), 2)}`;
    if (fill.reason && fill.reason !== "signal") text += ` (${fill.reason})`;
    return text;
  }

  // An order decided at a bar's close fills at the next bar's open, and the journal writes the fill
  // on that next bar's line. A trader reads a fill beside the decision that ordered it, so each fill
  // goes to the row of its order_seq; an exit the engine enforced on a bar's range is that bar's own.
  function fillsByOrder(decisions) {
    const held = new Set(decisions.map((l) => l.seq));
    const byRow = new Map();
    for (const line of decisions) {
      for (const fill of lineFills(line)) {
        const order = Number.isInteger(fill.order_seq) && held.has(fill.order_seq) ? fill.order_seq : line.seq;
        let when;
        if (fill.order_seq === line.seq) when = "filled on this bar";
        else if (order === line.seq) when = `filled at this open (order #${fill.order_seq ?? "?"})`;
        else when = `filled at the next open, ${fmtUtc(line.ts, false)} (#${line.seq})`;
        if (!byRow.has(order)) byRow.set(order, []);
        byRow.get(order).push({ fill, when });
      }
    }
    return byRow;
  }

  function fillNodes(fills, line, newest) {
    if (!fills.length) {
      const ordered = ["BUY", "SELL"].includes(line.action) && (line.gate_trace || {}).stage === "passed" && !(line.gate_trace || {}).reason;
      return ordered && newest ? [mutedText("ordered: fills at the next open")] : [];
    }
    const nodes = [];
    fills.forEach(({ fill, when }, i) => {
      const main = document.createElement("span");
      main.className = `fill-main side-${fill.side}`;
      main.textContent = fillText(fill);
      if (i) nodes.push(document.createElement("br"));
      nodes.push(main, document.createElement("br"), mutedText(when));
    });
    return nodes;
  }

  function mutedText(text) {
    const span = document.createElement("span");
    span.className = "fill-when";
    span.textContent = text;
    return span;
  }

  // The gate trace in one cell: "passed", or the stage and reason code, with the numbers below.
  function gateNodes(trace) {
    const stage = document.createElement("span");
    stage.className = "stage";
    stage.dataset.passed = String(trace.stage === "passed");
    stage.textContent = trace.stage || "–";
    const nodes = [stage];
    if (trace.reason) {
      const code = document.createElement("code");
      code.className = "reason";
      code.textContent = trace.reason;
      nodes.push(" ", code);
    }
    const detail = detailNodes(trace.detail);
    if (detail.length) {
      const box = document.createElement("span");
      box.className = "gate-detail";
      box.append(...detail);
      nodes.push(box);
    }
    return nodes;
  }

  // The numbers behind a verdict, one unbreakable key=value each, so a line wraps between pairs.
  function detailNodes(detail) {
    if (!detail || typeof detail !== "object") return [];
    const nodes = [];
    Object.entries(detail).forEach(([k, v], i) => {
      if (i) nodes.push(", ");
      const pair = document.createElement("span");
      pair.className = "pair";
      pair.textContent = `${k}=${fmtDetailValue(v)}`;
      nodes.push(pair);
    });
    return nodes;
  }

  function renderDecisions(d) {
    const shown = d.decisions.slice(-(narrow.matches ? DECISIONS_SHOWN_NARROW : DECISIONS_SHOWN)).reverse();
    const total = d.total !== null && d.total !== undefined ? d.total : currentSession() ? currentSession().decisions : null;
    $("decisions-empty").hidden = shown.length > 0 || Boolean(d.decisionsError);
    $("decisions").hidden = shown.length === 0;
    $("decisions-scope").textContent = d.decisionsError
      ? `The journal could not be read (${d.decisionsError}).`
      : shown.length
        ? `Newest first; ${fmtNumber(shown.length, 0)} of ${fmtNumber(total === null ? d.lastSeq + 1 : total, 0)}.`
        : "";
    const fills = fillsByOrder(d.decisions);
    const newestSeq = d.decisions.length ? d.decisions[d.decisions.length - 1].seq : null;
    const rows = shown.map((line) => {
      const tr = document.createElement("tr");
      tr.dataset.seq = line.seq;
      if (d.fresh && d.fresh.has(line.seq)) tr.className = "is-new";
      const trace = line.gate_trace || {};
      const side = (word) => {
        const span = document.createElement("span");
        span.className = `side-${word}`;
        span.textContent = word || "–";
        return span;
      };
      const fill = fillNodes(fills.get(line.seq) || [], line, line.seq === newestSeq);
      const conf = line.confidence === null || line.confidence === undefined ? null : fmtNumber(line.confidence, 2);
      const ts = document.createElement("span");
      const when = fmtUtc(line.ts);
      const date = document.createElement("span");
      date.className = "ts-date";
      date.textContent = `${when.slice(0, 10)} `;
      ts.append(date, when.slice(11));
      if (line.symbol && bookSymbols(currentSession() || {})) {
        // A book's line is one symbol's decision at the bar: say whose.
        const sym = document.createElement("span");
        sym.className = "ts-symbol";
        sym.textContent = ` ${line.symbol}`;
        ts.append(sym);
      }
      const cells = [
        [`#${line.seq}`, "Seq", "num card-title c-seq"],
        [ts, "Bar (UTC)", "c-ts"],
        [side(line.proposed), "Proposed", "c-prop"],
        [side(line.action), "Action", "c-act"],
        [conf || "–", "Confidence", conf ? "num c-conf" : "num c-conf empty-cell"],
        [gateNodes(trace), "Gate", trace.stage === "passed" && !trace.reason ? "c-gate is-passed" : "c-gate"],
        [fill.length ? fill : "–", "Fill", fill.length ? "c-fill" : "c-fill empty-cell"],
        [fmtUnits(line.position), "Position", "num c-pos"],
        [fmtNumber(line.equity, 2), "Equity", "num c-eq"],
      ];
      rowOf(tr, cells);
      return tr;
    });
    $("decisions-body").replaceChildren(...rows);
  }

  // ---------------------------------------------------------------- reports

  async function refreshReports(force) {
    if (!force && Date.now() - state.reportsAt < REPORTS_EVERY_MS) {
      renderReports();
      return;
    }
    state.reportsAt = Date.now();
    try {
      const raw = await getJSON("/api/reports");
      const items = Array.isArray(raw) ? raw : first(raw, "reports", "items", "entries") || [];
      state.reports = { items, indexUrl: Array.isArray(raw) ? null : first(raw, "index", "index_url"), error: null };
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      state.reports = { items: [], indexUrl: null, error: `${err.status}${err.message ? `: ${err.message}` : ""}` };
    }
    renderReports();
  }

  // A readiness verdict in words and colour; an AUC or a PBO is a figure to read, not a pass.
  const OUTCOME_TONES = { READY: "ok", ok: "ok", "NOT READY": "warn", failed: "bad", empty: "idle" };

  function renderReports() {
    const index = $("reports-index");
    index.hidden = !(state.reports && state.reports.indexUrl);
    if (!index.hidden) index.href = state.reports.indexUrl;
    $("reports-all").hidden = index.hidden;
    if (!index.hidden) $("reports-all").href = state.reports.indexUrl;
    const d = state.detail;
    if (!d || state.reports === null) return;
    const mine = state.reports.items.filter((r) => first(r, "session", "name") === d.name);
    const empty = $("reports-empty");
    empty.hidden = mine.length > 0;
    empty.textContent = state.reports.error
      ? `The reports index could not be read (${state.reports.error}).`
      : `No reports for this session yet: labkit report session --session ${d.name} makes one.`;
    $("reports").replaceChildren(
      ...mine.slice(0, 12).map((r) => {
        const li = document.createElement("li");
        const href = first(r, "url", "href", "link", "path");
        const label = [first(r, "kind"), first(r, "period")].filter(Boolean).join(" ") || first(r, "html", "title") || "report";
        const a = document.createElement(href ? "a" : "span");
        if (href) a.href = href;
        a.textContent = label;
        const meta = document.createElement("span");
        meta.className = "report-meta";
        const outcome = first(r, "outcome", "status");
        const generated = first(r, "generated_at");
        if (outcome) {
          const badge = document.createElement("span");
          badge.className = "badge badge-small";
          badge.textContent = String(outcome);
          badge.dataset.tone = OUTCOME_TONES[outcome] || (r.ok === false ? "bad" : "idle");
          meta.append(badge, " ");
        }
        if (generated) meta.append(`${fmtUtc(generated)} UTC`);
        li.append(a, meta);
        return li;
      }),
    );
  }

  // ---------------------------------------------------------------- stop and emergency stop

  const ACTIONS = {
    stop: {
      path: "stop",
      title: (n) => `Stop ${n}?`,
      text: "The session finishes its current bar and exits. Its position stays as it is; start it again with labkit run.",
      button: "Stop the session",
      done: "Stop",
    },
    "emergency-stop": {
      path: "emergency-stop",
      title: (n) => `Emergency stop ${n}?`,
      text: "The session refuses every entry and flattens its position at the next open. It stays halted, across restarts, until labkit resume.",
      button: "Emergency stop",
      done: "Emergency stop",
    },
  };

  function openConfirm(action) {
    const name = state.selected;
    if (!name || (state.server && state.server.control === false)) return;
    const spec = ACTIONS[action];
    state.pending = { action, name };
    $("confirm-title").textContent = spec.title(name);
    $("confirm-text").textContent = spec.text;
    $("confirm-ok").textContent = spec.button;
    $("confirm-ok").className = action === "stop" ? "btn btn-primary" : "btn btn-danger";
    $("confirm-ok").disabled = false;
    $("confirm-result").hidden = true;
    const input = $("api-key");
    input.value = state.key || "";
    const dialog = $("confirm");
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    input.focus();
    input.select();
  }

  function closeConfirm() {
    const dialog = $("confirm");
    $("api-key").value = "";
    state.pending = null;
    if (dialog.open) dialog.close();
  }

  function showResult(text, tone) {
    const el = $("confirm-result");
    el.hidden = false;
    el.dataset.tone = tone || "";
    el.textContent = text;
  }

  function explainRefusal(err) {
    if (!(err instanceof HttpError)) {
      return "The server did not answer: the command may not have been sent. Check with labkit status before trying again.";
    }
    const server = err.message ? ` The server said: ${err.message}` : "";
    switch (err.status) {
      case 401:
        return "The key was refused (401): it is missing or not one of serve.api_keys.";
      case 403:
        return "Commands are off on this server (403): no API key is configured. Add serve.api_keys to labkit.yaml (as ${VAR}) and restart labkit serve.";
      case 429: {
        const wait = Number(err.retryAfter);
        return `Too many requests (429): wait ${Number.isFinite(wait) && wait > 0 ? `${wait} s` : "a moment"} before trying again.`;
      }
      case 404:
        return `There is no such session on this server (404).${server}`;
      default:
        return `The server refused the command (${err.status}).${server}`;
    }
  }

  async function sendCommand(event) {
    event.preventDefault();
    const pending = state.pending;
    if (!pending) return;
    const key = $("api-key").value.trim();
    if (!key) {
      showResult("Type the API key first.");
      $("api-key").focus();
      return;
    }
    const spec = ACTIONS[pending.action];
    $("confirm-ok").disabled = true;
    showResult(`Sending ${spec.done.toLowerCase()}… a running session confirms between bars.`, "info");
    try {
      const body = await request(
        `/api/sessions/${enc(pending.name)}/${spec.path}`,
        { method: "POST", headers: { Authorization: `Bearer ${key}` } },
        COMMAND_TIMEOUT_MS,
      );
      state.key = key;
      const answer = first(body, "result", "message", "detail", "status");
      closeConfirm();
      notice(`${spec.done} of ${pending.name}: ${answer === null ? "accepted" : typeof answer === "string" ? answer : JSON.stringify(answer)} (${fmtUtc(Date.now(), false)} UTC).`, "ok");
      schedule(0);
    } catch (err) {
      if (err instanceof HttpError && err.status === 401) state.key = null;
      showResult(explainRefusal(err));
      $("confirm-ok").disabled = false;
      $("api-key").focus();
    }
  }

  function notice(text, tone) {
    const el = $("d-notice");
    el.hidden = false;
    el.dataset.tone = tone;
    el.textContent = text;
  }

  $("btn-stop").addEventListener("click", () => openConfirm("stop"));
  $("btn-estop").addEventListener("click", () => openConfirm("emergency-stop"));
  $("confirm-form").addEventListener("submit", sendCommand);
  $("confirm-cancel").addEventListener("click", closeConfirm);
  $("confirm").addEventListener("close", () => {
    $("api-key").value = "";
    state.pending = null;
  });
  $("banner-retry").addEventListener("click", () => schedule(0));

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.failures === 0) schedule(0);
  });

  // Ages and the banner's countdown move every second, between polls and while the server is down.
  setInterval(() => {
    if (state.downSince !== null) renderBanner();
    for (const s of state.sessions || []) {
      const row = document.querySelector(`tr[data-session="${CSS.escape(s.name)}"] .beat-age`);
      if (row) row.textContent = ageText(s);
    }
    const s = currentSession();
    if (s && !$("detail").hidden) $("d-beat").textContent = ageText(s);
  }, 1000);

  poll();
})();
