// The VIP console: plain JS over the HTTP API; no libraries, no network beyond this server.
"use strict";
const state = { token: sessionStorage.getItem("vip-token"), me: null, tab: "member", timer: null };
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "-").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const fen = (n) => (n / 100).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function say(text, ok) { $("message").textContent = text || ""; $("message").className = ok ? "ok" : ""; }

async function api(method, path, body, headers) {
  const init = { method, headers: { Authorization: `Bearer ${state.token}`, ...(headers || {}) } };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, init);
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) { throw new Error(data && data.detail ? `${r.status}: ${data.detail}` : `HTTP ${r.status}`); }
  return data;
}

function table(rows, columns, attrs) {
  if (!rows.length) return "<p class='hint'>(none)</p>";
  const head = columns.map((c) => `<th>${esc(typeof c === "string" ? c : c.label)}</th>`).join("");
  const body = rows.map((r) => `<tr ${attrs ? attrs(r) : ""}>` + columns.map((c) =>
    `<td>${c.html ? c.html(r) : esc(r[c.key || c])}</td>`).join("") + "</tr>").join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const COLOURS = ["#6b4fbb", "#e08a2c", "#2c9ae0", "#3aa357", "#c0392b", "#888"];

// Bars in groups (one group a label, one bar a series), drawn as inline SVG.
function barChart(groups, series, id, format) {
  if (!groups.length) return "<p class='hint'>(no data)</p>";
  const w = 700, h = 240, pad = 40, base = h - 40;
  const values = groups.flatMap((g) => series.map((s) => g.values[s] || 0));
  const max = Math.max(...values.map(Math.abs), 1);
  const gw = Math.min((w - pad) / groups.length, 60 * series.length + 20), bw = (gw - 10) / series.length;
  let out = "";
  groups.forEach((g, i) => {
    const gx = pad + i * gw;
    series.forEach((s, k) => {
      const v = g.values[s] || 0, bh = (base - 20) * (Math.abs(v) / max), x = gx + k * bw, y = v >= 0 ? base - bh : base;
      out += `<rect class="bar" data-series="${esc(s)}" x="${x + 2}" y="${y}" width="${bw - 4}" height="${bh}" fill="${COLOURS[k % COLOURS.length]}"><title>${esc(g.label)} ${esc(s)}: ${esc(format(v))}</title></rect>` +
        `<text x="${x + bw / 2}" y="${y - 3}" text-anchor="middle">${esc(format(v))}</text>`;
    });
    out += `<text x="${gx + gw / 2 - 5}" y="${base + 15}" text-anchor="middle">${esc(g.label)}</text>`;
  });
  const legend = series.length > 1 ? series.map((s, k) =>
    `<rect x="${pad + k * 120}" y="${h - 14}" width="10" height="10" fill="${COLOURS[k % COLOURS.length]}"/><text x="${pad + k * 120 + 14}" y="${h - 5}">${esc(s)}</text>`).join("") : "";
  return `<svg id="${id}" width="${w}" height="${h}" role="img" aria-label="chart">` +
    `<line x1="${pad}" y1="${base}" x2="${w}" y2="${base}" stroke="#999"/>${out}${legend}</svg>`;
}

// -- tabs ---------------------------------------------------------------------------------

const loaders = {
  async member() {
    const id = $("member-id").value.trim();
    if (!id) return;
    const t = await api("GET", `/api/members/${encodeURIComponent(id)}/tier`);
    $("member-tier").innerHTML = table([t], ["tier", "effective_tier", "vip_status", "since",
      { label: "window spend (CNY)", html: (r) => fen(r.window_spend_fen) }, "window_points", "active_months",
      "policy_version"]) + `<p class="why" id="why">${esc(t.why.summary)}</p>`;
    const cs = await api("GET", `/api/complaints?member_id=${encodeURIComponent(id)}&limit=50`);
    $("member-complaints").innerHTML = table(cs.items, ["complaint_id", "status", "tier", "channel",
      "category", "filed_at", "assignee"]);
    try {
      const h = await api("GET", `/api/history/member/${encodeURIComponent(id)}?limit=100`);
      $("member-history").innerHTML = table(h.items, ["version", "at", "type", "actor", "policy_version"]);
    } catch (e) { $("member-history").innerHTML = `<p class="hint">${esc(e.message)}</p>`; }
  },
  async board() {
    const b = await api("GET", "/api/breaches?limit=200");
    $("board-table").innerHTML = table(b.items, ["complaint_id", "member_id", "tier", "clock",
      { label: "state", html: (r) => `<span class="state">${esc(r.state)}</span>` }, "deadline",
      { label: "left / overdue", html: (r) => r.overdue_s !== undefined ? `-${Math.round(r.overdue_s / 60)} min` : `${Math.round(r.left_s / 60)} min` },
      "assignee", "status",
      { label: "", html: (r) => `<button data-ack="${esc(r.complaint_id)}">Acknowledge</button>` }],
      (r) => `data-complaint="${esc(r.complaint_id)}" data-clock="${esc(r.clock)}" data-state="${esc(r.state)}"`);
    $("board-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  },
  async revenue() {
    const [rev, l] = [await api("GET", "/api/revenue"), await api("GET", "/api/ledger")];
    const months = rev.CNY || {};
    const parties = [...new Set(Object.values(months).flatMap((p) => Object.keys(p)))].sort((a, b) =>
      (a === "platform" ? -1 : b === "platform" ? 1 : a.localeCompare(b)));
    $("revenue-chart").innerHTML = barChart(Object.entries(months).map(([m, values]) => ({ label: m, values })),
      parties, "revenue-svg", (v) => fen(v));
    const balances = Object.entries(l.by_party).filter(([p]) => !/^M\d/.test(p)).map(([party, acc]) => ({ party, ...acc }));
    const cols = [...new Set(balances.flatMap((p) => Object.keys(p).filter((k) => k !== "party")))].sort();
    $("revenue-parties").innerHTML = table(balances, ["party", ...cols.map((c) => ({ label: c, html: (r) => r[c] === undefined ? "-" : fen(r[c]) }))]);
    $("trial").innerHTML = table(Object.entries(l.trial_balance).map(([cur, t]) => ({ currency: cur, ...t })),
      ["currency", { label: "debits", html: (r) => fen(r.debits) }, { label: "credits", html: (r) => fen(r.credits) }, "balanced"]);
  },
  async contracts() {
    const o = await api("GET", "/api/overdue");
    $("overdue-invoices").innerHTML = table(o.invoices, ["contract_id", "invoice", "payer", "due_at",
      { label: "outstanding", html: (r) => fen(r.outstanding_fen) }, "currency",
      { label: "", html: (r) => `<button data-settle="${esc(r.contract_id)}|${esc(r.invoice)}|${r.outstanding_fen}|${esc(r.currency)}">Settle</button>` }],
      (r) => `data-invoice="${esc(r.invoice)}"`);
    $("overdue-milestones").innerHTML = table(o.milestones, ["contract_id", "milestone", "title", "due_at"]);
    const c = await api("GET", "/api/contracts?limit=200");
    $("contract-list").innerHTML = table(c.items, ["contract_id", "kind", "status", "valid_until",
      { label: "milestones", html: (r) => Object.entries(r.milestones || {}).map(([k, m]) => `${esc(k)}: ${esc(m.status || "open")} (due ${esc(m.due_at)})`).join("<br>") },
      { label: "invoices", html: (r) => Object.entries(r.invoices || {}).map(([k, i]) => `${esc(k)}: ${esc(i.status)} ${fen(i.amount_fen - i.settled_fen)} open`).join("<br>") }]);
  },
  async tiers() {
    const d = await api("GET", "/api/tiers/distribution");
    $("tier-chart").innerHTML = barChart(Object.entries(d).map(([t, v]) => ({ label: t, values: { members: v.members, "active VIP": v.active_vip } })),
      ["members", "active VIP"], "tier-svg", (v) => v);
    const now = new Date(state.me.now), rows = [];
    for (let k = 5; k >= 0; k--) {
      const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - k + 1, 1) - 1000);
      const at = end > now ? now : end;
      const dist = await api("GET", `/api/tiers/distribution?as_of=${encodeURIComponent(at.toISOString())}`);
      rows.push({ month: at.toISOString().slice(0, 7), ...Object.fromEntries(Object.entries(dist).map(([t, v]) => [t, v.members])) });
    }
    $("tier-trend").innerHTML = table(rows, ["month", ...Object.keys(d)]);
  },
};

async function show(tab) {
  state.tab = tab;
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== tab; });
  document.querySelectorAll("nav button[data-tab]").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab));
  clearInterval(state.timer);
  try { await loaders[tab](); } catch (e) { say(e.message); }
  if (tab === "board") {
    state.timer = setInterval(() => loaders.board().catch((e) => say(e.message)), 2000);
  }
}

