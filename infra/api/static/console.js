// The VIP console: plain JS over the HTTP API; no libraries, no inline script or style (the CSP).
// One page per URL (#/queue, #/member/M1, #/complaint/C1 ...); what a role may not do is not shown.
"use strict";

const state = {
  token: sessionStorage.getItem("vip-token"), me: null,
  zone: localStorage.getItem("vip-zone") || "Asia/Shanghai",
  asOf: null, timer: null, page: 0, busy: false,
};
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const can = (p) => !!state.me && state.me.permissions.includes(p);
const enc = encodeURIComponent;

// -- presentation: one zone, to the second; durations in words; money in CNY --------------

function parts(date, zone) {
  const f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return Object.fromEntries(f.formatToParts(date).filter((p) => p.type !== "literal").map((p) => [p.type, p.value]));
}
function when(iso) {
  if (!iso) return "-";
  const p = parts(new Date(iso), state.zone);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}
function day(iso) { return iso ? when(iso).slice(0, 10) : "-"; }
// A wall time typed in the chosen zone (datetime-local text) as an instant.
function instantOf(local) {
  const [d, t = "00:00:00"] = local.split("T");
  const [y, mo, da] = d.split("-").map(Number), [h, mi, s = 0] = t.split(":").map(Number);
  let guess = Date.UTC(y, mo - 1, da, h, mi, s);
  for (let k = 0; k < 2; k++) {
    const p = parts(new Date(guess), state.zone);
    const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    guess += Date.UTC(y, mo - 1, da, h, mi, s) - shown;
  }
  return new Date(guess);
}
function localOf(date) {
  const p = parts(date, state.zone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}
function span(seconds) {
  let s = Math.round(Math.abs(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  const out = [d && `${d} d`, h && `${h} h`, (!d && m) && `${m} min`].filter(Boolean).join(" ");
  return out || (Math.abs(seconds) < 60 ? "under 1 min" : "0 min");
}
function left(seconds) { return seconds < 0 ? `overdue ${span(seconds)}` : `${span(seconds)} left`; }
const MONEY = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
function money(fen, currency = "CNY") { return fen === undefined || fen === null ? "-" : `${MONEY.format(fen / 100)} ${currency}`; }
function words(type) { return String(type || "").replace(/([a-z])([A-Z])/g, "$1 $2").replace(/_/g, " ").toLowerCase(); }
const FIELD_NAMES = { complaint_id: "complaint id", member_id: "member", amount_fen: "amount", payment_id: "reference",
  at: "date", expires: "expiry", score: "rating", resolution: "resolution", reason: "reason", assignee: "assignee",
  description: "description", category: "category" };

// -- talking to the API -------------------------------------------------------------------

class ApiError extends Error {}

async function api(method, path, body, headers) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}`, ...(headers || {}) } };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  let url = path;
  if (method === "GET" && state.asOf) url += (path.includes("?") ? "&" : "?") + `as_of=${enc(state.asOf)}`;
  let r;
  try { r = await fetch(url, init); } catch (e) { throw new ApiError("The server did not answer; check the connection and try again."); }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401) { signOut("Your key is no longer accepted (revoked or expired). Sign in again."); throw new ApiError("Signed out."); }
  if (!r.ok) throw new ApiError(plain(r.status, data));
  return data;
}

// A problem document in plain words: no field paths, no permission codes.
function plain(status, data) {
  if (status === 403) return `Your role (${state.me ? state.me.role : "?"}) may not do this.`;
  if (status === 412) return "Someone changed this in the meantime; it has been reloaded: check it and try again.";
  if (data && Array.isArray(data.errors) && data.errors.length) {
    return data.errors.map((e) => {
      const field = (e.loc || []).filter((p) => p !== "body" && p !== "query" && typeof p === "string").pop();
      return `${FIELD_NAMES[field] || words(field || "value")}: ${String(e.msg || "").replace(/^Value error, /, "")}`;
    }).join("; ");
  }
  return (data && data.detail) || `The server refused (${status}).`;
}

function say(el, text, ok) { if (!el) return; el.textContent = text || ""; el.className = `msg${ok ? " ok" : text ? " bad" : ""}`; }

// -- tables: labelled cells (cards at narrow widths), sortable headers ---------------------

function table(rows, cols, opts = {}) {
  if (!rows.length) return `<p class="hint">${esc(opts.empty || "Nothing to show.")}</p>`;
  const head = cols.map((c, i) => {
    if (!opts.sort) return `<th scope="col">${esc(c.label)}</th>`;
    const sorted = opts.sort.col === i ? (opts.sort.dir > 0 ? "ascending" : "descending") : "none";
    return `<th scope="col" aria-sort="${sorted}"><button type="button" class="sort" data-sort="${i}">${esc(c.label)}<span class="visually-hidden"> (sort)</span></button></th>`;
  }).join("");
  const body = rows.map((r) => `<tr ${opts.attrs ? opts.attrs(r) : ""}>` + cols.map((c) =>
    `<td data-label="${esc(c.label)}"${c.num ? " class='num'" : ""}>${c.html ? c.html(r) : esc(c.text ? c.text(r) : r[c.key] ?? "-")}</td>`).join("") + "</tr>").join("");
  return `<table${opts.id ? ` id="${opts.id}"` : ""}>${opts.caption ? `<caption>${esc(opts.caption)}</caption>` : ""}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}
function facts(pairs) {
  return `<dl class="facts">${pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join("")}</dl>`;
}
function csv(rows, cols) {
  const cell = (v) => { const s = String(v ?? ""); return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
  return [cols.map((c) => cell(c.label)).join(","), ...rows.map((r) => cols.map((c) => cell(c.csv(r))).join(","))].join("\r\n") + "\r\n";
}
function download(link, name, text) {
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = name;
}
const link = (hash, text, label) => `<a href="#/${hash}"${label ? ` aria-label="${esc(label)}"` : ""}>${esc(text)}</a>`;

const COLOURS = ["#5a3fa8", "#b35c00", "#1f6fa8", "#2e7d43", "#a8322b", "#555"];
// Grouped bars in a scalable SVG; at most ~12 group labels so they never overlap.
function barChart(groups, series, title, format) {
  if (!groups.length) return "<p class='hint'>No data.</p>";
  const w = 720, h = 260, pad = 50, base = h - 50;
  const max = Math.max(1, ...groups.flatMap((g) => series.map((s) => Math.abs(g.values[s] || 0))));
  const gw = (w - pad) / groups.length, bw = Math.max(1, (gw - 4) / series.length);
  const every = Math.ceil(groups.length / 12);
  let out = "";
  groups.forEach((g, i) => {
    const gx = pad + i * gw;
    series.forEach((s, k) => {
      const v = g.values[s] || 0, bh = (base - 20) * (Math.abs(v) / max);
      out += `<rect class="bar" x="${gx + 2 + k * bw}" y="${base - bh}" width="${Math.max(bw - 1, 0.5)}" height="${bh}" fill="${COLOURS[k % COLOURS.length]}"><title>${esc(g.label)} ${esc(s)}: ${esc(format(v))}</title></rect>`;
    });
    if (i % every === 0) out += `<text x="${gx + gw / 2}" y="${base + 16}" text-anchor="middle">${esc(g.label)}</text>`;
  });
  const legend = series.map((s, k) => `<rect x="${pad + k * 130}" y="${h - 18}" width="10" height="10" fill="${COLOURS[k % COLOURS.length]}"/><text x="${pad + k * 130 + 14}" y="${h - 9}">${esc(s)}</text>`).join("");
  return `<svg viewBox="0 0 ${w} ${h}" class="chart" role="img" aria-label="${esc(title)} (the table below holds the same data)">` +
    `<text x="4" y="14">max ${esc(format(max))}</text><line x1="${pad}" y1="${base}" x2="${w}" y2="${base}" stroke="#767676"/>${out}${legend}</svg>`;
}

// -- pages --------------------------------------------------------------------------------

const SCREENS = [
  { hash: "queue", label: "Complaints queue", perm: "complaint:read" },
  { hash: "member", label: "Members", perm: "member:read" },
  { hash: "aging", label: "Overdue invoices", perm: "ledger:read" },
  { hash: "revenue", label: "Revenue", perm: "ledger:read" },
  { hash: "contracts", label: "Contracts", perm: "contract:read" },
  { hash: "tiers", label: "Tiers", perm: "member:read" },
];
const pages = {};

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, ...rest] = path.split("/");
  const params = new URLSearchParams(query || "");
  return { name: name || "", id: rest.length ? decodeURIComponent(rest.join("/")) : null, params };
}
function go(hash) { location.hash = `#/${hash}${state.asOf ? `?as_of=${enc(state.asOf)}` : ""}`; }

