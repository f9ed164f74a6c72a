// domo dashboard: a small hand-written single-page app. It reads the JSON
// API under api/ and the live stream api/events; it loads nothing from
// elsewhere. Routes live in the URL fragment, so the pages work under any
// mount point.
"use strict";
(() => {
  // ---------- helpers ----------
  const $ = (sel, el = document) => el.querySelector(sel);
  const $$ = (sel, el = document) => Array.from(el.querySelectorAll(sel));
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const SVGNS = "http://www.w3.org/2000/svg";

  async function api(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = new Error((body && body.error) || r.statusText);
      e.status = r.status;
      e.journalOff = !!(body && body.journal === false);
      throw e;
    }
    return body;
  }

  const nf = new Intl.NumberFormat();
  function fmtNum(n) {
    if (n == null || isNaN(n)) return "–";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(n >= 1e5 ? 0 : 1) + "k";
    return nf.format(Math.round(n));
  }
  function fmtRate(r) {
    if (r == null || isNaN(r)) return "–";
    if (r === 0) return "0";
    if (r < 10) return r.toFixed(1);
    return fmtNum(r);
  }
  function fmtMs(ms) {
    if (ms == null || isNaN(ms)) return "–";
    if (ms === 0) return "0 ms";
    if (ms < 0.01) return "<0.01 ms";
    if (ms < 1) return ms.toFixed(2) + " ms";
    if (ms < 100) return ms.toFixed(1) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
    return (ms / 60000).toFixed(1) + " min";
  }
  function fmtPct(x) {
    if (x == null || isNaN(x)) return "–";
    if (x === 0) return "0%";
    if (x < 0.001) return "<0.1%";
    return (x * 100).toFixed(x < 0.1 ? 1 : 0) + "%";
  }
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function fmtClock(t, withMs) {
    const d = new Date(t);
    const s = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    return withMs ? s + "." + pad(d.getMilliseconds(), 3) : s;
  }
  function fmtWhen(t) {
    const d = new Date(t);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    return (sameDay ? "" : d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " ") + fmtClock(t, true);
  }
  function fmtDuration(secs) {
    if (secs == null) return "–";
    secs = Math.floor(secs);
    const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600), m = Math.floor(secs % 3600 / 60), s = secs % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  const shortID = (s) => (s && s.length > 12 ? s.slice(0, 12) + "…" : s || "");
  const badge = (status) => `<span class="badge ${esc(status)}">${esc(status === "in_progress" ? "in progress" : status)}</span>`;
  function throttle(fn, ms) {
    let last = 0, timer = null;
    return (...args) => {
      const now = Date.now();
      if (now - last >= ms) { last = now; fn(...args); return; }
      if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, ms - (now - last));
    };
  }
  function qs(obj) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(obj)) if (v != null && v !== "") p.set(k, v);
    const s = p.toString();
    return s ? "?" + s : "";
  }

  // ---------- charts (SVG, no library) ----------
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }
  // chart draws series over times into box. opts: {series: [{name, color,
  // values}], times, kind: "line"|"bar" (bars stack), fmt, empty}.
  function chart(box, opts) {
    box.innerHTML = "";
    const W = Math.max(box.clientWidth, 200), H = Math.max(box.clientHeight, 120);
    const L = 46, R = 8, T = 10, B = 22;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" }, box);
    const n = opts.times.length;
    let maxV = 0;
    for (let i = 0; i < n; i++) {
      if (opts.kind === "bar") {
        let s = 0;
        for (const se of opts.series) s += se.values[i] || 0;
        maxV = Math.max(maxV, s);
      } else {
        for (const se of opts.series) maxV = Math.max(maxV, se.values[i] || 0);
      }
    }
    const top = niceMax(maxV);
    const x = (i) => L + (n <= 1 ? 0 : (i / (n - 1)) * (W - L - R));
    const y = (v) => T + (H - T - B) * (1 - v / top);
    for (let k = 0; k <= 4; k++) {
      const v = (top * k) / 4, yy = y(v);
      el("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "gridline" }, svg);
      const t = el("text", { x: L - 8, y: yy + 3.5, "text-anchor": "end", class: "axis" }, svg);
      t.textContent = opts.fmt ? opts.fmt(v, true) : fmtNum(v);
    }
    if (n > 1) {
      const ticks = Math.min(5, n);
      for (let k = 0; k < ticks; k++) {
        const i = Math.round((k * (n - 1)) / (ticks - 1));
        const t = el("text", { x: x(i), y: H - 5, "text-anchor": k === 0 ? "start" : k === ticks - 1 ? "end" : "middle", class: "axis" }, svg);
        const span = new Date(opts.times[n - 1]) - new Date(opts.times[0]);
        t.textContent = span < 600000 ? fmtClock(opts.times[i]) : fmtClock(opts.times[i]).slice(0, 5);
      }
    }
    if (opts.kind === "bar") {
      const bw = Math.max(1, ((W - L - R) / Math.max(n, 1)) * 0.72);
      const xb = (i) => L + ((i + 0.5) / n) * (W - L - R);
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (const se of opts.series) {
          const v = se.values[i] || 0;
          if (v <= 0) continue;
          const y0 = y(acc), y1 = y(acc + v);
          el("rect", { x: xb(i) - bw / 2, y: y1, width: bw, height: Math.max(0.5, y0 - y1), fill: se.color, rx: Math.min(2, bw / 3) }, svg);
          acc += v;
        }
      }
    } else {
      opts.series.forEach((se, si) => {
        if (n === 0) return;
        let d = "";
        for (let i = 0; i < n; i++) d += (i ? "L" : "M") + x(i).toFixed(1) + " " + y(se.values[i] || 0).toFixed(1);
        if (si === 0) {
          el("path", { d: d + `L${x(n - 1).toFixed(1)} ${y(0)}L${x(0).toFixed(1)} ${y(0)}Z`, fill: se.color, "fill-opacity": "0.08" }, svg);
        }
        el("path", { d, fill: "none", stroke: se.color, "stroke-width": "1.8", "stroke-linejoin": "round", "stroke-linecap": "round" }, svg);
      });
    }
    if (opts.empty && maxV === 0) {
      const t = el("text", { x: (L + W - R) / 2, y: (T + H - B) / 2, "text-anchor": "middle", class: "axis" }, svg);
      t.textContent = opts.empty;
    }
    // hover
    const cursor = el("line", { y1: T, y2: H - B, stroke: "#9aa1b5", "stroke-dasharray": "3 3", visibility: "hidden" }, svg);
    const tip = document.createElement("div");
    tip.className = "tip hidden";
    box.appendChild(tip);
    const hit = el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "transparent" }, svg);
    hit.addEventListener("mousemove", (ev) => {
      if (n === 0) return;
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W;
      const i = opts.kind === "bar"
        ? Math.min(n - 1, Math.max(0, Math.floor(((px - L) / (W - L - R)) * n)))
        : Math.min(n - 1, Math.max(0, Math.round(((px - L) / (W - L - R)) * (n - 1))));
      const cx = opts.kind === "bar" ? L + ((i + 0.5) / n) * (W - L - R) : x(i);
      cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx); cursor.setAttribute("visibility", "visible");
      tip.innerHTML = `<b>${esc(fmtClock(opts.times[i]))}</b>` + opts.series.map((se) =>
        `<br><span>${esc(se.name)}: ${esc(opts.fmt ? opts.fmt(se.values[i] || 0) : fmtNum(se.values[i] || 0))}</span>`).join("");
      tip.classList.remove("hidden");
      tip.style.left = (cx / W) * r.width + "px";
      tip.style.top = "20px";
    });
    hit.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); tip.classList.add("hidden"); });
  }

  // ---------- app state, live stream ----------
  const state = { health: null, latest: "", page: null, services: null, servicesAt: 0 };

  function setLive(on, text) {
    const l = $("#live");
    l.classList.toggle("on", on);
    l.classList.toggle("off", !on);
    $("#live-text").textContent = text;
  }

  function connect() {
    if (!window.EventSource) { setLive(false, "No live updates"); return; }
    const es = new EventSource("api/events");
    es.addEventListener("open", () => setLive(true, "Live"));
    es.addEventListener("error", () => setLive(false, "Reconnecting…"));
    es.addEventListener("tick", (ev) => {
      let t;
      try { t = JSON.parse(ev.data); } catch (_) { return; }
      setLive(true, "Live");
      onTick(t);
    });
  }

  function onTick(t) {
    state.health = t.health;
    const h = t.health;
    $("#title").textContent = h.title || "";
    document.title = (h.title ? h.title + " · " : "") + "domo dashboard";
    $("#uptime").textContent = h.up ? "up " + fmtDuration(h.uptime_s) : "";
    const banner = $("#banner");
    if (!h.up) {
      banner.textContent = "The broker does not answer: " + (h.error || "unknown error");
      banner.classList.remove("hidden");
    } else if (h.draining) {
      banner.textContent = "The broker is draining: it takes no new requests.";
      banner.classList.remove("hidden");
    } else {
      banner.classList.add("hidden");
    }
    const changed = t.latest !== state.latest;
    state.latest = t.latest || "";
    if (state.page && state.page.tick) state.page.tick(t, changed);
  }

  async function servicesList(maxAge = 5000) {
    if (state.services && Date.now() - state.servicesAt < maxAge) return state.services;
    state.services = await api("api/services");
    state.servicesAt = Date.now();
    return state.services;
  }

  // ---------- router ----------
  function route() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    if (state.page && state.page.destroy) state.page.destroy();
    state.page = null;
    const view = $("#view");
    view.innerHTML = "";
    let nav = "overview";
    if (parts[0] === "services") {
      nav = "services";
      state.page = servicesPage(view, parts[1]);
    } else if (parts[0] === "requests" && parts[1]) {
      nav = "requests";
      state.page = detailPage(view, parts[1]);
    } else if (parts[0] === "requests") {
      nav = "requests";
      state.page = requestsPage(view, params);
    } else {
      state.page = overviewPage(view);
    }
    $$(".nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    window.scrollTo(0, 0);
  }

  function setTitle(t) { $("#page-title").textContent = t; }

  function journalOff(view, what) {
    view.insertAdjacentHTML("beforeend", `<div class="panel"><div class="empty" id="journal-off">
      <h2>The journal is off</h2><p>${esc(what)} come from the request journal, and this broker keeps none.
      Start it with a journal (for example <span class="pill">--journal sqlite:journal.db</span>) to see them.</p></div></div>`);
  }

  // ---------- overview ----------
  function overviewPage(view) {
    setTitle("Overview");
    let range = "15m";
    view.innerHTML = `
      <div class="cards" id="cards"></div>
      <div class="toolbar-plain"><div class="seg" id="range">
        ${["15m", "1h", "6h", "24h"].map((r) => `<button data-r="${r}" class="${r === range ? "on" : ""}">${r}</button>`).join("")}
      </div><span class="muted small" id="range-note"></span></div>
      <div class="grid-3">
        <div class="panel"><div class="panel-head"><h2>Throughput</h2><div class="legend"><span><i class="c1"></i>completed</span><span><i class="c4"></i>failed</span><span><i class="c3"></i>dropped</span></div></div>
          <div class="panel-body"><div class="chart" id="ch-rate"></div></div></div>
        <div class="panel"><div class="panel-head"><h2>Latency</h2><div class="legend"><span><i class="c1"></i>p50</span><span><i class="c2"></i>p90</span><span><i class="c3"></i>p99</span></div></div>
          <div class="panel-body"><div class="chart" id="ch-lat"></div></div></div>
        <div class="panel"><div class="panel-head"><h2>Queued and in flight</h2><div class="legend"><span><i class="c1"></i>in flight</span><span><i class="c3"></i>queued</span></div></div>
          <div class="panel-body"><div class="chart" id="ch-queue"></div></div></div>
      </div>
      <div class="grid-2">
        <div class="panel"><div class="panel-head"><h2>Services</h2><a href="#/services">All services →</a></div>
          <div class="panel-body flush"><table id="services-table"><thead><tr><th>Service</th><th class="num">Workers</th><th class="num">Ready</th><th>Load</th><th class="num">In flight</th><th class="num">Queued</th></tr></thead><tbody></tbody></table></div></div>
        <div class="panel"><div class="panel-head"><h2>Recent failures</h2><a href="#/requests?status=failed">All failed →</a></div>
          <div class="panel-body flush" id="failures"></div></div>
      </div>
      <div class="panel hidden" id="peers-panel"><div class="panel-head"><h2>Peer brokers</h2></div>
        <div class="panel-body flush"><table><thead><tr><th>Endpoint</th><th>State</th><th>Services with capacity</th><th class="num">Forwarded</th></tr></thead><tbody id="peers"></tbody></table></div></div>`;

    let live = [];
    let series = null;
    let alive = true;

    const drawCards = () => {
      const h = state.health;
      if (!h) return;
      const lm = h.last_minute;
      const last = live.length ? live[live.length - 1] : null;
      const rate = lm ? lm.rate : last ? last.rate : 0;
      const cards = [
        ["Brokers", fmtNum(h.brokers), h.up ? (h.peers.length ? h.peers.length + " peer" + (h.peers.length > 1 ? "s" : "") + " known" : "no peers") : "not answering", h.up ? "" : "bad"],
        ["Services", fmtNum(h.services), fmtNum(h.counters.requests) + " served", ""],
        ["Workers", `${fmtNum(h.workers)}<small>${fmtNum(h.ready)} ready</small>`, "capacity " + fmtNum(h.capacity), ""],
        ["In flight", fmtNum(h.in_flight), "queued " + fmtNum(h.queued), h.queued > 0 ? "" : ""],
        ["Requests/s", fmtRate(rate), lm ? "last minute" : "live", ""],
        ["Error rate", lm ? fmtPct(lm.error_rate) : "–", lm ? fmtNum(lm.failed + lm.dropped) + " failed, 1 min" : "journal off", lm && lm.error_rate > 0.05 ? "bad" : ""],
        ["Latency p50", lm ? fmtMs(lm.p50_ms) : "–", lm ? "p90 " + fmtMs(lm.p90_ms) : "", ""],
        ["Latency p99", lm ? fmtMs(lm.p99_ms) : "–", lm ? "max " + fmtMs(lm.max_ms) : "", ""],
      ];
      $("#cards", view).innerHTML = cards.map(([l, v, s, c]) =>
        `<div class="card ${c}"><div class="label">${esc(l)}</div><div class="value">${v}</div><div class="sub">${esc(s)}</div></div>`).join("");
      const tb = $("#services-table tbody", view);
      const list = h.service_list || [];
      tb.innerHTML = list.length ? list.map((s) => {
        const load = s.capacity ? s.in_flight / s.capacity : 0;
        return `<tr class="link" data-href="#/services/${encodeURIComponent(s.name)}"><td><b>${esc(s.name)}</b></td>
          <td class="num">${fmtNum(s.workers)}</td><td class="num">${fmtNum(s.ready)}</td>
          <td><div class="meter ${load > 0.8 ? "hot" : ""}"><span data-w="${Math.min(100, load * 100).toFixed(1)}"></span></div></td>
          <td class="num">${fmtNum(s.in_flight)}</td><td class="num">${s.queued ? `<span class="badge warn plain">${fmtNum(s.queued)}</span>` : "0"}</td></tr>`;
      }).join("") : `<tr><td colspan="6" class="empty">No services yet: start a worker.</td></tr>`;
      $$(".meter span", tb).forEach((s) => { s.style.width = s.dataset.w + "%"; });
      const pp = $("#peers-panel", view);
      pp.classList.toggle("hidden", !h.peers.length);
      $("#peers", view).innerHTML = h.peers.map((p) => `<tr><td class="mono">${esc(p.endpoint)}</td>
        <td>${p.alive ? '<span class="badge ok">alive</span>' : '<span class="badge bad">lost</span>'}</td>
        <td>${esc((p.services || []).join(", ") || "–")}</td><td class="num">${fmtNum(p.forwarded)}</td></tr>`).join("");
    };

    const drawQueue = () => {
      chart($("#ch-queue", view), {
        kind: "line", times: live.map((s) => s.time),
        series: [{ name: "in flight", color: "var(--c1)", values: live.map((s) => s.in_flight) },
          { name: "queued", color: "var(--c3)", values: live.map((s) => s.queued) }],
        empty: "waiting for samples",
      });
    };

    const drawSeries = () => {
      const h = state.health;
      if (h && !h.journal) {
        // Without a journal: live counters only.
        chart($("#ch-rate", view), { kind: "line", times: live.map((s) => s.time), fmt: fmtRate,
          series: [{ name: "requests/s", color: "var(--c1)", values: live.map((s) => s.rate) },
            { name: "refused/s", color: "var(--c4)", values: live.map((s) => s.error_rate) }], empty: "waiting for samples" });
        $("#ch-lat", view).innerHTML = '<div class="empty">Latency comes from the journal, which is off.</div>';
        $("#range-note", view).textContent = "live, since this page opened";
        return;
      }
      if (!series) return;
      const pts = series.points, times = pts.map((p) => p.from), step = series.step_s;
      chart($("#ch-rate", view), { kind: "bar", times, fmt: fmtRate, empty: "no requests in this range",
        series: [{ name: "completed", color: "var(--c1)", values: pts.map((p) => p.completed / step) },
          { name: "failed", color: "var(--c4)", values: pts.map((p) => p.failed / step) },
          { name: "dropped", color: "var(--c3)", values: pts.map((p) => p.dropped / step) }] });
      chart($("#ch-lat", view), { kind: "line", times, fmt: (v) => fmtMs(v), empty: "no answered requests",
        series: [{ name: "p50", color: "var(--c1)", values: pts.map((p) => p.p50_ms) },
          { name: "p90", color: "var(--c2)", values: pts.map((p) => p.p90_ms) },
          { name: "p99", color: "var(--c3)", values: pts.map((p) => p.p99_ms) }] });
      $("#range-note", view).textContent = `from the journal, ${pts.length} windows of ${fmtDuration(step)}`;
    };

    const loadSeries = async () => {
      if (state.health && !state.health.journal) { drawSeries(); return; }
      try {
        series = await api("api/series" + qs({ range, buckets: 60 }));
        if (alive) drawSeries();
      } catch (e) {
        if (e.journalOff) drawSeries(); else $("#range-note", view).textContent = "series: " + e.message;
      }
    };
    const loadFailures = async () => {
      const box = $("#failures", view);
      try {
        const p = await api("api/requests?status=failed&limit=6");
        if (!alive) return;
        box.innerHTML = p.requests.length ? `<table><thead><tr><th>Received</th><th>Method</th><th>Error</th></tr></thead><tbody>${
          p.requests.map((r) => `<tr class="link" data-href="#/requests/${esc(r.id)}"><td class="muted">${esc(fmtClock(r.received))}</td>
            <td class="mono">${esc(r.service)}.${esc(r.method)}</td><td class="ellipsis err-text" title="${esc(r.message)}">${esc(r.code)}${r.message ? ": " + esc(r.message) : ""}</td></tr>`).join("")
        }</tbody></table>` : `<div class="empty">No failed requests. </div>`;
      } catch (e) {
        box.innerHTML = `<div class="empty">${e.journalOff ? "The journal is off: failures are not kept." : esc(e.message)}</div>`;
      }
    };

    $("#range", view).addEventListener("click", (ev) => {
      const b = ev.target.closest("button");
      if (!b) return;
      range = b.dataset.r;
      $$("#range button", view).forEach((x) => x.classList.toggle("on", x === b));
      loadSeries();
    });

    api("api/live").then((l) => { live = l || []; drawQueue(); drawCards(); if (state.health && !state.health.journal) drawSeries(); }).catch(() => {});
    drawCards();
    loadSeries();
    loadFailures();
    const reSeries = throttle(loadSeries, 5000);
    const reFailures = throttle(loadFailures, 3000);
    const onResize = throttle(() => { drawQueue(); drawSeries(); }, 200);
    window.addEventListener("resize", onResize);
    return {
      tick(t, changed) {
        if (!live.length || live[live.length - 1].time !== t.sample.time) live.push(t.sample);
        if (live.length > 600) live = live.slice(-600);
        drawCards();
        drawQueue();
        if (!t.health.journal) drawSeries(); else reSeries();
        if (changed) reFailures();
      },
      destroy() { alive = false; window.removeEventListener("resize", onResize); },
    };
  }

  // ---------- services ----------
  function servicesPage(view, focus) {
    setTitle("Services");
    view.innerHTML = `<div id="svc-list" class="view-list"><div class="panel"><div class="empty">Loading services…</div></div></div>`;
    let alive = true;
    const render = (list) => {
      const box = $("#svc-list", view);
      if (!list.length) {
        box.innerHTML = `<div class="panel"><div class="empty">No services yet: start a worker.</div></div>`;
        return;
      }
      box.innerHTML = list.map((s) => {
        const r = s.recent;
        const methods = s.method_list.length ? `<table class="methods"><thead><tr><th>Method</th><th>Description</th>${r ? '<th class="num">5 min</th><th class="num">Errors</th><th class="num">p50</th><th class="num">p99</th>' : ""}</tr></thead><tbody>${
          s.method_list.map((m) => `<tr><td class="mono"><a href="#/requests${qs({ service: s.name, method: m.name })}">${esc(m.name)}</a>${m.streaming ? ' <span class="badge info plain">stream</span>' : ""}</td>
            <td><div class="method-doc">${esc(m.doc || "")}</div>${m.request || m.reply ? `<details class="schema"><summary>Schemas</summary>${
              m.request ? `<div class="small muted">request</div><pre>${esc(JSON.stringify(m.request, null, 2))}</pre>` : ""}${
              m.reply ? `<div class="small muted">reply</div><pre>${esc(JSON.stringify(m.reply, null, 2))}</pre>` : ""}</details>` : ""}</td>
            ${r ? `<td class="num">${m.recent ? fmtNum(m.recent.total) : "–"}</td><td class="num ${m.recent && m.recent.failed + m.recent.dropped ? "err-text" : ""}">${m.recent ? fmtNum(m.recent.failed + m.recent.dropped) : "–"}</td>
            <td class="num">${m.recent ? fmtMs(m.recent.p50_ms) : "–"}</td><td class="num">${m.recent ? fmtMs(m.recent.p99_ms) : "–"}</td>` : ""}</tr>`).join("")
        }</tbody></table>` : `<div class="empty">This service's workers sent no contract, so its methods are not listed.</div>`;
        const workers = s.worker_list.length ? `<table><thead><tr><th>Worker</th><th>Protocol</th><th class="num">Credit</th><th class="num">In flight</th></tr></thead><tbody>${
          s.worker_list.map((w) => `<tr><td class="mono" title="${esc(w.id)}">${esc(shortID(w.id))}</td><td><span class="pill">${esc(w.protocol)}</span></td>
            <td class="num">${fmtNum(w.credit)}</td><td class="num">${fmtNum(w.in_flight)}</td></tr>`).join("")
        }</tbody></table>` : `<div class="empty">No workers connected.</div>`;
        return `<div class="panel svc" id="svc-${esc(s.name)}" data-service="${esc(s.name)}">
          <div class="panel-head"><div><div class="svc-name">${esc(s.name)}
            ${s.ready ? '<span class="badge ok">ready</span>' : s.workers ? '<span class="badge warn">busy</span>' : '<span class="badge bad">no workers</span>'}
            ${s.contracts > 1 ? `<span class="badge warn" title="its workers sent ${s.contracts} different contracts">${s.contracts} contracts</span>` : ""}</div>
            ${s.doc ? `<div class="svc-doc">${esc(s.doc)}</div>` : ""}</div>
            <div class="svc-stats">
              <div><b>${fmtNum(s.workers)}</b><span>workers</span></div>
              <div><b>${fmtNum(s.capacity)}</b><span>capacity</span></div>
              <div><b>${fmtNum(s.in_flight)}</b><span>in flight</span></div>
              <div><b>${fmtNum(s.queued)}</b><span>queued</span></div>
              ${r ? `<div><b>${fmtRate(r.rate)}</b><span>req/s (5 min)</span></div><div><b class="${r.error_rate > 0 ? "err-text" : ""}">${fmtPct(r.error_rate)}</b><span>errors</span></div><div><b>${fmtMs(r.p99_ms)}</b><span>p99</span></div>` : ""}
            </div></div>
          <div class="split"><div><div class="sub-title"><h3>Methods</h3></div>${methods}</div>
            <div><div class="sub-title"><h3>Workers</h3></div>${workers}</div></div></div>`;
      }).join("");
    };
    const load = async (scroll) => {
      try {
        const list = await servicesList(0);
        if (!alive) return;
        const open = new Set($$("details.schema[open]", view).map((d) => d.closest(".svc").dataset.service + "|" + $$("details.schema", d.closest(".svc")).indexOf(d)));
        render(list);
        $$(".svc", view).forEach((p) => $$("details.schema", p).forEach((d, i) => { if (open.has(p.dataset.service + "|" + i)) d.open = true; }));
        if (scroll && focus) {
          const t = document.getElementById("svc-" + focus);
          if (t) t.scrollIntoView({ block: "start" });
        }
      } catch (e) {
        $("#svc-list", view).innerHTML = `<div class="panel"><div class="empty">${esc(e.message)}</div></div>`;
      }
    };
    load(true);
    const reload = throttle(() => load(false), 3000);
    return { tick() { reload(); }, destroy() { alive = false; } };
  }

  // ---------- requests ----------
  const TABS = [["all", "All"], ["failed", "Failed"], ["in_progress", "In progress"], ["completed", "Successful"], ["dropped", "Dropped"]];
  const SINCE = [["5m", "Last 5 minutes"], ["15m", "Last 15 minutes"], ["1h", "Last hour"], ["6h", "Last 6 hours"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["", "Any time"]];
  const back = []; // cursors of the pages before this one

  function requestsPage(view, params) {
    setTitle("Requests");
    const f = {
      status: params.get("status") || "all", service: params.get("service") || "", method: params.get("method") || "",
      q: params.get("q") || "", since: params.get("since") || "", after: params.get("after") || "",
    };
    if (!f.after) back.length = 0;
    const go = (changes) => {
      const n = Object.assign({}, f, changes);
      if (!("after" in changes)) { n.after = ""; back.length = 0; }
      location.hash = "#/requests" + qs({ status: n.status === "all" ? "" : n.status, service: n.service, method: n.method, q: n.q, since: n.since, after: n.after });
    };
    // The summary strip covers the chosen time, or the last 15 minutes when
    // any time is chosen: summaries read every row of their window, the
    // list only one page.
    const sumSince = f.since || "15m";
    view.innerHTML = `
      <div class="panel"><div class="summary-strip" id="req-summary"></div></div>
      <div class="panel">
        <div class="tabs" id="tabs">${TABS.map(([k, l]) => `<a href="#" data-status="${k}" class="${f.status === k ? "on" : ""}">${l} <span class="count" data-count="${k}">·</span></a>`).join("")}<span class="grow"></span><span class="muted small tabs-note" id="sum-note"></span></div>
        <form class="toolbar" id="filters" autocomplete="off">
          <input type="search" id="search" placeholder="Request id" value="${esc(f.q)}" spellcheck="false" aria-label="Request id">
          <select id="f-service" aria-label="Service"><option value="">All services</option></select>
          <select id="f-method" aria-label="Method"><option value="">All methods</option></select>
          <select id="f-since" aria-label="Time">${SINCE.map(([v, l]) => `<option value="${v}" ${v === f.since ? "selected" : ""}>${l}</option>`).join("")}</select>
          <button class="primary" type="submit">Search</button>
          <span class="grow"></span>
          <label class="small muted"><input type="checkbox" id="follow" checked> Follow new requests</label>
        </form>
        <div class="panel-body flush"><table id="requests-table"><thead><tr><th>Received</th><th>Request id</th><th>Method</th><th>Status</th><th>Worker</th><th class="num">Queue</th><th class="num">Total</th><th>Error</th></tr></thead>
          <tbody><tr><td colspan="8" class="empty">Loading…</td></tr></tbody></table></div>
        <div class="pager"><div><button type="button" id="newest">⇤ Newest</button> <button type="button" id="newer">← Newer</button></div>
          <span class="muted small" id="page-note"></span><button type="button" id="older">Older →</button></div>
      </div>`;
    let alive = true;
    let next = "";

    // Filters: services and their methods.
    servicesList().then((list) => {
      const ss = $("#f-service", view), ms = $("#f-method", view);
      const names = list.map((s) => s.name);
      if (f.service && !names.includes(f.service)) names.push(f.service);
      ss.innerHTML = `<option value="">All services</option>` + names.map((n) => `<option ${n === f.service ? "selected" : ""}>${esc(n)}</option>`).join("");
      const svc = list.find((s) => s.name === f.service);
      const methods = svc ? svc.method_list.map((m) => m.name) : [];
      if (f.method && !methods.includes(f.method)) methods.push(f.method);
      ms.innerHTML = `<option value="">All methods</option>` + methods.map((n) => `<option ${n === f.method ? "selected" : ""}>${esc(n)}</option>`).join("");
      ms.disabled = !f.service;
    }).catch(() => {});

    $("#tabs", view).addEventListener("click", (ev) => {
      const a = ev.target.closest("a");
      if (!a) return;
      ev.preventDefault();
      go({ status: a.dataset.status });
    });
    $("#filters", view).addEventListener("submit", (ev) => {
      ev.preventDefault();
      go({ q: $("#search", view).value.trim(), service: $("#f-service", view).value, method: $("#f-method", view).value, since: $("#f-since", view).value });
    });
    $("#f-service", view).addEventListener("change", (ev) => go({ service: ev.target.value, method: "" }));
    $("#f-method", view).addEventListener("change", (ev) => go({ method: ev.target.value }));
    $("#f-since", view).addEventListener("change", (ev) => go({ since: ev.target.value }));
    $("#older", view).addEventListener("click", () => { back.push(f.after); go({ after: next }); });
    $("#newer", view).addEventListener("click", () => { go({ after: back.pop() || "" }); });
    $("#newest", view).addEventListener("click", () => { back.length = 0; go({ after: "" }); });

    const loadList = async () => {
      const tb = $("#requests-table tbody", view);
      try {
        const p = await api("api/requests" + qs({ status: f.status === "all" ? "" : f.status, service: f.service, method: f.method, q: f.q, since: f.q ? "" : f.since, after: f.after, limit: 50 }));
        if (!alive) return;
        next = p.next || "";
        tb.innerHTML = p.requests.length ? p.requests.map((r) => `<tr class="link" data-href="#/requests/${esc(r.id)}" data-id="${esc(r.id)}" data-request-id="${esc(r.request_id)}">
          <td class="muted">${esc(fmtWhen(r.received))}</td>
          <td class="mono">${esc(r.request_id || r.id)}</td>
          <td class="mono">${esc(r.service)}${r.method ? "." + esc(r.method) : ""}</td>
          <td>${badge(r.status)}${r.attempts > 1 ? ` <span class="badge warn plain" title="dispatched ${r.attempts} times">×${r.attempts}</span>` : ""}</td>
          <td class="mono muted" title="${esc(r.worker)}">${esc(shortID(r.worker))}</td>
          <td class="num">${r.dispatched || r.ended ? fmtMs(r.queue_ms) : "–"}</td>
          <td class="num">${r.ended ? fmtMs(r.total_ms) : "–"}</td>
          <td class="ellipsis err-text" title="${esc(r.message)}">${r.code ? esc(r.code) + (r.message ? ": " + esc(r.message) : "") : ""}</td></tr>`).join("")
          : `<tr><td colspan="8" class="empty" id="no-requests">${f.q ? "No request with id " + esc(f.q) + " matches." : "No requests match."}</td></tr>`;
        $("#older", view).disabled = !next;
        $("#newer", view).disabled = !f.after;
        $("#newest", view).disabled = !f.after;
        $("#page-note", view).textContent = p.requests.length ? `${p.requests.length} requests${f.after ? "" : ", newest first"}` : "";
      } catch (e) {
        if (e.journalOff) { view.innerHTML = ""; journalOff(view, "Requests"); alive = false; return; }
        tb.innerHTML = `<tr><td colspan="8" class="empty">${esc(e.message)}</td></tr>`;
      }
    };
    const loadSummary = async () => {
      try {
        const s = await api("api/summary" + qs({ since: sumSince, service: f.service, method: f.method }));
        if (!alive) return;
        const items = [
          ["Requests", fmtNum(s.total), ""], ["Successful", fmtNum(s.completed), "ok"], ["Failed", fmtNum(s.failed), s.failed ? "bad" : ""],
          ["Dropped", fmtNum(s.dropped), s.dropped ? "bad" : ""], ["In progress", fmtNum(s.in_progress), ""], ["Rate", fmtRate(s.rate) + "/s", ""],
          ["p50", fmtMs(s.p50_ms), ""], ["p90", fmtMs(s.p90_ms), ""], ["p99", fmtMs(s.p99_ms), ""],
        ];
        $("#req-summary", view).innerHTML = items.map(([l, v, c]) => `<div class="${c}"><b>${v}</b><span>${esc(l)}</span></div>`).join("");
        const counts = { all: s.total, failed: s.failed, in_progress: s.in_progress, completed: s.completed, dropped: s.dropped };
        const label = (SINCE.find(([v]) => v === sumSince) || ["", sumSince])[1];
        $$("[data-count]", view).forEach((c) => { c.textContent = fmtNum(counts[c.dataset.count]); });
        $("#sum-note", view).textContent = "Counts: " + label.toLowerCase();
      } catch (e) {
        if (!e.journalOff) $("#req-summary", view).innerHTML = `<div><span>${esc(e.message)}</span></div>`;
      }
    };
    loadList();
    loadSummary();
    const reList = throttle(loadList, 2000);
    const reSummary = throttle(loadSummary, 5000);
    return {
      tick(t, changed) {
        if (!alive) return;
        if (changed && !f.after && $("#follow", view).checked) reList();
        if (changed) reSummary();
      },
      destroy() { alive = false; },
    };
  }

  // ---------- request detail ----------
  function detailPage(view, id) {
    setTitle("Request");
    view.innerHTML = `<div class="panel"><div class="empty">Loading ${esc(id)}…</div></div>`;
    let alive = true, done = false;
    const load = async () => {
      let r;
      try {
        r = await api("api/requests/" + encodeURIComponent(id));
      } catch (e) {
        if (!alive) return;
        if (e.journalOff) { view.innerHTML = ""; journalOff(view, "Requests"); }
        else view.innerHTML = `<div class="panel"><div class="empty">${e.status === 404 ? "No request " + esc(id) + " in the journal (it may have been trimmed)." : esc(e.message)}</div></div>`;
        done = true;
        return;
      }
      if (!alive) return;
      done = !!r.ended;
      const steps = r.timeline || [];
      const end = steps.length ? steps[steps.length - 1].at_ms : 0;
      const rows = [
        ["Request id", `<span class="mono">${esc(r.request_id || "–")}</span>`],
        ["Journal id", `<span class="mono">${esc(r.id)}</span>`],
        ["Service", `<a href="#/services/${encodeURIComponent(r.service)}">${esc(r.service)}</a>`],
        ["Method", `<a class="mono" href="#/requests${qs({ service: r.service, method: r.method })}">${esc(r.method || "–")}</a>`],
        ["Received", esc(new Date(r.received).toLocaleString()) + ` <span class="muted">(${esc(fmtClock(r.received, true))})</span>`],
        ["Worker", `<span class="mono">${esc(r.worker || "–")}</span>`],
        ["Client", `<span class="mono">${esc(r.client || "–")}</span>`],
        ["Attempts", fmtNum(r.attempts)],
        ["Request size", fmtNum(r.request_bytes) + " B"],
        ["Reply size", r.ended ? fmtNum(r.reply_bytes) + " B" : "–"],
      ];
      if (r.broker) rows.push(["Broker", esc(r.broker)]);
      view.innerHTML = `
        <div class="detail-head"><button type="button" class="btn" id="back">← Back</button>
          <span class="what">${esc(r.service)}${r.method ? "." + esc(r.method) : ""}</span>${badge(r.status)}
          <span class="muted">${r.ended ? "in " + fmtMs(r.total_ms) : "in progress"}</span></div>
        ${r.code ? `<div class="error-box" id="error"><span class="code">${esc(r.code)}</span><span>${esc(r.message || "")}</span></div>` : ""}
        <div class="cards">
          <div class="card"><div class="label">Queue wait</div><div class="value">${r.dispatched || r.ended ? fmtMs(r.queue_ms) : "–"}</div><div class="sub">received → dispatched</div></div>
          <div class="card"><div class="label">Handling</div><div class="value">${r.ended && r.last_dispatched ? fmtMs(r.handling_ms) : "–"}</div><div class="sub">dispatched → answered</div></div>
          <div class="card ${r.status === "failed" || r.status === "dropped" ? "bad" : r.status === "completed" ? "ok" : ""}"><div class="label">Total</div><div class="value">${r.ended ? fmtMs(r.total_ms) : "–"}</div><div class="sub">${esc(r.status)}</div></div>
        </div>
        <div class="grid-2">
          <div class="panel"><div class="panel-head"><h2>Timeline</h2><span class="muted small">${steps.length} steps</span></div>
            <div class="panel-body"><div class="gantt" id="gantt"></div>
            <ol class="steps" id="timeline">${steps.map((s) => `<li class="${esc(s.what)}"><span class="mark"></span>
              <span class="what">${esc(s.what)}</span>
              <span>${s.worker ? `<span class="mono muted" title="${esc(s.worker)}">${esc(shortID(s.worker))}</span> ` : ""}${s.detail ? `<span class="${s.what === "failed" || s.what === "dropped" ? "err-text" : "muted"}">${esc(s.detail)}</span>` : ""}</span>
              <span class="when">${esc(fmtClock(s.time, true))}<br><span class="small">+${esc(fmtMs(s.at_ms))}</span></span></li>`).join("")}</ol></div></div>
          <div class="panel"><div class="panel-head"><h2>Details</h2></div><div class="panel-body"><div class="kv">${rows.map(([k, v]) => `<div class="k">${esc(k)}</div><div>${v}</div>`).join("")}</div></div></div>
        </div>
        ${r.request_body || r.reply_body ? `<div class="grid-2">
          <div class="panel"><div class="panel-head"><h2>Request body</h2></div><div class="panel-body">${bodyHTML(r.request_body)}</div></div>
          <div class="panel"><div class="panel-head"><h2>Reply body</h2></div><div class="panel-body">${bodyHTML(r.reply_body)}</div></div></div>` : ""}`;
      gantt($("#gantt", view), r, end);
      $("#back", view).addEventListener("click", () => {
        if (history.length > 1) history.back(); else location.hash = "#/requests";
      });
    };
    load();
    const reload = throttle(load, 1000);
    return { tick() { if (!done) reload(); }, destroy() { alive = false; } };
  }

  function bodyHTML(b) {
    if (!b) return '<div class="muted">not kept</div>';
    if (b.text != null && b.text !== "") {
      let t = b.text;
      try { t = JSON.stringify(JSON.parse(t), null, 2); } catch (_) { /* not JSON */ }
      return `<pre>${esc(t)}</pre>`;
    }
    return `<pre>${esc(b.base64 || "")}</pre><div class="small muted">base64</div>`;
  }

  // gantt draws the request's phases: queue wait, then handling.
  function gantt(box, r, endMs) {
    const W = Math.max(box.clientWidth, 300), H = 74, L = 8, R = 8;
    const total = Math.max(endMs, r.ended ? r.total_ms : 0, 0.001);
    const x = (ms) => L + (ms / total) * (W - L - R);
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" }, box);
    el("rect", { x: L, y: 18, width: W - L - R, height: 16, rx: 4, fill: "#f0f1f5" }, svg);
    const q = r.dispatched || r.ended ? r.queue_ms : total;
    if (q > 0) el("rect", { x: x(0), y: 18, width: Math.max(2, x(q) - x(0)), height: 16, rx: 4, fill: "#f59e0b" }, svg);
    if (r.dispatched) {
      const hs = r.ended ? total - r.handling_ms : q;
      const he = r.ended ? total : total;
      const color = r.status === "failed" || r.status === "dropped" ? "#dc2626" : r.status === "completed" ? "#4f46e5" : "#93c5fd";
      el("rect", { x: x(hs), y: 18, width: Math.max(2, x(he) - x(hs)), height: 16, rx: 4, fill: color }, svg);
    }
    const label = (xx, text, anchor) => { const t = el("text", { x: xx, y: 56, "text-anchor": anchor, class: "axis", "font-size": "11", fill: "#7c8397" }, svg); t.textContent = text; };
    label(L, "0", "start");
    label(W - R, fmtMs(total), "end");
    const lg = el("text", { x: L, y: 11, class: "axis", "font-size": "11", fill: "#4b5368" }, svg);
    lg.textContent = "queue " + fmtMs(r.dispatched || r.ended ? r.queue_ms : 0) + (r.ended && r.dispatched ? "   ·   handling " + fmtMs(r.handling_ms) : "");
  }

  // ---------- start ----------
  document.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-href]");
    if (tr && !ev.target.closest("a")) location.hash = tr.dataset.href;
  });
  $("#quick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("#quick-q").value.trim();
    if (v) location.hash = "#/requests" + qs({ q: v });
  });
  window.addEventListener("hashchange", route);
  route();
  connect();
})();
