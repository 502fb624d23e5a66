// auditrail console: one script for every page, no framework.
//
// Every page reads its whole state from its URL (the same parameter names
// as the JSON API), so a link shared opens the same view. Nothing is ever
// written with innerHTML: text from the trail goes into text nodes only.
"use strict";

const FILTER_FIELDS = [
  // [parameter, label, hint, repeated]
  ["cluster", "Cluster", "a, b", true],
  ["type", "Type", "any, kube, ee, access", false],
  ["from", "From", "now-7d or 2026-11-02T10:00:00Z", false],
  ["to", "To", "now", false],
  ["kind", "Kind", "NetworkPolicy, netpol", true],
  ["verb", "Verb", "create, patch", true],
  ["user", "User", "alice", true],
  ["code", "Code", "201, 403", true],
  ["namespace", "Namespace", "prod", false],
  ["name", "Name", "allow-dns", false],
  ["selector", "Selector", 'objectRef.apiGroup = "projectcalico.org"', false],
];
const FILTER_NAMES = FILTER_FIELDS.map((f) => f[0]);
const PAGE_SIZE = 50;

let csrfToken = "";

// ---- DOM and formatting helpers -------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function main() {
  return document.getElementById("main");
}

function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes);
}

// A time in UTC, with the local time on hover.
function time(ts) {
  if (!ts) return el("span", {}, "—");
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return el("span", {}, ts);
  const utc = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
  return el("time", { datetime: ts, title: "Local: " + d.toLocaleString() }, utc);
}

function errorBox(err) {
  return el("p", { class: "error", role: "alert" }, `${err.code || "ERROR"}: ${err.message || err}`);
}

function params() {
  return new URLSearchParams(window.location.search);
}

// `query` with `name` set to `value`.
function withParam(query, name, value) {
  const q = new URLSearchParams(query);
  q.set(name, value);
  return q;
}

function go(path, query) {
  document.body.dataset.ready = "";
  const q = query && query.toString();
  window.history.pushState({}, "", q ? `${path}?${q}` : path);
  route();
}

// ---- the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || `HTTP_${status}`;
  }
}