async function render() {
  clearTimeout(state.timer); state.timer = null;
  if (!state.me) return;
  const r = route();
  state.asOf = r.params.get("as_of") || null;
  showAsOf();
  const screen = SCREENS.find((s) => s.hash === r.name) ||
    (r.name === "complaint" && can("complaint:read") ? { hash: "complaint" } : null);
  const allowed = screen && (!screen.perm || can(screen.perm));
  if (!allowed) { go(home()); return; }
  const top = r.name === "complaint" ? "queue" : r.name;
  document.querySelectorAll("#tabs a").forEach((a) => {
    if (a.dataset.screen === top) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  const view = $("view");
  view.innerHTML = `<p class="hint">Loading…</p>`;
  state.page++;
  try { await pages[r.name](view, r, state.page); } catch (e) {
    if (state.me) view.innerHTML = `<p class="msg bad" role="alert">${esc(e.message)}</p>`;
  }
}
function home() { return (SCREENS.find((s) => can(s.perm)) || SCREENS[1]).hash; }
const current = (n) => n === state.page;

pages.queue = async (view, r, n) => {
  const f = { tier: r.params.get("tier") || "", severity: r.params.get("severity") || "", status: r.params.get("status") || "",
    assignee: r.params.get("assignee") || "", mine: r.params.get("mine") === "1" };
  const opt = (list, v) => ["", ...list].map((x) => `<option value="${x}"${x === v ? " selected" : ""}>${x || "any"}</option>`).join("");
  view.innerHTML = `<h2>Complaints queue</h2>
    <p class="hint">Every open complaint, the nearest to breaching its SLA first (then tier and severity).
    <span id="q-updated"></span></p>
    <form id="q-filter" class="filters">
      <label>Tier <select id="f-tier">${opt(["diamond", "platinum", "gold", "silver", "member"], f.tier)}</select></label>
      <label>Severity <select id="f-severity">${opt(["critical", "high", "medium", "low"], f.severity)}</select></label>
      <label>Status <select id="f-status">${opt(["filed", "acknowledged", "assigned", "escalated", "waiting", "reopened"], f.status)}</select></label>
      <label>Assignee <input id="f-assignee" value="${esc(f.assignee)}" size="12"></label>
      <label class="check"><input id="f-mine" type="checkbox"${f.mine ? " checked" : ""}> Mine only (${esc(state.me.subject)})</label>
      <button type="submit">Apply filters</button>
    </form>
    <p id="q-msg" class="msg" role="status"></p>
    <div id="q-table"></div>`;
  $("q-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const k of ["tier", "severity", "status", "assignee"]) { const v = $(`f-${k}`).value.trim(); if (v) p.set(k, v); }
    if ($("f-mine").checked) p.set("mine", "1");
    if (state.asOf) p.set("as_of", state.asOf);
    location.hash = `#/queue${p.toString() ? "?" + p : ""}`;
  });
  $("q-table").addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-ack]");
    if (!b) return;
    b.disabled = true;
    try {
      await api("POST", `/api/complaints/${enc(b.dataset.ack)}/ack`, {});
      say($("q-msg"), `${b.dataset.ack} acknowledged.`, true);
    } catch (err) { say($("q-msg"), `${b.dataset.ack}: ${err.message}`); }
    await refreshQueue(f, n);
  });
  await refreshQueue(f, n);
};