async function signIn(token) {
  state.token = token;
  try {
    state.me = await api("GET", "/api/whoami");
  } catch (e) {
    sessionStorage.removeItem("vip-token"); say(e.message); return;
  }
  sessionStorage.setItem("vip-token", token);
  $("who").textContent = `${state.me.subject} (${state.me.role})`;
  $("signin").hidden = true; $("nav").hidden = false;
  say("");
  show(state.me.permissions.includes("complaint:read") ? "board" : "revenue");
}

// -- events -------------------------------------------------------------------------------

$("signin-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
$("signout").addEventListener("click", () => { sessionStorage.removeItem("vip-token"); location.reload(); });
document.querySelectorAll("nav button[data-tab]").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
$("member-form").addEventListener("submit", (e) => { e.preventDefault(); loaders.member().catch((err) => say(err.message)); });

$("complaint-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { complaint_id: $("c-id").value.trim(), member_id: $("member-id").value.trim(),
    channel: $("c-channel").value, category: $("c-category").value, severity: $("c-severity").value,
    description: $("c-description").value };
  try {
    const c = await api("POST", "/api/complaints", body, { "Idempotency-Key": `console-file-${body.complaint_id}` });
    say(`complaint ${c.complaint_id} filed (${c.tier} SLA)`, true);
    await loaders.member();
  } catch (err) { say(err.message); }
});