async function api(path, query, init) {
  const q = query ? `?${query.toString()}` : "";
  const response = await fetch(`/api/v1/${path}${q}`, {
    credentials: "same-origin",
    ...(init || {}),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    body = { message: `HTTP ${response.status}` };
  }
  if (!response.ok) {
    const err = new ApiError(response.status, body);
    if (response.status === 401 && window.location.pathname !== "/signin") {
      const next = window.location.pathname + window.location.search;
      go("/signin", new URLSearchParams({ next }));
      throw new Error("not signed in");
    }
    throw err;
  }
  return body;
}

async function send(method, path, body) {
  return api(path, null, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function loadSession() {
  const s = await api("session");
  csrfToken = s.csrfToken;
  const who = document.getElementById("who");
  if (s.signedIn) {
    who.replaceChildren(
      el("span", {}, "Signed in "),
      el("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
    );
  } else {
    who.replaceChildren(el("a", { href: "/signin" }, "Sign in"));
  }
}

async function signOut() {
  await send("DELETE", "session");
  await loadSession();
  go("/signin");
}

// The filter of the page's URL, as API parameters.
function filterQuery(from) {
  const q = new URLSearchParams();
  for (const [k, v] of from) if (FILTER_NAMES.includes(k) && v !== "") q.append(k, v);
  return q;
}

// ---- Timeline ----------------------------------------------------------------

function filterForm(current) {
  const inputs = FILTER_FIELDS.map(([name, label, hint, repeated]) => {
    const value = repeated ? current.getAll(name).join(", ") : current.get(name) || "";
    return el(
      "label",
      { class: name === "selector" ? "wide" : "" },
      el("span", {}, label),
      el("input", {
        name,
        value,
        placeholder: hint,
        autocomplete: "off",
        spellcheck: "false",
        "data-repeated": repeated ? "1" : null,
      }),
    );
  });
  const form = el(
    "form",
    { class: "filters", id: "filters" },
    inputs,
    el("div", { class: "actions" },
      el("button", { type: "submit" }, "Apply"),
      el("a", { href: "/timeline" }, "Clear")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const input of form.querySelectorAll("input")) {
      const v = input.value.trim();
      if (!v) continue;
      if (input.dataset.repeated) {
        for (const part of v.split(",").map((s) => s.trim()).filter(Boolean)) q.append(input.name, part);
      } else q.set(input.name, v);
    }
    go("/timeline", q);
  });
  return form;
}

// The histogram: bars over time; dragging across it selects a range.
function histogramView(h, query) {
  const buckets = h.buckets || [];
  const width = 1000;
  const height = 80;
  const box = el("div", { class: "histogram", id: "histogram" });
  const caption = el("p", { class: "muted" },
    `${h.total} events` + (buckets.length ? `; drag across the bars to select a time range` : ""));
  if (!buckets.length) {
    box.append(caption);
    return box;
  }
  const max = Math.max(1, ...buckets.map((b) => Number(b.count)));
  const w = width / buckets.length;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": `Events over time: ${h.total} in ${buckets.length} buckets`,
  });
  buckets.forEach((b, i) => {
    const bh = (Number(b.count) / max) * (height - 2);
    const rect = svg("rect", { x: i * w, y: height - bh, width: Math.max(w - 1, 1), height: bh, class: "bar" });
    const title = svg("title", {});
    title.textContent = `${b.start}: ${b.count}`;
    rect.append(title);
    chart.append(rect);
  });
  const band = svg("rect", { x: 0, y: 0, width: 0, height, class: "band" });
  chart.append(band);
  const intervalMs = parseFloat(h.interval) * 1000;
  const at = (ev) => {
    const r = chart.getBoundingClientRect();
    const i = Math.floor(((ev.clientX - r.left) / r.width) * buckets.length);
    return Math.min(Math.max(i, 0), buckets.length - 1);
  };
  let start = null;
  chart.addEventListener("mousedown", (ev) => {
    start = at(ev);
    ev.preventDefault();
  });
  chart.addEventListener("mousemove", (ev) => {
    if (start === null) return;
    const i = at(ev);
    band.setAttribute("x", Math.min(start, i) * w);
    band.setAttribute("width", (Math.abs(i - start) + 1) * w);
  });
  window.addEventListener("mouseup", (ev) => {
    if (start === null) return;
    const i = at(ev);
    const lo = Math.min(start, i);
    const hi = Math.max(start, i);
    start = null;
    const from = new Date(buckets[lo].start);
    const to = new Date(from.getTime() + (hi - lo + 1) * intervalMs);
    const q = new URLSearchParams(query);
    q.delete("pageToken");
    q.set("from", from.toISOString());
    q.set("to", to.toISOString());
    go("/timeline", q);
  }, { once: false });
  box.append(chart, caption);
  return box;
}

function eventRows(events) {
  return events.map((e) =>
    el("tr", {},
      el("td", { class: "time" }, time(e.stageTimestamp)),
      el("td", {}, el("a", { href: `/event/${e.id}`, class: "summary" }, e.summary || e.verb)),
      el("td", {}, e.user ? e.user.username : ""),
      el("td", {}, e.cluster)));
}

async function timelinePage() {
  const current = params();
  const query = filterQuery(current);
  const pageToken = current.get("pageToken") || "";
  const histogramSlot = el("div", { class: "histogram-slot" }, el("p", { class: "muted" }, "Counting…"));
  const listSlot = el("div", { class: "list-slot" }, el("p", { class: "muted" }, "Loading events…"));
  const exportLinks = el("p", { class: "exports" }, "Export: ",
    ["json", "ndjson", "yaml"].map((f) => {
      const q = new URLSearchParams(query);
      q.set("timeline", "true");
      q.set("format", f);
      return el("a", { href: `/api/v1/export?${q}`, download: `auditrail-export.${f}`, "data-format": f }, f.toUpperCase());
    }));
  show(el("h1", {}, "Timeline"), filterForm(current), histogramSlot, exportLinks, listSlot);

  const hq = new URLSearchParams(query);
  hq.set("timeline", "true");
  api("histogram", hq)
    .then(async (h) => {
      // Without a time range the histogram spans the oldest event to now;
      // where the events sit in a small part of it, draw that part alone
      // (a few times over, down to one-second buckets).
      for (let zooms = 0; zooms < 4 && !query.has("from") && !query.has("to"); zooms++) {
        const nonEmpty = h.buckets.map((b, i) => (Number(b.count) ? i : -1)).filter((i) => i >= 0);
        if (!nonEmpty.length || nonEmpty[nonEmpty.length - 1] - nonEmpty[0] + 1 >= h.buckets.length / 4) break;
        if (parseFloat(h.interval) <= 1) break;
        const zoom = new URLSearchParams(hq);
        const first = new Date(h.buckets[nonEmpty[0]].start);
        const last = new Date(h.buckets[nonEmpty[nonEmpty.length - 1]].start);
        zoom.set("from", first.toISOString());
        zoom.set("to", new Date(last.getTime() + parseFloat(h.interval) * 1000).toISOString());
        h = await api("histogram", zoom);
      }
      histogramSlot.replaceChildren(histogramView(h, query));
    })
    .catch((err) => histogramSlot.replaceChildren(errorBox(err)));

  const sq = new URLSearchParams(query);
  sq.set("timeline", "true");
  sq.set("pageSize", String(PAGE_SIZE));
  if (pageToken) sq.set("pageToken", pageToken);
  let page;
  try {
    page = await api("search", sq);
  } catch (err) {
    listSlot.replaceChildren(errorBox(err));
    return;
  }
  const total = `${page.totalHits}${page.totalHitsExact ? "" : "+"} events`;
  const nav = el("nav", { class: "pager", "aria-label": "Pages of events" },
    pageToken ? el("a", { href: `/timeline?${query}` }, "First page") : null,
    page.nextPageToken
      ? el("a", {
          href: `/timeline?${withParam(query, "pageToken", page.nextPageToken)}`,
          id: "next-page",
          rel: "next",
        }, "Next page")
      : el("span", { class: "muted" }, "Last page"));
  const table = el("table", { class: "events", id: "events" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Time (UTC)"),
      el("th", { scope: "col" }, "What"),
      el("th", { scope: "col" }, "User"),
      el("th", { scope: "col" }, "Cluster"))),
    el("tbody", {}, eventRows(page.events)));
  let body = el("div", { class: "scroll" }, table);
  if (!page.events.length) {
    const hints = el("ul", { id: "no-events-hints", class: "muted" });
    body = el("div", {}, el("p", { id: "no-events" }, "No events match."), hints);
    if (!pageToken) {
      emptyTimelineHints(query).then((found) =>
        hints.replaceChildren(...found.map((h) => el("li", {}, h))));
    }
  }
  listSlot.replaceChildren(el("p", { class: "muted", id: "total" }, total), body, nav);
}