async function refreshQueue(f, n) {
  if (!current(n) || state.busy) return;
  state.busy = true;
  clearTimeout(state.timer);
  try {
    const [q, b] = await Promise.all([api("GET", "/api/queue?limit=500"), api("GET", "/api/breaches?limit=500")]);
    if (!current(n)) return;
    const risk = {};
    for (const x of b.items) if (risk[x.complaint_id] !== "breached") risk[x.complaint_id] = x.state;
    const rows = q.items.filter((x) => (!f.tier || x.tier === f.tier) && (!f.severity || x.severity === f.severity) &&
      (!f.status || x.status === f.status) && (!f.assignee || (x.assignee || "").toLowerCase().includes(f.assignee.toLowerCase())) &&
      (!f.mine || x.assignee === state.me.subject));
    rows.forEach((x) => { x.sla = x.time_to_breach_s < 0 || x.breached.length ? "breached" : risk[x.complaint_id] || (x.status === "waiting" ? "paused" : "on track"); });
    queueRows(rows, q.total);
    $("q-updated").textContent = `Updated ${when(new Date().toISOString())}${state.asOf ? "" : "; refreshes every 5 s"}.`;
  } catch (e) { if (current(n)) say($("q-msg"), e.message); } finally { state.busy = false; }
  if (current(n) && !state.asOf) state.timer = setTimeout(() => refreshQueue(f, n), 5000);
}

const QUEUE_COLS = [
  { label: "Complaint", html: (r) => link(`complaint/${enc(r.complaint_id)}`, r.complaint_id, `Open complaint ${r.complaint_id}`) },
  { label: "Member", html: (r) => link(`member/${enc(r.member_id)}`, r.member_id, `Open member ${r.member_id}`) },
  { label: "Tier", key: "tier" }, { label: "Severity", key: "severity" }, { label: "Status", key: "status" },
  { label: "Assignee", text: (r) => r.assignee || "unassigned" },
  { label: "SLA", html: (r) => `<span class="badge ${r.sla.replace(" ", "-")}">${esc(r.sla)}</span>` },
  { label: "Next deadline", text: (r) => `${words(r.clock)}: ${left(r.time_to_breach_s)}` },
  { label: "Action", html: (r) => can("complaint:write") && !state.asOf && r.clock === "first_response" ?
    `<button type="button" data-ack="${esc(r.complaint_id)}" data-key="ack-${esc(r.complaint_id)}">Acknowledge ${esc(r.complaint_id)}</button>` : "" },
];