// What each complaint action sends: the text box is its one free field, if it has one.
const WORK = { ack: () => ({}), reply: () => ({}), close: () => ({}), assign: (t) => ({ assignee: t }),
  escalate: (t) => ({ reason: t }), wait: (t) => ({ reason: t }), resolve: (t) => ({ resolution: t }),
  rate: (t) => ({ score: Number(t) }), reopen: (t) => ({ reason: t }) };

$("work-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = $("w-id").value.trim(), action = $("w-action").value;
  try {
    const c = await api("POST", `/api/complaints/${encodeURIComponent(id)}/${action}`, WORK[action]($("w-text").value.trim()));
    say(`${id}: ${action} done, now ${c.status}`, true);
    $("w-text").value = "";
    if ($("member-id").value.trim()) await loaders.member();
  } catch (err) { say(err.message); }
});

document.addEventListener("click", async (e) => {
  const ack = e.target.dataset && e.target.dataset.ack;
  const settle = e.target.dataset && e.target.dataset.settle;
  try {
    if (ack) {
      await api("POST", `/api/complaints/${encodeURIComponent(ack)}/ack`, {});
      say(`${ack} acknowledged`, true); await loaders.board();
    } else if (settle) {
      const [contract, invoice, amount, currency] = settle.split("|");
      const pid = `console-${invoice}-${Date.now()}`;
      await api("POST", `/api/contracts/${encodeURIComponent(contract)}/pay`,
        { invoice_id: invoice, amount_fen: Number(amount), currency, payment_id: pid }, { "Idempotency-Key": pid });
      say(`invoice ${invoice} settled`, true); await loaders.contracts();
    }
  } catch (err) { say(err.message); }
});

if (state.token) signIn(state.token);