// Why a timeline query found nothing, when the trail says: the matching
// events that are not changes (off the timeline), and those outside the
// chosen time range. An empty page never reads as an empty trail.
async function emptyTimelineHints(query) {
  const probe = new URLSearchParams(query);
  probe.delete("pageToken");
  probe.set("pageSize", "1");
  probe.set("exactTotal", "true");
  const count = async (params) => Number((await api("search", params)).totalHits) || 0;
  const offTimeline = new URLSearchParams(probe);
  offTimeline.set("timeline", "false");
  const probes = [
    count(offTimeline).then((n) => n > 0
      ? `${n} matching events are not on the timeline, which shows only changes and pod ` +
        "sessions (level RequestResponse, stage ResponseComplete, no dry runs)."
      : null),
  ];
  if (probe.has("from") || probe.has("to")) {
    const anyTime = new URLSearchParams(probe);
    anyTime.delete("from");
    anyTime.delete("to");
    anyTime.set("timeline", "true");
    probes.push(count(anyTime).then((n) => n > 0
      ? `${n} events on the timeline match outside the chosen time range.`
      : null));
  }
  const settled = await Promise.allSettled(probes);
  return settled.filter((r) => r.status === "fulfilled" && r.value).map((r) => r.value);
}

// ---- Event -------------------------------------------------------------------