// Rows updated in place (keyed by complaint): a refresh never takes the keyboard focus away.
function queueRows(rows, total) {
  const box = $("q-table");
  if (!rows.length) { box.innerHTML = `<p class="hint">No open complaint${total ? " matches these filters" : ""}.</p>`; return; }
  let body = box.querySelector("tbody");
  if (!body) {
    box.innerHTML = `<table id="queue-table"><thead><tr>${QUEUE_COLS.map((c) => `<th scope="col">${esc(c.label)}</th>`).join("")}</tr></thead><tbody></tbody></table>`;
    body = box.querySelector("tbody");
  }
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  const existing = new Map([...body.rows].map((tr) => [tr.dataset.complaint, tr]));
  rows.forEach((r, i) => {
    let tr = existing.get(r.complaint_id);
    if (!tr) { tr = document.createElement("tr"); tr.dataset.complaint = r.complaint_id; QUEUE_COLS.forEach((c) => { const td = document.createElement("td"); td.dataset.label = c.label; tr.appendChild(td); }); }
    existing.delete(r.complaint_id);
    tr.dataset.sla = r.sla;
    tr.dataset.clock = r.clock;
    QUEUE_COLS.forEach((c, k) => {
      const html = c.html ? c.html(r) : esc(c.text ? c.text(r) : r[c.key] ?? "-");
      if (tr.cells[k].dataset.html !== html) { tr.cells[k].innerHTML = html; tr.cells[k].dataset.html = html; }
    });
    if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
  });
  existing.forEach((tr) => tr.remove());
  if (focused && document.activeElement === document.body) {
    const again = box.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

const ACTIONS = {
  ack: { label: "Acknowledge", fields: "" },
  assign: { label: "Assign", fields: (c) => `<label>Assign to <input name="assignee" required value="${esc(c.assignee || state.me.subject)}"></label>` },
  escalate: { label: "Escalate", fields: () => `<label>Reason for escalating <input name="reason" required></label>` },
  wait: { label: "Wait for the customer", fields: () => `<label>What the customer owes <input name="reason"></label>` },
  reply: { label: "Record the customer's reply", fields: "" },
  resolve: { label: "Resolve", fields: () => `<label>Resolution <textarea name="resolution" required rows="2"></textarea></label>` },
  rate: { label: "Record the rating", fields: () => `<label>Customer's rating <select name="score" required>${[5, 4, 3, 2, 1].map((s) => `<option>${s}</option>`).join("")}</select></label>` },
  close: { label: "Close", fields: "" },
  reopen: { label: "Reopen", fields: () => `<label>Reason for reopening <input name="reason" required></label>` },
};

pages.complaint = async (view, r, n) => {
  const c = await api("GET", `/api/complaints/${enc(r.id)}/page`);
  if (!current(n)) return;
  const clocks = Object.entries(c.clocks).map(([name, k]) => ({ name, ...k }));
  view.innerHTML = `<h2>Complaint ${esc(c.complaint_id)} <span class="badge">${esc(c.status)}</span></h2>
    ${facts([["Member", link(`member/${enc(c.member_id)}`, c.member_id, `Open member ${c.member_id}`)], ["Tier at filing", esc(c.tier)],
      ["Severity", esc(c.severity)], ["Channel", esc(c.channel)], ["Category", esc(c.category)], ["Filed", esc(when(c.filed_at))],
      ["Assignee", esc(c.assignee || "unassigned")], ["Escalation level", esc(c.escalation_level)],
      ["Rating", esc(c.rating ? `${c.rating} of 5` : "not rated")]])}
    <h3>What the customer said</h3><p class="quote">${esc(c.description || "-")}</p>
    ${c.resolution ? `<h3>Resolution</h3><p class="quote" id="resolution">${esc(c.resolution)}</p>` : ""}
    <h3>SLA clocks</h3>
    ${table(clocks, [{ label: "Clock", text: (k) => words(k.name) }, { label: "Budget", text: (k) => span(k.budget_s) },
      { label: "Deadline", text: (k) => when(k.deadline) },
      { label: "State", html: (k) => `<span class="badge ${k.state}">${esc(words(k.state))}</span>` },
      { label: "Time", text: (k) => k.state === "stopped" ? `met or stopped ${when(k.stopped_at)}` : left(k.left_s) }], { id: "clocks" })}
    <section aria-labelledby="act-h"><h3 id="act-h">Actions</h3><div id="actions"></div><p id="c-msg" class="msg" role="status"></p></section>
    <h3>Timeline</h3>
    ${table(c.timeline.slice().reverse(), [{ label: "When", text: (e) => when(e.at) }, { label: "What", text: (e) => words(e.type.replace(/^Complaint/, "")) },
      { label: "By", key: "actor" }, { label: "Details", html: details }], { id: "timeline" })}`;
  $("actions").innerHTML = c.actions.length ? c.actions.map((a) => `<form class="action" data-action="${a}">
      ${ACTIONS[a].fields ? ACTIONS[a].fields(c) : ""}<button type="submit">${esc(ACTIONS[a].label)} ${esc(c.complaint_id)}</button></form>`).join("")
    : `<p class="hint">${state.asOf ? "Actions are off while showing a past time." : can("complaint:write") ? "Nothing more to do: the complaint is closed and rated." : "Your role reads complaints only."}</p>`;
  $("actions").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target, action = form.dataset.action, body = {};
    for (const [k, v] of new FormData(form)) body[k] = k === "score" ? Number(v) : String(v).trim();
    // Until this action is answered: the last action's message is gone (it no longer says how the
    // complaint stands) and no other action is sent against the version this page shows.
    const buttons = [...$("actions").querySelectorAll("button")];
    buttons.forEach((b) => { b.disabled = true; });
    Object.assign($("c-msg"), { className: "msg", textContent: `${ACTIONS[action].label}: sending...` });
    try {
      const done = await api("POST", `/api/complaints/${enc(c.complaint_id)}/${action}`, body, { "If-Match": `"${c.version}"` });
      await pages.complaint(view, r, n);
      say($("c-msg"), `${ACTIONS[action].label}: done. The complaint is now ${done.status}.`, true);
    } catch (err) {
      if (/changed this/.test(err.message)) await pages.complaint(view, r, n);
      say($("c-msg"), err.message); buttons.forEach((b) => { b.disabled = false; });
    }
  }, { once: false });
};

// An event's data in a few words (clock internals left out).
function details(e) {
  const d = e.data || {};
  const skip = new Set(["clocks", "complaint_id", "member_id", "contract_id", "policy_version", "at_risk_ratio", "calendar", "severity_factor", "input_id", "standing"]);
  return Object.entries(d).filter(([k, v]) => !skip.has(k) && v !== null && v !== "" && typeof v !== "object")
    .map(([k, v]) => `<span class="kv"><b>${esc(words(k))}</b> ${esc(/(_at|expires|deadline|due)$/.test(k) ? when(v) : /_fen$/.test(k) ? money(v, d.currency) : v)}</span>`).join(" ") || "-";
}

pages.member = async (view, r, n) => {
  const byName = can("complaint:write");
  view.innerHTML = `<h2>Members</h2>
    <form id="m-search" role="search" class="filters">
      <label>Find a member by id${byName ? ", name or phone" : ""} <input id="m-q" type="search" required value="${esc(r.params.get("q") || "")}"></label>
      <button type="submit">Find member</button>
    </form><p id="m-msg" class="msg" role="status"></p><div id="m-results"></div><div id="m-page"></div>`;
  $("m-search").addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = $("m-q").value.trim();
    try {
      const found = await api("GET", `/api/member-search?q=${enc(q)}`);
      if (found.items.length === 1) { go(`member/${enc(found.items[0].member_id)}`); return; }
      say($("m-msg"), found.items.length ? `${found.total} members found.` : `No member found for “${q}”.`, !!found.items.length);
      $("m-results").innerHTML = table(found.items, [{ label: "Member", html: (m) => link(`member/${enc(m.member_id)}`, m.member_id, `Open member ${m.member_id}`) },
        ...(byName ? [{ label: "Name", key: "name" }] : []), { label: "Tier", key: "tier" }, { label: "VIP status", key: "vip_status" },
        { label: "Found by", key: "matched_by" }]);
    } catch (err) { say($("m-msg"), err.message); }
  });
  if (r.id) await memberPage($("m-page"), r.id, n);
};

