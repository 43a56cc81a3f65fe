// fsaudit HTML report: draws the report document embedded in #fsaudit-data (schema
// fsaudit.report/1 and its `timeline` section, docs/outputs.md). No libraries, no network.
"use strict";
(function () {
  const started = performance.now();
  const DATA = JSON.parse(document.getElementById("fsaudit-data").textContent);
  const R = DATA.report;
  const TL = R.timeline || null;
  // fsaudit crash: its report (fsaudit.crash/1, without the findings) when the page is crash's.
  const CRASH = R.crash || null;
  const RANK = { error: 0, warning: 1, info: 2 };
  const ROW = 26, LABEL_W = 300, AXIS_H = 24, RIGHT = 24;

  // Text. Paths and argv are the traced program's: control characters and undecodable
  // bytes are shown escaped, as the text summary shows them (fsaudit.printable).
  const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const NAMED = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e" };
  function printable(s) {
    if (s === null || s === undefined) return "";
    return String(s).replace(UNPRINTABLE, (c) => {
      if (NAMED[c]) return NAMED[c];
      const code = c.charCodeAt(0);
      if (code >= 0xdc80 && code <= 0xdcff) return "\\x" + (code - 0xdc00).toString(16).padStart(2, "0");
      return code < 0x100 ? "\\x" + code.toString(16).padStart(2, "0") : "\\u" + code.toString(16).padStart(4, "0");
    });
  }
  const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  function esc(s) { return String(s).replace(/[&<>"']/g, (c) => ENTITIES[c]); }
  function text(s) { return esc(printable(s)); }
  function rel(path) {
    if (!path) return "";
    const cwd = R.cwd;
    if (cwd && path === cwd) return ".";
    if (cwd && path.startsWith(cwd.endsWith("/") ? cwd : cwd + "/")) return path.slice(cwd.length + (cwd.endsWith("/") ? 0 : 1));
    return path;
  }
  function dirName(path) { const r = rel(path); return r.endsWith("/") ? r : r + "/"; }
  function num(n) { return n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"); }
  function bytes(n) {
    if (n === null || n === undefined) return "-";
    if (n < 1024) return n + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 ? 1 : 0) + " " + units[i];
  }
  function us(n) { return n === null || n === undefined ? "-" : n < 1000 ? n + " µs" : (n / 1000).toFixed(n < 10000 ? 2 : 1) + " ms"; }
  function secs(s) {
    if (s === null || s === undefined) return "-";
    const a = Math.abs(s);
    const short = (v) => String(Number(v.toPrecision(3)));
    if (a < 1e-3) return short(s * 1e6) + " µs";
    if (a < 1) return short(s * 1e3) + " ms";
    return (a < 100 ? short(s) : s.toFixed(0)) + " s";
  }
  function at(t) { return t === null || t === undefined ? "-" : "t=" + t.toFixed(6) + " s"; }
  function plural(n, word, many) { return num(n) + " " + (n === 1 ? word : many || word + "s"); }
  function exitText(exit) {
    if (!exit) return null;
    if (exit.signal) return "signal " + exit.signal;
    return "exit " + exit.code;
  }
  function el(id) { return document.getElementById(id); }

  // Findings: where each is pinned (its latest evidence: the call that fired it).
  const findings = R.findings;
  const groups = R.groups;
  const groupById = {};
  groups.forEach((g) => { groupById[g.id] = g; });
  function pinTime(f) {
    let t = null;
    for (const e of f.evidence || []) if (typeof e.t === "number" && (t === null || e.t > t)) t = e.t;
    if (t === null) t = TL && TL.end !== null ? TL.end : R.duration_s;
    return t;
  }
  const processEntries = {};
  for (const p of R.processes) (processEntries[p.pid] = processEntries[p.pid] || []).push(p);
  function processName(pid) {
    const entries = processEntries[pid];
    const p = entries && entries[entries.length - 1];
    const argv0 = p && p.argv && p.argv.length ? p.argv[0] : p && p.exe ? p.exe : "process";
    return argv0.split("/").pop() || argv0;
  }

  // Lanes, in the digest's order (named by findings first, then the busiest).
  const lanes = [];
  const fileByPath = {}, dirtyAtEnd = {};
  for (const f of R.files) dirtyAtEnd[f.path] = f.dirty_bytes_at_end;
  let maxBytes = 1;
  if (TL) {
    if (TL.lost && TL.lost.length) lanes.push({ id: "lost", kind: "lost", label: "events lost", title: "events the kernel could not deliver", marks: TL.lost });
    for (const f of TL.files) {
      const lane = { id: "f" + lanes.length, kind: f.dir ? "dir" : "file", key: f.path, label: f.dir ? dirName(f.path) : rel(f.path),
                     marks: f.marks, data: f, rank: null, pins: [] };
      for (const m of f.marks) if (m.kind === "write" && m.bytes > maxBytes) maxBytes = m.bytes;
      fileByPath[f.path] = lane;
      lanes.push(lane);
    }
  }
  const procByPid = {};
  if (TL) {
    for (const p of TL.processes) {
      const lane = { id: "p" + p.pid, kind: "process", key: p.pid, label: "pid " + p.pid + " " + processName(p.pid),
                     marks: p.marks, data: p, rank: null, pins: [] };
      procByPid[p.pid] = lane;
      lanes.push(lane);
    }
  }
  let otherLane = null;
  findings.forEach((f, i) => {
    const lane = fileByPath[f.path] || fileByPath[f.target_path] || procByPid[f.pid] || (otherLane = otherLane ||
      { id: "other", kind: "other", label: TL ? "findings on lanes not drawn" : "findings", marks: [], rank: null, pins: [] });
    lane.pins.push(i);
    const rank = RANK[f.severity];
    if (lane.rank === null || rank < lane.rank) lane.rank = rank;
    for (const path of [f.path, f.target_path]) {
      const other = fileByPath[path];
      if (other && (other.rank === null || rank < other.rank)) other.rank = rank;
    }
  });
  if (otherLane) lanes.unshift(otherLane);

  // View state.
  const t0 = TL && TL.start !== null ? TL.start : 0;
  const t1 = TL && TL.end !== null ? Math.max(TL.end, t0) : Math.max(R.duration_s, t0);
  // The whole run, with a margin for the marks at its ends.
  const pad = Math.max(t1 - t0, 1e-4) * 0.03;
  const whole = [t0 - pad, Math.max(t1, t0 + 1e-4) + pad];
  const state = { view: whole.slice(), filter: "", flaggedOnly: false, processes: true, selected: null, crash: null };

  function visibleLanes() {
    const filter = state.filter.toLowerCase();
    return lanes.filter((lane) => {
      if (lane.kind !== "process" && lane.kind !== "file" && lane.kind !== "dir") return true;
      if (lane.kind === "process" && !state.processes) return false;
      if (state.flaggedOnly && lane.rank === null) return false;
      return !filter || lane.label.toLowerCase().includes(filter) || String(lane.key).toLowerCase().includes(filter);
    });
  }

  function fitLabel(label) {
    const max = Math.floor((LABEL_W - 18) / 6.7);
    return label.length <= max ? label : "…" + label.slice(label.length - max + 1);
  }

  function markTitle(m, lane) {
    const parts = [];
    const what = m.kind === "entry" ? "directory entries changed" : m.kind;
    parts.push((m.count > 1 ? num(m.count) + " × " : "") + what + (m.error ? " failed: " + m.error : "") + (m.injected ? " (injected)" : ""));
    if (m.bytes) parts.push(bytes(m.bytes));
    if (m.latency_us !== undefined) parts.push((m.count > 1 ? "slowest " : "") + us(m.latency_us));
    if (m.to !== undefined) parts.push("to " + (m.to === null ? "several names" : rel(m.to)));
    if (m.from !== undefined) parts.push("from " + (m.from === null ? "several names" : rel(m.from)));
    parts.push(m.end !== undefined ? at(m.t) + " to " + m.end.toFixed(6) + " s" : at(m.t));
    if (m.pid !== null && m.pid !== undefined) parts.push("pid " + m.pid);
    if (m.count > 1 && lane && lane.data && lane.data.bucket_s) parts.push("merged in buckets of " + secs(lane.data.bucket_s));
    return printable(parts.join(" · "));
  }

  function ticks(v0, v1, width) {
    const span = v1 - v0;
    const target = Math.max(2, Math.floor(width / 110));
    const raw = span / target;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    for (let n = Math.ceil(v0 / step); n * step <= v1 + step * 1e-9; n++) out.push(n * step);
    return { ticks: out, step };
  }

  // An axis label: in the unit the step calls for, with as many decimals as it needs.
  function tickLabel(t, step) {
    if (t === 0) return "0";
    const [unit, factor] = step < 1e-3 ? ["µs", 1e6] : step < 1 ? ["ms", 1e3] : ["s", 1];
    const decimals = Math.max(0, -Math.floor(Math.log10(step * factor) + 1e-9));
    return (t * factor).toFixed(decimals) + " " + unit;
  }

  // The drawing: one SVG string for the axis, one for the lanes (a few thousand elements).
  function render() {
    const box = el("timeline");
    const width = Math.max(600, box.clientWidth || 1000);
    const plotW = width - LABEL_W - RIGHT;
    const [v0, v1] = state.view;
    const scale = plotW / (v1 - v0);
    const X = (t) => LABEL_W + (t - v0) * scale;
    const inView = (m) => (m.end !== undefined ? m.end : m.t) >= v0 && m.t <= v1;
    const shown = visibleLanes();
    const rows = [];     // [lane or section title]
    let lastSection = null;
    for (const lane of shown) {
      const section = lane.kind === "process" ? "Processes" : lane.kind === "file" || lane.kind === "dir" ? "Files" : null;
      if (section && section !== lastSection) { rows.push({ section }); lastSection = section; }
      rows.push(lane);
    }
    const yOf = {};
    rows.forEach((row, i) => { if (row.key !== undefined) yOf[row.kind === "process" ? "p" + row.key : "f" + row.key] = i * ROW; });
    const height = rows.length * ROW + 4;
    const out = [];
    const axis = [];
    axis.push(`<svg class="axis" width="${width}" height="${AXIS_H}" viewBox="0 0 ${width} ${AXIS_H}">`);
    const grid = [];
    const scaleTicks = ticks(v0, v1, plotW);
    for (const t of scaleTicks.ticks) {
      const x = X(t).toFixed(1);
      axis.push(`<line x1="${x}" x2="${x}" y1="${AXIS_H - 6}" y2="${AXIS_H}"/><text x="${x}" y="${AXIS_H - 9}" text-anchor="middle">${esc(tickLabel(t, scaleTicks.step))}</text>`);
      grid.push(`<line x1="${x}" x2="${x}" y1="0" y2="${height}"/>`);
    }
    axis.push(`<text x="4" y="${AXIS_H - 9}">${esc(plural(shown.filter((l) => l.kind === "file" || l.kind === "dir").length, "file lane"))}</text></svg>`);
    out.push(`<svg id="lanes" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`);
    out.push(`<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#7b4fb8"/></marker>`);
    out.push(`<clipPath id="plot"><rect x="${LABEL_W}" y="0" width="${plotW}" height="${height}"/></clipPath></defs>`);
    rows.forEach((row, i) => {
      const y = i * ROW;
      if (row.section) {
        out.push(`<text class="section" x="4" y="${y + 17}">${esc(row.section)}</text>`);
        return;
      }
      out.push(`<rect class="lane-bg${i % 2 ? " odd" : ""}" x="0" y="${y}" width="${width}" height="${ROW}"/>`);
      if (row.rank !== null && row.rank !== undefined) {
        const sev = ["error", "warning", "info"][row.rank];
        out.push(`<rect class="flag ${sev}" x="0" y="${y + 2}" width="4" height="${ROW - 4}"/>`);
      }
      const title = [row.kind === "file" || row.kind === "dir" ? row.key : row.label];
      if (row.data) {
        title.push(plural(row.data.calls, "call") + (row.data.bytes ? ", " + bytes(row.data.bytes) : ""));
        if (row.kind === "process") title.push(`ran ${secs((row.data.end !== null ? row.data.end : t1) - row.data.start)}` + (row.data.exit ? ", " + exitText(row.data.exit) : ", no exit seen"));
        if (dirtyAtEnd[row.key]) title.push(bytes(dirtyAtEnd[row.key]) + " unsynced at the end");
        if (row.data.bucket_s) title.push(`calls merged in buckets of ${secs(row.data.bucket_s)}`);
      }
      out.push(`<text class="lane-label${row.kind === "dir" ? " dir" : ""}" x="10" y="${y + 17}"><title>${esc(title.map(printable).join("\n"))}</title>${text(fitLabel(row.label))}</text>`);
    });
    out.push(`<g class="axis">${grid.join("")}</g><g clip-path="url(#plot)">`);
    const arrows = new Set();
    const laneY = (path) => yOf["f" + path];
    rows.forEach((row, i) => {
      if (!row.marks) return;
      const y = i * ROW, mid = y + ROW / 2 + 2;
      if (row.kind === "process" && row.data) {
        const end = row.data.end !== null ? row.data.end : t1;
        out.push(`<line class="lifetime" x1="${X(row.data.start).toFixed(1)}" x2="${Math.max(X(end), X(row.data.start) + 1).toFixed(1)}" y1="${mid}" y2="${mid}"/>`);
        if (row.data.exit && row.data.end !== null) {
          const ex = X(row.data.end), right = ex > width - RIGHT - 50;     // no room after it: the label goes before
          out.push(`<text class="exit-label" x="${(right ? ex - 4 : ex + 4).toFixed(1)}" y="${mid - 4}"${right ? ' text-anchor="end"' : ""}>${esc(exitText(row.data.exit))}</text>`);
        }
      }
      row.marks.forEach((m, n) => {
        if (!inView(m)) return;
        const x = X(m.t), x2 = m.end !== undefined ? X(m.end) : x;
        const next = row.marks[n + 1];
        const previous = row.marks[n - 1];
        // Room to the next mark and from the previous one, for a label.
        const room = next ? X(next.t) - x : Infinity, roomBefore = previous ? x - X(previous.end !== undefined ? previous.end : previous.t) : Infinity;
        const failed = m.error ? " failed" : "";
        const tip = `<title>${esc(markTitle(m, row))}</title>`;
        switch (m.kind) {
          case "write": {
            const h = 4 + (ROW - 11) * Math.log1p(m.bytes || 0) / Math.log1p(maxBytes);
            out.push(`<rect class="write${failed}" x="${x.toFixed(1)}" y="${(mid - h / 2).toFixed(1)}" width="${Math.max(2, x2 - x).toFixed(1)}" height="${h.toFixed(1)}">${tip}</rect>`);
            break;
          }
          case "fsync": case "fdatasync": {
            if (m.latency_us) {
              const lx = X(m.t - m.latency_us / 1e6);
              if (x - lx > 1) out.push(`<rect class="latency" x="${lx.toFixed(1)}" y="${y + 4}" width="${(x - lx).toFixed(1)}" height="${ROW - 6}"/>`);
            }
            out.push(`<line class="sync${failed}" x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y + 3}" y2="${y + ROW - 2}">${tip}</line>`);
            out.push(`<rect x="${(x - 4).toFixed(1)}" y="${y + 2}" width="8" height="${ROW - 3}" fill="transparent">${tip}</rect>`);
            if (room > 48 && m.latency_us !== undefined) {
              out.push(`<text class="latency-label" x="${(x + 3).toFixed(1)}" y="${y + ROW - 4}">${esc((m.error ? m.error + " " : "") + us(m.latency_us))}</text>`);
            }
            break;
          }
          case "sync_file_range": case "msync": case "sync": case "syncfs":
            out.push(`<line class="range-sync${failed}" x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y + 4}" y2="${y + ROW - 3}">${tip}</line>`);
            break;
          case "truncate":
            out.push(`<line class="truncate${failed}" x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y + 6}" y2="${y + ROW - 5}">${tip}</line>`);
            break;
          case "mmap":
            out.push(`<rect class="mmap" x="${(x - 3).toFixed(1)}" y="${mid - 3}" width="6" height="6">${tip}</rect>`);
            break;
          case "create":
            out.push(`<circle class="create${failed}" cx="${x.toFixed(1)}" cy="${mid}" r="4">${tip}</circle>`);
            break;
          case "entry":
            out.push(`<circle class="entry" cx="${x.toFixed(1)}" cy="${mid}" r="${m.count > 1 ? 3.5 : 2.5}">${tip}</circle>`);
            break;
          case "unlink":
            out.push(`<path class="unlink${failed}" d="M${(x - 4).toFixed(1)},${mid - 4}l8,8m0,-8l-8,8">${tip}</path>`);
            break;
          case "stdio_lost": case "lost":
            out.push(`<path class="lost" d="M${x.toFixed(1)},${y + 4}l5,${ROW - 8}h-10z">${tip}</path>`);
            break;
          case "send":
            out.push(`<path class="send" d="M${x.toFixed(1)},${mid - 6}l6,10h-12z">${tip}</path>`);
            if (x2 - x > 2) out.push(`<line class="send" stroke="#e4572e" x1="${x.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${mid + 5}" y2="${mid + 5}"/>`);
            break;
          case "exec":
            out.push(`<path class="exec" d="M${x.toFixed(1)},${mid - 5}l5,5l-5,5l-5,-5z">${tip}</path>`);
            break;
          case "rename": case "link": {
            const cls = "arrow" + (m.kind === "link" ? " link" : "") + failed;
            const peer = m.to !== undefined ? m.to : m.from;
            const other = peer ? laneY(peer) : undefined;
            const key = m.to !== undefined ? m.t + "|" + row.key + "|" + peer : m.t + "|" + peer + "|" + row.key;
            if (other !== undefined && !m.error) {
              if (arrows.has(key)) break;
              arrows.add(key);
              const [ya, yb] = m.to !== undefined ? [mid, other + ROW / 2 + 2] : [other + ROW / 2 + 2, mid];
              out.push(`<path class="${cls}" marker-end="url(#arrowhead)" d="M${x.toFixed(1)},${ya} C${(x + 16).toFixed(1)},${ya} ${(x + 16).toFixed(1)},${yb} ${(x + 2).toFixed(1)},${yb}">${tip}</path>`);
            } else {
              const name = peer ? printable(rel(peer)).split("/").pop() : "several names";
              if (m.to !== undefined) {
                out.push(`<path class="${cls}" marker-end="url(#arrowhead)" d="M${x.toFixed(1)},${mid}h14">${tip}</path>`);
                if (room > 24 + 6.5 * name.length) out.push(`<text class="arrow-label" x="${(x + 17).toFixed(1)}" y="${mid + 3}">${esc("→ " + name)}<title>${esc(markTitle(m, row))}</title></text>`);
              } else {
                out.push(`<path class="${cls}" marker-end="url(#arrowhead)" d="M${(x - 14).toFixed(1)},${mid}h12">${tip}</path>`);
                if (roomBefore > 24 + 6.5 * name.length) out.push(`<text class="arrow-label" x="${(x - 17).toFixed(1)}" y="${mid + 3}" text-anchor="end">${esc(name + " →")}<title>${esc(markTitle(m, row))}</title></text>`);
              }
            }
            break;
          }
        }
      });
    });
    // Findings last, above the marks they are pinned to.
    rows.forEach((row, i) => {
      if (!row.pins) return;
      for (const index of row.pins) {
        const f = findings[index];
        const t = pinTime(f);
        if (t < v0 || t > v1) continue;
        const sel = state.selected === index ? " selected" : "";
        out.push(`<circle class="pin ${f.severity}${sel}" data-finding="${index}" cx="${X(t).toFixed(1)}" cy="${i * ROW + 8}" r="6"><title>${esc(printable(f.rule + " " + f.name + ": " + f.message))}</title></circle>`);
      }
    });
    // Crash: each failing state's crash point across the lanes, its minimal cause ringed on its files' lanes.
    if (CRASH) {
      CRASH.failures.forEach((f, n) => {
        const sel = state.crash === n ? " selected" : "";
        const tip = `<title>${esc(printable(crashTitle(f, n)))}</title>`;
        const t = f.crash_point.t;
        if (t >= v0 && t <= v1) {
          const x = X(t).toFixed(1);
          out.push(`<line class="crash-point${sel}" data-crash="${n}" x1="${x}" x2="${x}" y1="0" y2="${height}">${tip}</line>`);
          out.push(`<rect class="crash-hit" data-crash="${n}" x="${(X(t) - 4).toFixed(1)}" y="0" width="8" height="${height}" fill="transparent">${tip}</rect>`);
        }
        for (const c of f.minimal_cause) {
          const y = laneY(c.path) !== undefined ? laneY(c.path) : laneY(c.path2);
          if (y === undefined || c.t < v0 || c.t > v1) continue;
          out.push(`<circle class="crash-cause${sel}" data-crash="${n}" cx="${X(c.t).toFixed(1)}" cy="${y + ROW / 2 + 2}" r="8"><title>${esc(printable("lost in failure " + (n + 1) + ": " + crashCall(c)))}</title></circle>`);
        }
      });
    }
    out.push(`</g><rect id="brush" class="brush" x="0" y="0" width="0" height="${height}" visibility="hidden"/></svg>`);
    box.innerHTML = axis.join("") + `<div class="lanes-scroll" id="lanes-scroll">${out.join("")}</div>`;
    el("lane-count").textContent = laneCountText(shown);
    el("zoom-reset").disabled = state.view[0] === whole[0] && state.view[1] === whole[1];
    hookBrush(box.querySelector("#lanes"), X, scale);
  }

  function laneCountText(shown) {
    const files = lanes.filter((l) => l.kind === "file" || l.kind === "dir");
    const visible = shown.filter((l) => l.kind === "file" || l.kind === "dir").length;
    return visible === files.length ? plural(files.length, "file") + " drawn" : `${num(visible)} of ${plural(files.length, "file")} drawn match the filter`;
  }

  // Drag across the lanes to zoom into that time; "whole run" goes back.
  function hookBrush(svg, X, scale) {
    if (!svg) return;
    let from = null;
    const brush = svg.querySelector("#brush");
    const xOf = (ev) => ev.clientX - svg.getBoundingClientRect().left;
    svg.addEventListener("mousedown", (ev) => {
      if (ev.target.classList.contains("pin") || ev.target.dataset.crash !== undefined || xOf(ev) < LABEL_W) return;
      from = xOf(ev);
      ev.preventDefault();
    });
    svg.addEventListener("mousemove", (ev) => {
      if (from === null) return;
      const x = xOf(ev);
      brush.setAttribute("x", Math.min(from, x));
      brush.setAttribute("width", Math.abs(x - from));
      brush.setAttribute("visibility", "visible");
    });
    svg.addEventListener("mouseup", (ev) => {
      if (from === null) return;
      const x = xOf(ev), a = Math.min(from, x), b = Math.max(from, x);
      from = null;
      brush.setAttribute("visibility", "hidden");
      if (b - a < 5) return;
      const [v0] = state.view;
      state.view = [v0 + (a - LABEL_W) / scale, v0 + (b - LABEL_W) / scale];
      render();
    });
  }

  // Findings, grouped as the text summary groups them (the report's groups[]).
  function crashCall(c) {
    let out = (c.lost || c.syscall) + " " + rel(c.path || "");
    if (c.path2) out += " → " + rel(c.path2);
    if (c.range) out += " bytes " + c.range[0] + "-" + c.range[1];
    if (c.size !== undefined) out += " size " + c.size;
    return out + " (" + at(c.t) + ")";
  }
  function crashTitle(f, n) {
    return `failure ${n + 1} (${plural(f.count, "state")}, ${f.model}): power cut after ${crashCall(f.crash_point)}`;
  }

  function renderCrash() {
    if (!CRASH) return;
    el("crash-section").hidden = false;
    const s = CRASH.states;
    el("crash-summary").textContent = `${num(s.failed)} of ${plural(s.checked, "state")} checked failed (${num(s.distinct)} distinct of ${num(s.generated)} generated, ${plural(CRASH.calls, "call")} recorded, model ${CRASH.model.join(", ")}, ${secs(CRASH.seconds)})` +
      (CRASH.budget_exhausted ? "; the budget ran out before the list did." : ".") + (CRASH.failures.length ? " Dashed lines on the timeline are the crash points of the failing states; rings mark what they lost (the minimal cause). Click one to see it." : "");
    el("crash").innerHTML = CRASH.failures.map((f, n) => {
      const parts = [`<div class="crash-failure${state.crash === n ? " selected" : ""}" id="crash-${n + 1}" data-crash="${n}" tabindex="0">`,
        `<div class="title"><span class="badge error">failure ${n + 1}</span> ${text(crashTitle(f, n))}</div>`];
      if (f.acked) parts.push(`<div>acknowledged by then: <code>${text(f.acked.trim().slice(-200))}</code></div>`);
      parts.push(`<div>checker exit ${esc(f.checker_exit === null ? "(timed out)" : f.checker_exit)}:</div><pre>${text(f.checker_output.trim())}</pre>`);
      parts.push(`<div>minimal cause, lost:</div><ul class="crash-cause-list">${f.minimal_cause.map((c) => `<li class="mono">${text(crashCall(c))}</li>`).join("")}</ul>`);
      if (f.rule) parts.push(`<div>predicted live by <b>${esc(f.rule)}</b></div>`);
      if (f.state_dir) parts.push(`<div class="muted">state kept in <code>${text(f.state_dir)}</code></div>`);
      parts.push(`<div class="muted">rerun:</div><pre>${text(f.rerun)}</pre></div>`);
      return parts.join("");
    }).join("") || `<p>No crash state failed its check.</p>`;
  }

  function selectCrash(n) {
    state.crash = n;
    renderCrash();
    render();
    const item = el("crash-" + (n + 1));
    if (item && item.scrollIntoView) item.scrollIntoView({ block: "nearest" });
  }

  function renderFindings() {
    const box = el("findings");
    if (!findings.length) { box.innerHTML = `<p>No findings.</p>`; return; }
    const members = {};
    findings.forEach((f, i) => { (members[f.group] = members[f.group] || []).push(i); });
    const out = [];
    for (const g of groups) {
      const list = members[g.id] || [];
      out.push(`<div class="group ${esc(g.severity)}" id="group-${esc(g.id)}">`);
      out.push(`<div class="title"><span class="badge ${esc(g.severity)}">${esc(g.severity)}</span> ${esc(g.rule)} ${esc(g.name || "")} <span class="muted">[${esc(plural(g.count, "finding"))}, ${esc(plural(g.files, "file"))}]</span></div>`);
      if (g.message) out.push(`<div>${text(g.message)}</div>`);
      if (g.call_site) out.push(`<div class="muted">at: <code>${text(g.call_site)}</code></div>`);
      else if (g.pattern) out.push(`<div class="muted">files in <code>${text(dirName(g.pattern))}</code>${g.exe ? " by <code>" + text(g.exe) + "</code>" : ""}</div>`);
      out.push(`<ul>`);
      for (const i of list) {
        const f = findings[i];
        const target = f.target_path ? ` → <span class="path">${text(rel(f.target_path))}</span>` : "";
        const path = f.path ? (fileByPath[f.path] && fileByPath[f.path].kind === "dir" ? dirName(f.path) : rel(f.path)) : "(no file)";
        out.push(`<li class="finding" data-finding="${i}" tabindex="0"><span class="path">${text(path)}</span>${target} <span class="muted">pid ${f.pid}${f.count > 1 ? ", " + plural(f.count, "time") : ""} · ${esc(at(pinTime(f)))}</span></li>`);
      }
      const more = DATA.left_out.findings[g.id];
      if (more) out.push(`<li class="muted">and ${esc(plural(more, "more finding"))}: the JSON report (--json) lists them all</li>`);
      out.push(`</ul>`);
      if (g.fix) out.push(`<div class="fix">fix: ${text(g.fix)}</div>`);
      out.push(`</div>`);
    }
    box.innerHTML = out.join("");
  }

  function renderDetail(index) {
    const f = findings[index];
    const g = groupById[f.group];
    const out = [];
    out.push(`<h2><span class="badge ${esc(f.severity)}">${esc(f.severity)}</span> ${esc(f.rule)} ${esc(f.name)}</h2>`);
    out.push(`<p class="message">${text(f.message)}</p>`);
    out.push(`<dl>`);
    if (f.path) out.push(`<dt>file</dt><dd class="mono">${text(f.path)}</dd>`);
    if (f.target_path) out.push(`<dt>target</dt><dd class="mono">${text(f.target_path)}</dd>`);
    out.push(`<dt>process</dt><dd>${text(processName(f.pid))} (pid ${f.pid}, tid ${f.tid})${f.runtime ? ", " + text(f.runtime) : ""}</dd>`);
    out.push(`<dt>fired</dt><dd>${esc(at(pinTime(f)))}${f.count > 1 ? ", seen " + esc(plural(f.count, "time")) : ""}</dd>`);
    if (g) out.push(`<dt>group</dt><dd>${esc(g.id)}: ${esc(plural(g.count, "finding"))}${g.call_site ? " at <code>" + text(g.call_site) + "</code>" : ""}</dd>`);
    out.push(`</dl>`);
    out.push(`<h3>Evidence</h3>`);
    if (f.evidence && f.evidence.length) {
      const keys = ["t", "pid", "tid", "syscall", "fd", "ret", "calls", "bytes"].filter((k) => f.evidence.some((e) => e[k] !== undefined));
      out.push(`<div class="scroll"><table class="table evidence"><tr>${keys.map((k) => `<th class="text">${k}</th>`).join("")}</tr>`);
      for (const e of f.evidence) out.push(`<tr>${keys.map((k) => `<td class="text">${e[k] === undefined ? "" : text(k === "t" ? e[k].toFixed(6) : e[k])}</td>`).join("")}</tr>`);
      out.push(`</table></div>`);
    } else {
      out.push(`<p class="muted">none: this finding is about the whole observation</p>`);
    }
    out.push(`<h3>Stack</h3>`);
    out.push(f.stack && f.stack.length ? `<pre class="stack">${f.stack.map(text).join("\n")}</pre>` : `<p class="muted">not captured (trace with --stacks to name the code)</p>`);
    out.push(`<h3>Fix</h3><div class="fix">${text(f.fix)}</div>`);
    if (f.notes && f.notes.length) out.push(`<h3>Notes</h3><ul>${f.notes.map((n) => `<li>${text(n)}</li>`).join("")}</ul>`);
    el("detail").innerHTML = out.join("");
  }

  function select(index) {
    if (!(index >= 0 && index < findings.length)) return false;
    state.selected = index;
    renderDetail(index);
    for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
    for (const node of document.querySelectorAll(`[data-finding="${index}"]`)) node.classList.add("selected");
    if (location.hash !== "#finding-" + index) history.replaceState(null, "", "#finding-" + index);
    return true;
  }

  // Processes: the tree (by ppid) and each image's I/O.
  function renderProcesses() {
    const lifetimes = {};
    if (TL) for (const p of TL.processes) lifetimes[p.pid] = p;
    const children = {}, roots = [];
    for (const pid of Object.keys(processEntries).map(Number)) {
      const ppid = processEntries[pid][0].ppid;
      if (ppid !== null && processEntries[ppid] && ppid !== pid) (children[ppid] = children[ppid] || []).push(pid);
      else roots.push(pid);
    }
    const line = (pid) => {
      const entries = processEntries[pid];
      const life = lifetimes[pid];
      const last = entries[entries.length - 1];
      const status = exitText(last.exit) || (life && life.exit ? exitText(life.exit) : "no exit seen");
      const ran = life ? `ran ${secs((life.end !== null ? life.end : t1) - life.start)} from ${secs(life.start)}` : "";
      const images = entries.map((p) => `<span class="argv">${text((p.argv && p.argv.length ? p.argv : [p.exe || "?"]).join(" "))}</span>${p.runtime ? ` <span class="muted">${text(p.runtime.name)}${p.runtime.version ? " " + text(p.runtime.version) : ""}</span>` : ""}`).join(" then ");
      const target = pid === R.target.pid ? ` <span class="badge">target</span>` : "";
      const cls = last.exit && (last.exit.code || last.exit.signal) ? "error" : last.exit ? "clean" : "";
      return `pid ${pid}${target} ${images} <span class="badge ${cls}">${esc(status)}</span> <span class="muted">${esc(ran)}</span>`;
    };
    const tree = (pids, depth) => `<ul>${pids.sort((a, b) => a - b).map((pid) => `<li>${line(pid)}${children[pid] && depth < 64 ? tree(children[pid], depth + 1) : ""}</li>`).join("")}</ul>`;
    const more = DATA.left_out.processes ? `<p class="muted">${esc(plural(DATA.left_out.processes, "more process", "more processes"))}, neither drawn on the timeline nor named by a finding, are in the JSON report (--json).</p>` : "";
    el("process-tree").innerHTML = (R.processes.length ? `<div class="tree">${tree(roots, 0)}</div>` : `<p class="muted">No process was seen.</p>`) + more;
    const cols = [["writes", num], ["bytes_written", bytes], ["write_size_p50", bytes], ["write_size_max", bytes], ["fsync", num],
                  ["fdatasync", num], ["sync_file_range", num], ["o_sync_writes", num], ["o_direct_writes", num], ["dir_syncs", num],
                  ["renames", num], ["links", num], ["fsync_latency_p50_us", us], ["fsync_latency_max_us", us]];
    const head = ["pid", "command", "writes", "bytes", "size p50", "size max", "fsync", "fdatasync", "sync_file_range", "O_SYNC writes",
                  "O_DIRECT writes", "dir syncs", "renames", "links", "sync latency p50", "sync latency max"];
    const rows = R.processes.map((p) => `<tr><td>${p.pid}</td><td class="text mono">${text((p.argv && p.argv.length ? p.argv[0] : p.exe) || "?")}</td>${cols.map(([k, f]) => `<td>${esc(f(p.io[k]))}</td>`).join("")}</tr>`);
    el("io").innerHTML = `<tr>${head.map((h, i) => `<th class="${i === 1 ? "text" : ""}">${h}</th>`).join("")}</tr>` + rows.join("");
  }

  function renderScope() {
    const out = [];
    const config = R.config || {};
    out.push(`<p>Configuration: ${config.path ? "<code>" + text(config.path) + "</code>" : "none found: the defaults and the command line"}.</p>`);
    if (config.suppressed && config.suppressed.length) {
      out.push(`<table class="table"><tr><th class="text">rule</th><th class="text">path</th><th class="text">reason</th><th>findings hidden</th></tr>`);
      for (const s of config.suppressed) out.push(`<tr><td class="text">${text(s.rule)}</td><td class="text mono">${text(s.path)}</td><td class="text">${text(s.reason)}</td><td>${num(s.hidden)}</td></tr>`);
      out.push(`</table>`);
    }
    if (R.scope) {
      for (const [key, value] of Object.entries(R.scope)) {
        if (value && typeof value === "object" && !Array.isArray(value)) {
          const items = Object.entries(value).map(([k, v]) => `${text(k)}: ${text(typeof v === "object" ? JSON.stringify(v) : v)}`);
          out.push(`<p>Scope, ${text(key)}: ${items.length ? items.join(", ") : "none"}.</p>`);
        } else {
          out.push(`<p>Scope, ${text(key)}: ${text(Array.isArray(value) ? value.join(", ") : value)}.</p>`);
        }
      }
    }
    if (TL && TL.aggregated.out_of_scope_calls) out.push(`<p>${esc(plural(TL.aggregated.out_of_scope_calls, "call"))} on files outside the scope are not drawn.</p>`);
    if (R.incomplete && R.incomplete.length) out.push(`<p><b>Incomplete:</b></p><ul>${R.incomplete.map((s) => `<li>${text(s)}</li>`).join("")}</ul>`);
    if (R.warnings && R.warnings.length) out.push(`<p><b>Warnings:</b></p><ul>${R.warnings.map((s) => `<li>${text(s)}</li>`).join("")}</ul>`);
    el("scope").innerHTML = out.join("");
  }

  function renderHeader() {
    el("version").textContent = R.tool.version;
    const argv = R.target.argv || [];
    el("command").textContent = printable("fsaudit " + R.mode + (argv.length ? (R.mode === "run" ? " -- " : ": ") + argv.join(" ") : ""));
    const facts = [R.started_at, "observed " + secs(R.duration_s)];
    if (R.target.pid) facts.push("pid " + R.target.pid);
    const exit = exitText(R.target.exit);
    if (exit) facts.push(exit);
    facts.push(plural(R.counts.events, "event"), plural(R.counts.processes, "process", "processes"), plural(R.counts.files, "file") + " written");
    el("facts").textContent = facts.join(" · ");
    const totals = ["error", "warning", "info"].filter((s) => R.summary[s]).map((s) => `<span class="badge ${s}">${esc(plural(R.summary[s], s))}</span>`);
    el("totals").innerHTML = totals.length ? totals.join("") : `<span class="badge clean">no findings</span>`;
    el("footer").innerHTML = `Written by fsaudit ${esc(R.tool.version)} (schema ${esc(R.schema)}${CRASH ? ", " + esc(CRASH.schema) : ""})${R.cwd ? " in <code>" + text(R.cwd) + "</code>" : ""}; paths under it are shown relative to it. ` +
      (CRASH ? "Exit status 1 when a crash state fails its check." : `Exit status 1 when a finding is at or above --fail-on ${esc(DATA.fail_on)}.`);
    const alerts = [];
    if (R.counts.lost_events) alerts.push(`<p class="alert loud">${esc(plural(R.counts.lost_events, "event"))} were lost: the tracer could not keep up, so findings may be missing and the timeline has gaps (red marks on the "events lost" lane).</p>`);
    for (const reason of R.incomplete || []) if (!/events were lost$/.test(reason)) alerts.push(`<p class="alert loud">Incomplete: ${text(reason)}</p>`);
    for (const warning of (R.warnings || []).slice(0, 5)) alerts.push(`<p class="alert warn">warning: ${text(warning)}</p>`);
    if ((R.warnings || []).length > 5) alerts.push(`<p class="alert warn">and ${esc(plural(R.warnings.length - 5, "more warning"))} (Scope and configuration)</p>`);
    el("alerts").innerHTML = alerts.join("");
  }

  function renderNotes() {
    if (!TL) { el("aggregated").textContent = "This report has no timeline section: it was written without --html."; return; }
    const a = TL.aggregated;
    const parts = [];
    const drawnFiles = TL.files.length;
    parts.push(a.file_lanes
      ? `${num(drawnFiles)} of ${plural(drawnFiles + a.file_lanes, "file lane")} are drawn (files with findings first, then the busiest); the other ${num(a.file_lanes)}, with ${plural(a.file_calls, "call")} and ${bytes(a.file_bytes)} written, are counted, not drawn.`
      : `Every file written, synced, renamed or unlinked is drawn (${plural(drawnFiles, "lane")}).`);
    if (a.process_lanes) parts.push(`${num(a.process_lanes)} processes with ${plural(a.process_calls, "call")} are not drawn.`);
    if (a.events_drawn > a.marks) parts.push(`${plural(a.events_drawn, "call")} on the drawn lanes are ${plural(a.marks, "mark")}: calls of one kind that fall in one time bucket are merged into one mark (hover it for the count).`);
    if (a.out_of_scope_calls) parts.push(`${plural(a.out_of_scope_calls, "call")} on files outside the scope are not drawn.`);
    parts.push("Drag across the lanes to zoom.");
    el("aggregated").textContent = parts.join(" ");
    const legend = [["write run (height: bytes)", `<rect x="2" y="4" width="14" height="8" fill="#4c78a8"/>`],
                    ["fsync / fdatasync, shaded: its latency", `<line x1="9" x2="9" y1="1" y2="15" stroke="#2a9d4b" stroke-width="2"/>`],
                    ["rename (dashed: link)", `<path d="M2,8h12" stroke="#7b4fb8" stroke-width="1.5" marker-end="url(#legend-arrow)"/>`],
                    ["unlink", `<path d="M5,4l8,8m0,-8l-8,8" stroke="#5b2a2a" stroke-width="2"/>`],
                    ["created", `<circle cx="9" cy="8" r="4" fill="#fff" stroke="#1d2330"/>`],
                    ["directory entry changed", `<circle cx="9" cy="8" r="3" fill="#8a8f98"/>`],
                    ["socket send", `<path d="M9,3l6,10h-12z" fill="#e4572e"/>`],
                    ["finding (click it)", `<circle cx="9" cy="8" r="6" fill="#d62728"/>`]];
    if (CRASH) legend.push(["crash point of a failing state", `<line x1="9" x2="9" y1="1" y2="15" stroke="#b5179e" stroke-width="2" stroke-dasharray="3,2"/>`],
                           ["lost: its minimal cause", `<circle cx="9" cy="8" r="6" fill="none" stroke="#b5179e" stroke-width="2"/>`]);
    el("legend").innerHTML = `<svg width="0" height="0"><defs><marker id="legend-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#7b4fb8"/></marker></defs></svg>` +
      legend.map(([label, shape]) => `<span><svg width="18" height="16">${shape}</svg> ${esc(label)}</span>`).join("");
  }

  renderHeader();
  renderNotes();
  renderCrash();
  renderFindings();
  renderProcesses();
  renderScope();
  render();

  let pending = false;
  const later = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; render(); }); } };
  el("filter").addEventListener("input", (ev) => { state.filter = ev.target.value; later(); });
  el("flagged-only").addEventListener("change", (ev) => { state.flaggedOnly = ev.target.checked; later(); });
  el("show-processes").addEventListener("change", (ev) => { state.processes = ev.target.checked; later(); });
  el("zoom-reset").addEventListener("click", () => { state.view = whole.slice(); render(); });
  window.addEventListener("resize", later);
  document.addEventListener("click", (ev) => {
    const target = ev.target.closest ? ev.target.closest("[data-finding]") : null;
    if (target) select(Number(target.getAttribute("data-finding")));
    const crash = ev.target.closest ? ev.target.closest("[data-crash]") : null;
    if (crash) selectCrash(Number(crash.getAttribute("data-crash")));
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.target.dataset && ev.target.dataset.finding !== undefined) select(Number(ev.target.dataset.finding));
  });
  const wanted = /^#finding-(\d+)$/.exec(location.hash);
  if (wanted) select(Number(wanted[1]));

  // For tests and scripts: the data drawn, and how long drawing took.
  window.fsaudit = { data: DATA, select, selectCrash, visibleLanes: () => visibleLanes().map((l) => l.key !== undefined ? l.key : l.id) };
  document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  document.body.dataset.ready = "1";
})();