async function eventPage(id) {
  show(el("h1", {}, "Event"), el("p", { class: "muted" }, "Loading…"));
  let answer;
  try {
    answer = await api(`events/${encodeURIComponent(id)}`);
  } catch (err) {
    show(el("h1", {}, "Event"), errorBox(err));
    return;
  }
  const e = answer.event;
  const ref = e.objectRef || {};
  const history = new URLSearchParams({
    cluster: e.cluster,
    resource: ref.resource || "",
    apiGroup: ref.apiGroup || "",
    namespace: ref.namespace || "",
    name: ref.name || "",
  });
  const copy = el("button", { type: "button", id: "copy" }, "Copy YAML");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(answer.yaml);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Copy failed: select the text instead";
    }
  });
  show(
    el("h1", {}, e.summary || "Event"),
    el("dl", { class: "facts" },
      el("dt", {}, "Time"), el("dd", {}, time(e.stageTimestamp)),
      el("dt", {}, "User"), el("dd", {}, e.user ? e.user.username : ""),
      el("dt", {}, "Cluster"), el("dd", {}, e.cluster),
      el("dt", {}, "Id"), el("dd", { class: "mono" }, e.id)),
    el("p", { class: "actions" },
      copy,
      el("a", { href: `/api/v1/events/${e.id}?download=json`, download: `event-${e.id}.json` }, "Download JSON"),
      el("a", { href: `/api/v1/events/${e.id}?download=yaml`, download: `event-${e.id}.yaml` }, "Download YAML"),
      ref.name ? el("a", { href: `/history?${history}`, id: "history-link" }, "History of this resource") : null),
    el("pre", { class: "yaml", id: "event-yaml", tabindex: "0" }, answer.yaml));
}

// ---- History -----------------------------------------------------------------

const HISTORY_FIELDS = [
  ["cluster", "Cluster"],
  ["resource", "Resource", "networkpolicies"],
  ["apiGroup", "API group", "networking.k8s.io"],
  ["namespace", "Namespace"],
  ["name", "Name"],
];

// A unified diff as two columns: removed lines left, added right, context
// on both.
function sideBySide(unified) {
  const rows = [];
  let left = [];
  let right = [];
  const flush = () => {
    const n = Math.max(left.length, right.length);
    for (let i = 0; i < n; i++) {
      rows.push([left[i] ?? null, right[i] ?? null, "change"]);
    }
    left = [];
    right = [];
  };
  for (const line of unified.split("\n")) {
    if (line.startsWith("---") || line.startsWith("+++")) continue;
    if (line.startsWith("@@")) {
      flush();
      rows.push([line, line, "hunk"]);
    } else if (line.startsWith("-")) left.push(line.slice(1));
    else if (line.startsWith("+")) right.push(line.slice(1));
    else {
      flush();
      if (line !== "" || rows.length) rows.push([line.slice(1), line.slice(1), "same"]);
    }
  }
  flush();
  return el("table", { class: "diff", id: "diff" },
    el("tbody", {}, rows.map(([l, r, kind]) =>
      el("tr", { class: kind },
        el("td", { class: l === null ? "empty" : kind === "change" ? "del" : "" }, l ?? ""),
        el("td", { class: r === null ? "empty" : kind === "change" ? "add" : "" }, r ?? "")))));
}