async function memberPage(box, id, n) {
  const p = await api("GET", `/api/members/${enc(id)}/profile`);
  if (!current(n)) return;
  const t = p.tier, g = p.progress, rule = t.why.rule;
  const meets = !g.held_until;
  const why = `${t.tier === "member" ? "Not yet VIP" : `${t.tier[0].toUpperCase()}${t.tier.slice(1)}`}: ` +
    `net spend ${money(t.window_spend_fen)} and ${t.window_points.toLocaleString("en")} points in the last ${t.why.window_days} days, ` +
    `${t.active_months} active months. The ${rule.tier} rule asks ${money(rule.min_spend_fen)} or ${rule.min_points.toLocaleString("en")} points` +
    (rule.min_active_months ? ` and ${rule.min_active_months} active months` : "") + ". " +
    (t.tier !== "member" && !meets ? `The window is below that now, but a tier is only lowered at the annual review: ${t.tier} is held until the review on ${when(g.held_until)}. ` : "") +
    (t.why.last_change ? `Set by ${words(t.why.last_change.event)} on ${when(t.why.last_change.at)} (policy ${t.why.last_change.policy_version}).` : "") +
    (t.override ? ` Override: ${t.override.kind} at ${t.override.tier} until ${when(t.override.expires_at)} (${t.override.reason}).` : "");
  const next = g.next_tier ? `To reach ${g.next_tier}: ${money(g.spend_needed_fen)} more net spend or ${g.points_needed.toLocaleString("en")} more points` +
    (g.active_months_needed ? `, and ${g.active_months_needed} more active months` : "") + "." : "Top tier.";
  const pct = g.next_tier ? Math.min(100, Math.round(100 * t.window_spend_fen / g.min_spend_fen)) : 100;
  box.innerHTML = `<h2>Member ${esc(id)}</h2>
    ${p.profile ? facts([["Name", esc(p.profile.name || "-")], ["Phone", esc(p.profile.phone || "-")], ["Email", esc(p.profile.email || "-")]]) : ""}
    <section aria-labelledby="tier-h"><h3 id="tier-h">Tier${state.asOf ? ` as of ${esc(when(state.asOf))}` : ""}</h3>
    ${facts([["Tier", `<strong id="tier-now">${esc(t.tier)}</strong>`], ["Effective tier", esc(t.effective_tier)], ["VIP status", esc(t.vip_status)],
      ["Since", esc(when(t.since))], ["Net spend (window)", esc(money(t.window_spend_fen))], ["Points (window)", esc(t.window_points.toLocaleString("en"))],
      ["Next review", esc(when(t.next_review_at))], ["Dedicated agent", esc(t.benefits && t.benefits.dedicated_agent || "-")]])}
    <p class="why" id="why">${esc(why)}</p>
    <p id="progress">${esc(next)}</p>
    ${g.next_tier ? `<progress max="100" value="${pct}" aria-label="Net spend toward ${esc(g.next_tier)}: ${pct} %">${pct} %</progress>` : ""}
    </section>
    <h3>Tier history</h3>
    ${table(p.tier_history, [{ label: "When", text: (c) => when(c.at) }, { label: "Change", text: (c) => c.to ? `${c.from || "-"} → ${c.to}` : "-" },
      { label: "What", text: (c) => words(c.event) }, { label: "Why", text: (c) => c.reason ? words(c.reason) : c.standing ? `net spend ${money(c.standing.spend_fen)}, ${c.standing.points} points` : "-" },
      { label: "By", key: "actor" }, { label: "Policy", key: "policy_version" }], { id: "tier-history", empty: "No tier change yet." })}
    <div id="m-complaints"></div><div id="m-forms"></div><div id="m-events"></div>`;
  if (can("complaint:read")) {
    const cs = await api("GET", `/api/complaints?member_id=${enc(id)}&limit=100`);
    if (!current(n)) return;
    $("m-complaints").innerHTML = `<h3>Complaints</h3>` + table(cs.items, [
      { label: "Complaint", html: (c) => link(`complaint/${enc(c.complaint_id)}`, c.complaint_id, `Open complaint ${c.complaint_id}`) },
      { label: "Status", key: "status" }, { label: "Filed", text: (c) => when(c.filed_at) }, { label: "Category", key: "category" },
      { label: "Assignee", text: (c) => c.assignee || "unassigned" }], { empty: "No complaint." });
  }
  if (!state.asOf) memberForms($("m-forms"), id, n);
  if (can("history:read")) {
    const h = await api("GET", `/api/history/member/${enc(id)}?limit=500`);
    if (!current(n)) return;
    $("m-events").innerHTML = `<details><summary>Every event of this member (${h.total})</summary>` + table(h.items.slice().reverse(),
      [{ label: "When", text: (e) => when(e.at) }, { label: "What", text: (e) => words(e.type) }, { label: "By", key: "actor" }, { label: "Details", html: details }]) + "</details>";
  }
}

function memberForms(box, id, n) {
  let html = "";
  if (can("complaint:write")) {
    html += `<section aria-labelledby="file-h"><h3 id="file-h">File a complaint for ${esc(id)}</h3><form id="file-form" class="stack">
      <label>Channel <select name="channel"><option>phone</option><option>web</option><option>email</option><option>app</option></select></label>
      <label>Category <input name="category" required value="service"></label>
      <label>Severity <select name="severity"><option>low</option><option selected>medium</option><option>high</option><option>critical</option></select></label>
      <label>What the customer says <textarea name="description" required rows="2"></textarea></label>
      <button type="submit">File complaint for ${esc(id)}</button><p id="file-msg" class="msg" role="status"></p></form></section>`;
  }
  if (can("member:supervise")) {
    html += `<section aria-labelledby="ovr-h"><h3 id="ovr-h">Override ${esc(id)}'s tier</h3><form id="ovr-form" class="stack">
      <label>Kind <select name="kind"><option value="floor">floor (at least)</option><option value="pin">pin (exactly)</option></select></label>
      <label>Tier <select name="tier"><option>silver</option><option>gold</option><option>platinum</option><option>diamond</option></select></label>
      <label>Reason <input name="reason" required></label>
      <label>Until (${esc(state.zone)}) <input name="expires" type="datetime-local" step="1" required></label>
      <button type="submit">Set override for ${esc(id)}</button><p id="ovr-msg" class="msg" role="status"></p></form></section>`;
  }
  box.innerHTML = html;
  const file = $("file-form");
  if (file) file.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { member_id: id, ...Object.fromEntries(new FormData(file)) };
    try {
      const c = await api("POST", "/api/complaints", body, { "Idempotency-Key": `file-${id}-${Date.now()}` });
      go(`complaint/${enc(c.complaint_id)}`);
    } catch (err) { say($("file-msg"), err.message); }
  });
  const ovr = $("ovr-form");
  if (ovr) ovr.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(ovr));
    try {
      await api("POST", `/api/members/${enc(id)}/override`, { kind: f.kind, tier: f.tier, reason: f.reason, expires: instantOf(f.expires).toISOString() });
      await memberPage($("m-page"), id, n);
      say($("ovr-msg") || $("m-msg"), `Override set: ${f.kind} ${f.tier} until ${when(instantOf(f.expires).toISOString())}.`, true);
    } catch (err) { say($("ovr-msg"), err.message); }
  });
}