async function historyPage() {
  const current = params();
  const form = el("form", { class: "filters", id: "history-form" },
    HISTORY_FIELDS.map(([name, label, hint]) =>
      el("label", {}, el("span", {}, label),
        el("input", { name, value: current.get(name) || "", placeholder: hint || "", autocomplete: "off" }))),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Show history")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const input of form.querySelectorAll("input")) if (input.value.trim()) q.set(input.name, input.value.trim());
    go("/history", q);
  });
  const slot = el("div", {});
  show(el("h1", {}, "History"), form, slot);
  if (!current.get("resource") && !current.get("name")) {
    slot.append(el("p", { class: "muted" }, "Name a resource, or open one from an event."));
    return;
  }
  const q = new URLSearchParams();
  for (const [name] of HISTORY_FIELDS) q.set(name, current.get(name) || "");
  q.set("pageSize", "1000");
  let answer;
  try {
    answer = await api("history", q);
  } catch (err) {
    slot.replaceChildren(errorBox(err));
    return;
  }
  const versions = answer.versions;
  if (!versions.length) {
    slot.replaceChildren(el("p", { id: "no-versions" }, "No versions of this resource in the trail."));
    return;
  }
  const a = current.get("a") || (versions.length > 1 ? versions[versions.length - 2].eventId : versions[0].eventId);
  const b = current.get("b") || versions[versions.length - 1].eventId;
  const noise = current.get("noise") === "true";
  const pick = (side, id) => {
    const next = params();
    next.set(side, id);
    go("/history", next);
  };
  const table = el("table", { class: "versions", id: "versions" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Left"), el("th", { scope: "col" }, "Right"),
      el("th", { scope: "col" }, "Time (UTC)"), el("th", { scope: "col" }, "Change"),
      el("th", { scope: "col" }, "User"), el("th", { scope: "col" }, "resourceVersion"))),
    el("tbody", {}, versions.map((v) =>
      el("tr", {},
        el("td", {}, el("input", { type: "radio", name: "a", "aria-label": "left side", checked: v.eventId === a, onchange: () => pick("a", v.eventId) })),
        el("td", {}, el("input", { type: "radio", name: "b", "aria-label": "right side", checked: v.eventId === b, onchange: () => pick("b", v.eventId) })),
        el("td", {}, el("a", { href: `/event/${v.eventId}` }, time(v.time))),
        el("td", {}, v.deleted ? "deleted" : v.verb),
        el("td", {}, v.user),
        el("td", { class: "mono" }, v.resourceVersion)))));
  const toggle = el("label", { class: "toggle" },
    el("input", { type: "checkbox", id: "show-noise", checked: noise, onchange: (e) => {
      const next = params();
      if (e.target.checked) next.set("noise", "true");
      else next.delete("noise");
      go("/history", next);
    } }),
    " Show noisy metadata (managedFields, resourceVersion, timestamps)");
  const diffSlot = el("div", { id: "diff-slot" }, el("p", { class: "muted" }, "Diffing…"));
  slot.replaceChildren(
    el("p", { class: "muted" }, `${versions.length} versions of ${answer.kind || answer.resource} in ${answer.cluster}`),
    el("div", { class: "scroll" }, table), toggle, diffSlot);
  if (a === b) {
    diffSlot.replaceChildren(el("p", {}, "Pick two different versions to compare."));
    return;
  }
  try {
    const d = await api("diff", new URLSearchParams({ from: a, to: b, ignoreNoise: noise ? "false" : "true" }));
    diffSlot.replaceChildren(
      d.identical
        ? el("p", { id: "identical" }, noise ? "The two versions are identical." : "The two versions differ only in noisy metadata.")
        : el("div", { class: "scroll" }, sideBySide(d.unifiedDiff)),
      el("details", {}, el("summary", {}, "Unified diff"), el("pre", { class: "yaml", id: "unified" }, d.unifiedDiff)));
  } catch (err) {
    diffSlot.replaceChildren(errorBox(err));
  }
}