const BUCKETS = ["0-30", "31-60", "61-90", "90+"];
pages.aging = async (view, r, n) => {
  const a = await api("GET", "/api/aging");
  if (!current(n)) return;
  const sort = { col: 4, dir: -1 };
  const write = can("contract:write") && !state.asOf;
  view.innerHTML = `<h2>Overdue invoices</h2><p class="hint">As of ${esc(when(a.as_of))}, by days past the due date.</p>
    <div id="aging-totals"></div>
    <form id="aging-filter" class="filters">
      <label>Bucket <select id="a-bucket"><option value="">any</option>${BUCKETS.map((b) => `<option>${b}</option>`).join("")}</select></label>
      <label>Contract or payer <input id="a-text" type="search"></label>
      <button type="submit">Filter invoices</button>
      <a id="aging-csv" class="button" href="#/aging">Download overdue invoices (CSV)</a>
    </form>
    <p id="a-msg" class="msg" role="status"></p><div id="aging-table"></div>
    <dialog id="settle" aria-labelledby="settle-h"><form id="settle-form" class="stack">
      <h3 id="settle-h">Record a payment</h3><p id="settle-what"></p>
      <label>Amount received (CNY) <input name="amount" type="number" min="0.01" step="0.01" required></label>
      <label>Payment reference <input name="reference" required pattern="[A-Za-z0-9][A-Za-z0-9._:-]*" title="letters, digits, . _ : -"></label>
      <label>Value date (${esc(state.zone)}) <input name="value_date" type="date" required></label>
      <label class="check"><input name="confirm" type="checkbox" required> I checked the amount and the reference</label>
      <p id="settle-msg" class="msg" role="status"></p>
      <div><button type="submit" id="settle-ok">Record payment</button> <button type="button" id="settle-cancel">Cancel</button></div>
    </form></dialog>`;
  const cols = [
    { label: "Contract", key: "contract_id", csv: (x) => x.contract_id }, { label: "Invoice", key: "invoice", csv: (x) => x.invoice },
    { label: "Payer", key: "payer", csv: (x) => x.payer }, { label: "Due", text: (x) => day(x.due_at), csv: (x) => day(x.due_at), sort: (x) => x.due_at },
    { label: "Days overdue", key: "days_overdue", num: true, csv: (x) => x.days_overdue },
    { label: "Bucket", key: "bucket", csv: (x) => x.bucket },
    { label: "Outstanding", text: (x) => money(x.outstanding_fen, x.currency), num: true, csv: (x) => (x.outstanding_fen / 100).toFixed(2), sort: (x) => x.outstanding_fen },
    { label: "Currency", key: "currency", csv: (x) => x.currency },
  ];
  if (write) cols.push({ label: "Action", html: (x) => `<button type="button" data-settle="${esc(x.invoice)}" data-contract="${esc(x.contract_id)}">Settle invoice ${esc(x.invoice)}</button>` });
  const totals = Object.entries(a.totals).map(([cur, t]) => ({ currency: cur, ...t }));
  $("aging-totals").innerHTML = table(totals, [{ label: "Currency", key: "currency" }, ...BUCKETS.map((b) => ({ label: `${b} days`, num: true, text: (t) => money(t[b], t.currency) })),
    { label: "Total", num: true, text: (t) => money(t.total, t.currency) }], { id: "aging-totals-table", caption: "Totals by days overdue", empty: "Nothing is overdue." });
  const shown = () => {
    const b = $("a-bucket").value, q = $("a-text").value.trim().toLowerCase();
    const c = cols[sort.col], key = c.sort || ((x) => x[c.key]);
    return a.invoices.filter((x) => (!b || x.bucket === b) && (!q || `${x.contract_id} ${x.payer} ${x.invoice}`.toLowerCase().includes(q)))
      .sort((x, y) => (key(x) < key(y) ? -1 : key(x) > key(y) ? 1 : 0) * sort.dir);
  };
  const draw = () => {
    const rows = shown();
    $("aging-table").innerHTML = table(rows, cols, { id: "aging", sort, attrs: (x) => `data-invoice="${esc(x.invoice)}"`, empty: "No overdue invoice matches." });
    download($("aging-csv"), `overdue-invoices-${day(a.as_of)}.csv`, csv(rows, cols.filter((c) => c.csv)));
  };
  draw();
  $("aging-filter").addEventListener("submit", (e) => { e.preventDefault(); draw(); });
  $("aging-table").addEventListener("click", (e) => {
    const s = e.target.closest("button[data-sort]");
    if (s) { const i = Number(s.dataset.sort); sort.dir = sort.col === i ? -sort.dir : 1; sort.col = i; draw(); $("aging-table").querySelector(`button[data-sort="${i}"]`).focus(); return; }
    const b = e.target.closest("button[data-settle]");
    if (b) openSettle(a.invoices.find((x) => x.invoice === b.dataset.settle && x.contract_id === b.dataset.contract), b);
  });
  let target = null, opener = null;
  const dlg = $("settle"), form = $("settle-form");
  function openSettle(inv, from) {
    target = inv; opener = from;
    form.reset(); say($("settle-msg"), "");
    $("settle-what").textContent = `Invoice ${inv.invoice} of contract ${inv.contract_id}, payer ${inv.payer}: ${money(inv.outstanding_fen, inv.currency)} outstanding, due ${day(inv.due_at)}.`;
    form.amount.value = (inv.outstanding_fen / 100).toFixed(2);
    form.value_date.value = localOf(new Date(state.me.now)).slice(0, 10);
    form.value_date.max = form.value_date.value;
    $("settle-ok").textContent = `Record payment for invoice ${inv.invoice}`;
    dlg.showModal();
  }
  $("settle-cancel").addEventListener("click", () => { dlg.close(); if (opener) opener.focus(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fen = Math.round(Number(form.amount.value) * 100);
    if (!(fen > 0) || fen > target.outstanding_fen) { say($("settle-msg"), `The amount must be more than 0 and at most ${money(target.outstanding_fen, target.currency)}.`); return; }
    const today = localOf(new Date(state.me.now)).slice(0, 10);
    const body = { invoice_id: target.invoice, amount_fen: fen, currency: target.currency, payment_id: form.reference.value.trim() };
    if (form.value_date.value !== today) body.at = instantOf(`${form.value_date.value}T12:00:00`).toISOString();
    try {
      await api("POST", `/api/contracts/${enc(target.contract_id)}/pay`, body, { "Idempotency-Key": `pay-${target.contract_id}-${body.payment_id}` });
      dlg.close();
      const what = `Payment ${body.payment_id} of ${money(fen, target.currency)} recorded on invoice ${target.invoice}.`;
      await pages.aging(view, r, n);
      say($("a-msg"), what, true);
    } catch (err) { say($("settle-msg"), err.message); }
  });
};

pages.revenue = async (view, r, n) => {
  const [rev, l] = await Promise.all([api("GET", "/api/revenue"), api("GET", "/api/ledger")]);
  if (!current(n)) return;
  const months = rev.CNY || {};
  const parties = [...new Set(Object.values(months).flatMap((p) => Object.keys(p)))].sort((a, b) => (a === "platform" ? -1 : b === "platform" ? 1 : a.localeCompare(b)));
  const rows = Object.entries(months).map(([month, p]) => ({ month, ...p }));
  const cols = [{ label: "Month", key: "month", csv: (x) => x.month }, ...parties.map((p) => ({ label: p, num: true, text: (x) => money(x[p] || 0), csv: (x) => ((x[p] || 0) / 100).toFixed(2) })),
    { label: "Total", num: true, text: (x) => money(parties.reduce((s, p) => s + (x[p] || 0), 0)), csv: (x) => (parties.reduce((s, p) => s + (x[p] || 0), 0) / 100).toFixed(2) }];
  const balances = Object.entries(l.by_party).filter(([p]) => !/^M\d/.test(p)).map(([party, acc]) => ({ party, ...acc }));
  const accounts = [...new Set(balances.flatMap((p) => Object.keys(p).filter((k) => k !== "party")))].sort();
  // Payables are credit balances (negative in the ledger): shown as the positive amount owed.
  const owed = (k, v) => (/payable/.test(k) ? -v : v);
  view.innerHTML = `<h2>Revenue by month and party (CNY)</h2>
    <p class="hint">What the platform keeps and each partner's share, net of discounts and waivers.</p>
    ${barChart(rows.map((x) => ({ label: x.month, values: x })), parties, "Revenue by month and party", (v) => money(v))}
    <p><a id="revenue-csv" class="button" href="#/revenue">Download revenue by partner and month (CSV)</a></p>
    <div class="wide">${table(rows, cols, { id: "revenue-table", caption: "Revenue by partner and month" })}</div>
    <h2>Balances by party</h2>
    <p class="hint">Payables are what the platform owes the partner (a positive amount owed).</p>
    ${table(balances, [{ label: "Party", key: "party" }, ...accounts.map((k) => ({ label: /payable/.test(k) ? `${words(k)} (owed)` : words(k), num: true, text: (x) => x[k] === undefined ? "-" : money(owed(k, x[k])) }))], { id: "balances" })}
    <h2>Trial balance</h2>
    ${table(Object.entries(l.trial_balance).map(([cur, t]) => ({ currency: cur, ...t })), [{ label: "Currency", key: "currency" },
      { label: "Debits", num: true, text: (x) => money(x.debits, x.currency) }, { label: "Credits", num: true, text: (x) => money(x.credits, x.currency) },
      { label: "Balanced", text: (x) => (x.balanced ? "yes" : "NO") }])}`;
  download($("revenue-csv"), "revenue-by-partner-month.csv", csv(rows, cols));
};

pages.contracts = async (view, r, n) => {
  const p = r.params, limit = 50, offset = Number(p.get("offset") || 0);
  const q = new URLSearchParams({ limit, offset });
  for (const k of ["q", "status", "kind"]) if (p.get(k)) q.set(k, p.get(k));
  const c = await api("GET", `/api/contract-list?${q}`);
  if (!current(n)) return;
  const terms = can("contract:terms");
  const opt = (list, v) => ["", ...list].map((x) => `<option value="${x}"${x === (v || "") ? " selected" : ""}>${x ? words(x) : "any"}</option>`).join("");
  const cols = [{ label: "Contract", key: "contract_id" }, { label: "Kind", text: (x) => words(x.kind) }, { label: "Status", key: "status" },
    { label: "Effective", text: (x) => day(x.effective_at) }, { label: "Valid until", text: (x) => day(x.valid_until) }];
  if (terms) cols.push({ label: "Parties", text: (x) => (x.parties || []).join(", ") },
    { label: "Open invoices", num: true, text: (x) => { const open = Object.values(x.invoices || {}).filter((i) => i.status !== "paid"); return open.length ? `${open.length}: ${money(open.reduce((s, i) => s + i.amount_fen - i.settled_fen, 0))}` : "none"; } });
  const nav = (to) => { const h = new URLSearchParams(p); h.set("offset", to); if (state.asOf) h.set("as_of", state.asOf); return `#/contracts?${h}`; };
  view.innerHTML = `<h2>Contracts</h2>
    <form id="k-filter" class="filters">
      <label>Id${terms ? " or party" : ""} <input id="k-q" type="search" value="${esc(p.get("q") || "")}"></label>
      <label>Status <select id="k-status">${opt(["draft", "effective", "disputed", "terminated", "expired"], p.get("status"))}</select></label>
      <label>Kind <select id="k-kind">${opt(["cooperation", "member_agreement"], p.get("kind"))}</select></label>
      <button type="submit">Filter contracts</button></form>
    <p id="k-count" role="status">${c.total ? `Showing ${offset + 1}-${offset + c.items.length} of ${c.total}.` : "No contract matches."}</p>
    ${table(c.items, cols, { id: "contract-list" })}
    <p class="pager">${offset > 0 ? `<a href="${nav(Math.max(0, offset - limit))}">Previous ${limit} contracts</a>` : ""}
    ${c.next_offset !== null ? `<a href="${nav(c.next_offset)}">Next ${limit} contracts</a>` : ""}</p>`;
  $("k-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    const h = new URLSearchParams();
    for (const k of ["q", "status", "kind"]) { const v = $(`k-${k}`).value.trim(); if (v) h.set(k, v); }
    if (state.asOf) h.set("as_of", state.asOf);
    location.hash = `#/contracts${h.toString() ? "?" + h : ""}`;
  });
};

pages.tiers = async (view, r, n) => {
  const d = await api("GET", "/api/tiers/distribution");
  if (!current(n)) return;
  const rows = Object.entries(d).map(([tier, v]) => ({ tier, members: v.members, "active VIP": v.active_vip }));
  view.innerHTML = `<h2>Tier distribution</h2>
    ${barChart(rows.map((x) => ({ label: x.tier, values: x })), ["members", "active VIP"], "Members and active VIPs per tier", (v) => String(v))}
    ${table(rows, [{ label: "Tier", key: "tier" }, { label: "Members", key: "members", num: true }, { label: "Active VIP", key: "active VIP", num: true }], { id: "tier-table" })}`;
};

// -- session, navigation, preferences -----------------------------------------------------

function showAsOf() {
  const banner = $("asof-banner");
  banner.hidden = !state.asOf;
  banner.textContent = state.asOf ? `Showing the state as of ${when(state.asOf)} (${state.zone}). Actions are off.` : "";
  if (state.asOf && $("asof") && !$("asof").value) $("asof").value = localOf(new Date(state.asOf));
}

function signOut(message) {
  clearTimeout(state.timer);
  sessionStorage.removeItem("vip-token");
  state.token = null; state.me = null;
  $("nav").hidden = true; $("prefs").hidden = true; $("signout").hidden = true; $("who").textContent = "";
  $("asof-banner").hidden = true;
  $("view").innerHTML = `<section id="signin"><h2>Sign in</h2><form id="signin-form">
    <label for="token">API key</label> <input id="token" type="password" autocomplete="off" required>
    <button type="submit">Sign in</button><p id="signin-msg" class="msg" role="status"></p></form></section>`;
  bindSignIn();
  say($("signin-msg"), message || "");
}