// ---- Reports -----------------------------------------------------------------

const TYPE_NAMES = {
  REPORT_TYPE_POLICY_AUDIT: "policy-audit",
  REPORT_TYPE_INVENTORY: "inventory",
  REPORT_TYPE_NETWORK_ACCESS: "network-access",
};

function bars(title, pairs) {
  const max = Math.max(1, ...pairs.map(([, n]) => Number(n)));
  const rowH = 22;
  const chart = svg("svg", { viewBox: `0 0 400 ${pairs.length * rowH}`, role: "img", "aria-label": title, class: "bars" });
  pairs.forEach(([label, n], i) => {
    const t = svg("text", { x: 0, y: i * rowH + 15, class: "label" });
    t.textContent = label;
    const r = svg("rect", { x: 170, y: i * rowH + 4, width: (Number(n) / max) * 180, height: 14, class: "bar" });
    const v = svg("text", { x: 175 + (Number(n) / max) * 180, y: i * rowH + 15, class: "value" });
    v.textContent = String(n);
    chart.append(t, r, v);
  });
  return el("figure", {}, el("figcaption", {}, title), chart);
}

function summaryCharts(summary) {
  if (!summary) return el("p", { class: "muted" }, "No summary yet.");
  if (summary.policyAudit) {
    const s = summary.policyAudit;
    return bars("Policy changes", [["created", s.created], ["modified", s.modified], ["deleted", s.deleted], ["total", s.total]]);
  }
  const s = summary.inventory || summary.networkAccess;
  if (!s) return el("p", { class: "muted" }, "No summary.");
  const c = s.endpoints || {};
  const pairs = [["endpoints", c.total], ["ingress protected", c.ingressProtected], ["egress protected", c.egressProtected]];
  if (summary.networkAccess) {
    pairs.push(["ingress from internet", c.ingressFromInternet], ["egress to internet", c.egressToInternet],
      ["ingress other ns", c.ingressFromOtherNamespaces], ["egress other ns", c.egressToOtherNamespaces]);
  }
  return bars("Endpoints", pairs);
}

function downloads(report) {
  const type = TYPE_NAMES[report.reportType];
  const parts = type === "policy-audit" ? ["all", "summary", "events"] : ["all", "summary", "endpoints", "namespaces"];
  return el("ul", { class: "downloads" }, parts.map((part) =>
    el("li", {}, `${part}: `, (part === "events" ? ["json", "csv", "yaml"] : part === "all" ? ["json"] : ["json", "csv"]).map((format) =>
      el("a", { href: `/api/v1/reports/${encodeURIComponent(report.id)}/download?part=${part}&format=${format}`, download: "" }, format.toUpperCase())))));
}

async function reportsPage() {
  const current = params();
  const defsSlot = el("div", {}, el("p", { class: "muted" }, "Loading definitions…"));
  const runsSlot = el("div", {}, el("p", { class: "muted" }, "Loading reports…"));
  const detailSlot = el("div", { id: "report-detail" });
  show(el("h1", {}, "Reports"), el("h2", {}, "Definitions"), defsSlot, el("h2", {}, "Runs"), runsSlot, detailSlot);
  try {
    const defs = await api("reports/definitions", new URLSearchParams({ pageSize: "1000" }));
    const message = el("p", { role: "status" });
    defsSlot.replaceChildren(defs.definitions.length
      ? el("div", { class: "scroll" }, el("table", { id: "definitions" },
          el("thead", {}, el("tr", {}, ["Name", "Type", "Schedule (UTC)", "Cluster", "Next run", ""].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, defs.definitions.map((d) => el("tr", {},
            el("td", {}, el("a", { href: `/reports?definition=${encodeURIComponent(d.name)}` }, d.name)),
            el("td", {}, TYPE_NAMES[d.reportType] || d.reportType),
            el("td", { class: "mono" }, d.schedule + (d.suspend ? " (suspended)" : "")),
            el("td", {}, d.cluster),
            el("td", {}, time(d.nextRunTime)),
            el("td", {}, el("button", { type: "button", onclick: async () => {
              try {
                // The last 24 hours, to the minute.
                const end = new Date(Math.floor(Date.now() / 60000) * 60000);
                const start = new Date(end.getTime() - 86400000);
                const run = await send("POST", "reports/run", {
                  definition: d.name, start: start.toISOString(), end: end.toISOString(),
                });
                message.textContent = `Report ${run.reportId} queued.`;
              } catch (err) {
                message.replaceChildren(errorBox(err));
              }
            } }, "Run for the last 24 h")))))), message)
      : el("p", {}, "No report definitions. Define one with `auditrail report define`."));
  } catch (err) {
    defsSlot.replaceChildren(errorBox(err));
  }
  const q = new URLSearchParams({ pageSize: "100" });
  if (current.get("definition")) q.set("definition", current.get("definition"));
  let runs;
  try {
    runs = await api("reports", q);
  } catch (err) {
    runsSlot.replaceChildren(errorBox(err));
    return;
  }
  runsSlot.replaceChildren(runs.reports.length
    ? el("div", { class: "scroll" }, el("table", { id: "runs" },
        el("thead", {}, el("tr", {}, ["Report", "Definition", "Interval (UTC)", "Status", "Generated"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, runs.reports.map((r) => el("tr", {},
          el("td", {}, el("a", { href: `/reports?${withParam(current, "report", r.id)}` }, r.id.slice(0, 12))),
          el("td", {}, r.definitionName),
          el("td", {}, time(r.interval && r.interval.start), " – ", time(r.interval && r.interval.end)),
          el("td", { class: r.status === "REPORT_STATUS_FAILED" ? "bad" : "" }, (r.status || "").replace("REPORT_STATUS_", "").toLowerCase()),
          el("td", {}, time(r.generatedTime)))))))
    : el("p", {}, "No reports yet."));
  const chosen = current.get("report") || (runs.reports[0] && runs.reports[0].id);
  const report = runs.reports.find((r) => r.id === chosen);
  if (report) {
    detailSlot.replaceChildren(
      el("h2", {}, `Report ${report.definitionName}`),
      report.error ? errorBox({ code: "FAILED", message: report.error }) : null,
      (report.warnings || []).map((w) => el("p", { class: "warning" }, w)),
      summaryCharts(report.summary),
      el("h3", {}, "Downloads"), downloads(report));
  }
}

// ---- Ingest ------------------------------------------------------------------

function bytes(n) {
  const v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i ? x.toFixed(1) : x} ${units[i]}`;
}

function part(answer, render) {
  if (answer && answer.error) return errorBox(answer.error);
  return render(answer);
}

async function ingestPage() {
  show(el("h1", {}, "Ingest"), el("p", { class: "muted" }, "Loading…"));
  let answer;
  try {
    answer = await api("ingest");
  } catch (err) {
    show(el("h1", {}, "Ingest"), errorBox(err));
    return;
  }
  show(
    el("h1", {}, "Ingest"),
    el("h2", {}, "Sources"),
    part(answer.status, (s) => el("div", { class: "scroll" }, el("table", { id: "sources" },
      el("thead", {}, el("tr", {}, ["Source", "State", "Events read", "Lag", "Last event", "Error"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, s.sources.map((src) => el("tr", {},
        el("td", {}, src.name),
        el("td", {}, (src.state || "").replace("SOURCE_STATE_", "").toLowerCase()),
        el("td", {}, src.eventsRead),
        el("td", {}, `${Number(src.lagSeconds).toFixed(1)} s`),
        el("td", {}, time(src.lastEventTime)),
        el("td", { class: src.error ? "bad" : "" }, src.error))))))),
    el("h2", {}, "Dead letters"),
    part(answer.deadLetters, (d) => el("div", {},
      el("p", { id: "dead-letter-total" }, `${d.total} lines could not be read`),
      d.deadLetters.length ? el("div", { class: "scroll" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Time", "Source", "Where", "Reason"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, d.deadLetters.map((l) => el("tr", {},
          el("td", {}, time(l.time)), el("td", {}, l.source),
          el("td", { class: "mono" }, l.file ? `${l.file}:${l.offset}` : `${l.logStream} ${l.eventId}`),
          el("td", {}, l.reason)))))) : null)),
    el("h2", {}, "Store"),
    part(answer.store, (s) => el("div", { class: "scroll" }, el("table", { id: "store" },
      el("thead", {}, el("tr", {}, ["Cluster", "Type", "Events", "Size", "Oldest", "Newest"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, s.stats.map((st) => el("tr", {},
        el("td", {}, st.cluster),
        el("td", {}, (st.type || "").replace("EVENT_TYPE_", "").toLowerCase()),
        el("td", {}, st.eventCount),
        el("td", {}, bytes(st.sizeBytes)),
        el("td", {}, time(st.oldest)),
        el("td", {}, time(st.newest)))))))));
}

// ---- Sign in -----------------------------------------------------------------

function signInPage() {
  const next = params().get("next") || "/timeline";
  const message = el("div", { role: "status" });
  const input = el("input", { type: "password", name: "token", id: "token", autocomplete: "off", required: true });
  const form = el("form", { class: "signin", id: "signin" },
    el("label", { for: "token" }, "Bearer token"),
    input,
    el("p", { class: "muted" },
      "A token from the server's token file, or in Kubernetes a service-account or OIDC token (kubectl create token NAME). It stays on the console's server; the browser keeps only a session cookie."),
    el("button", { type: "submit" }, "Sign in"),
    message);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const s = await send("POST", "session", { token: input.value });
      csrfToken = s.csrfToken;
      await loadSession();
      // Only a path of the console itself.
      go(next.startsWith("/") && !next.startsWith("//") ? next.split("?")[0] : "/timeline",
        next.includes("?") ? new URLSearchParams(next.split("?")[1]) : null);
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  });
  show(el("h1", {}, "Sign in"), form);
  input.focus();
}

// ---- Routing -----------------------------------------------------------------

function route() {
  const path = window.location.pathname;
  for (const a of document.querySelectorAll("nav a")) {
    if (path.startsWith(`/${a.dataset.page}`)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  let page;
  if (path === "/" || path === "/timeline") page = timelinePage();
  else if (path.startsWith("/event/")) page = eventPage(decodeURIComponent(path.slice("/event/".length)));
  else if (path === "/history") page = historyPage();
  else if (path === "/reports") page = reportsPage();
  else if (path === "/ingest") page = ingestPage();
  else if (path === "/signin") page = Promise.resolve(signInPage());
  else page = Promise.resolve(show(el("h1", {}, "Not found")));
  page
    .catch((err) => {
      if (err instanceof ApiError) show(errorBox(err));
    })
    .finally(() => {
      // A page that sent the browser elsewhere (to sign in) is not the one
      // shown.
      if (window.location.pathname !== path) return;
      document.body.dataset.ready = path;
      // When the first page of this load has its answer on screen (what
      // `cargo xtask bench console` reads).
      if (!performance.getEntriesByName("auditrail-first-page").length) {
        performance.mark("auditrail-first-page");
      }
    });
}

// Links inside the console navigate without reloading.
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a");
  if (!a || a.hasAttribute("download") || a.target || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href, window.location.href);
  if (url.origin !== window.location.origin || url.pathname.startsWith("/api/")) return;
  e.preventDefault();
  document.body.dataset.ready = "";
  window.history.pushState({}, "", url.pathname + url.search);
  route();
});
window.addEventListener("popstate", route);
document.addEventListener("DOMContentLoaded", () => {
  loadSession().catch(() => {}).finally(route);
});