async function signIn(token) {
  state.token = token;
  try { state.me = await api("GET", "/api/me"); } catch (e) { if ($("signin-msg")) say($("signin-msg"), e.message); return; }
  sessionStorage.setItem("vip-token", token);
  $("who").textContent = `${state.me.subject} (${state.me.role})`;
  $("tabs").innerHTML = SCREENS.filter((s) => can(s.perm)).map((s) => `<li><a href="#/${s.hash}" data-screen="${s.hash}">${esc(s.label)}</a></li>`).join("");
  $("nav").hidden = false; $("prefs").hidden = false; $("signout").hidden = false;
  $("asof-box").hidden = !["auditor", "admin"].includes(state.me.role);
  if (!localStorage.getItem("vip-zone")) state.zone = state.me.zone || "Asia/Shanghai";
  if (![...$("zone").options].some((o) => o.value === state.zone)) $("zone").add(new Option(state.zone));
  $("zone").value = state.zone;
  if (!route().name) go(home()); else render();
}

function bindSignIn() {
  const f = $("signin-form");
  if (f) f.addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
}

bindSignIn();
$("signout").addEventListener("click", () => { signOut("Signed out."); history.replaceState(null, "", location.pathname); });
$("zone").addEventListener("change", () => { state.zone = $("zone").value; localStorage.setItem("vip-zone", state.zone); render(); });
$("prefs").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("asof").value;
  if (!v) return;
  const at = instantOf(v.length === 16 ? `${v}:00` : v).toISOString();
  const r = route(); r.params.set("as_of", at);
  location.hash = `#/${location.hash.replace(/^#\/?/, "").split("?")[0]}?${r.params}`;
});
$("asof-clear").addEventListener("click", () => {
  $("asof").value = "";
  const r = route(); r.params.delete("as_of");
  location.hash = `#/${location.hash.replace(/^#\/?/, "").split("?")[0]}${r.params.toString() ? "?" + r.params : ""}`;
});
window.addEventListener("hashchange", render);
if (state.token) signIn(state.token);
