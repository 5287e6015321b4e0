// The review page of `build-bench label`. Every text from the run (queries, passages, ids, provenance) is
// untrusted: it only ever goes into the page through textContent, never as HTML.
"use strict";

(function () {
  const TOKEN = document.querySelector('meta[name="review-token"]').content;
  const LABEL_NAMES = { good: "good", vague: "vague", wrong: "wrong", missed_positive: "missed positive" };
  const KEY_LABELS = { g: "good", v: "vague", w: "wrong" };
  const state = { items: [], details: {}, labels: {}, index: 0, busy: false, reviewer: "" };
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function status(message, isError) {
    const s = $("status");
    s.textContent = message;
    s.className = isError ? "error" : "ok";
  }

  async function api(path, body) {
    const init = { headers: { "X-Review-Token": TOKEN }, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) throw new Error((data && data.error) || ("HTTP " + resp.status));
    return data;
  }

  // The queue holds ids and strata; an item's texts are fetched when it is shown (and the next one ahead).
  async function details(index) {
    const entry = state.items[index];
    if (!entry) return null;
    if (!state.details[entry.query_id]) {
      state.details[entry.query_id] = await api("/api/item?query_id=" + encodeURIComponent(entry.query_id));
    }
    return state.details[entry.query_id];
  }

  function current() {
    const entry = state.items[state.index];
    return entry ? state.details[entry.query_id] : undefined;
  }

  function doneCount() {
    return state.items.filter((it) => state.labels[it.query_id]).length;
  }

  function renderProgress() {
    const total = state.items.length, done = doneCount();
    $("progress-text").textContent = done + "/" + total + " done";
    $("progress").max = Math.max(total, 1);
    $("progress").value = done;
    $("position").textContent = total ? "query " + (state.index + 1) + " of " + total : "";
  }

  function passageNode(p, extra) {
    const li = el("li", null, "passage " + (p.kind || ""));
    const head = el("div", null, "passage-head");
    if (extra) head.appendChild(extra);
    if (p.title) head.appendChild(el("span", p.title, "passage-title"));
    head.appendChild(el("code", p.id, "passage-id"));
    if (p.kind && p.kind !== "corpus") head.appendChild(el("span", p.kind, "tag " + p.kind));
    li.appendChild(head);
    li.appendChild(el("p", p.kind === "missing" ? "(this passage is in neither the chunks nor the negatives)"
      : p.text, "text"));
    return li;
  }

  function labelText(lab, item) {
    if (!lab) return "not labelled yet";
    let text = "your label: " + (LABEL_NAMES[lab.label] || lab.label);
    if (lab.passage_id) {
      const n = item.candidates.findIndex((c) => c.passage.id === lab.passage_id);
      text += " (candidate " + (n >= 0 ? (n + 1) + ", " : "") + lab.passage_id + ")";
    }
    if (lab.note) text += " — note: " + lab.note;
    return text;
  }

  function render() {
    renderProgress();
    const item = current();
    if (!item) {
      $("item").hidden = true;
      status("the queue is empty", true);
      return;
    }
    $("item").hidden = false;
    const lab = state.labels[item.query_id];
    $("query-id").textContent = item.query_id;
    $("query-text").textContent = item.text;
    const badge = $("current-label");
    badge.textContent = labelText(lab, item);
    badge.className = "label-badge " + (lab ? lab.label : "none");

    const prov = $("provenance");
    prov.replaceChildren();
    const rows = [["persona", item.persona], ["style", item.style], ["difficulty", item.difficulty],
      ["recipe", item.recipe], ["model", item.model], ["language", item.language],
      ["filters passed", item.filters.length ? item.filters.join(", ") : "(none recorded)"],
      ["from dataset", item.dataset]];
    for (const [k, v] of rows) {
      const div = el("div");
      div.appendChild(el("dt", k));
      div.appendChild(el("dd", v || "–"));
      prov.appendChild(div);
    }

    const pos = $("positives");
    pos.replaceChildren(...item.positives.map((p) => passageNode(p)));
    $("positives-plural").hidden = item.positives.length === 1;

    const cands = $("candidates");
    cands.replaceChildren(...item.candidates.map((c, i) => {
      const info = el("span", null, "candidate-info");
      info.appendChild(el("kbd", String(i + 1)));
      info.appendChild(el("span", c.decision || "?", "tag decision " + (c.decision || "")));
      info.appendChild(el("span", "rank " + c.rank + " · ratio " + c.ratio.toFixed(2) + " · found by " +
        (c.found_by.length ? c.found_by.join(", ") : "–"), "candidate-stats"));
      const li = passageNode(c.passage, info);
      if (lab && lab.passage_id === c.passage.id) li.classList.add("picked");
      const button = el("button", "also answers it (" + (i + 1) + ")", "missed");
      button.type = "button";
      button.addEventListener("click", () => give("missed_positive", i));
      li.appendChild(button);
      return li;
    }));
    $("no-candidates").hidden = item.candidates.length > 0;
    $("note").value = lab ? lab.note || "" : "";
    $("prev").disabled = state.index === 0;
    $("next").disabled = state.index >= state.items.length - 1;
  }

  async function go(index) {
    if (index < 0 || index >= state.items.length) return;
    state.index = index;
    try {
      await details(index);
    } catch (e) {
      status("cannot load query " + state.items[index].query_id + ": " + e.message, true);
      return;
    }
    if (state.index !== index) return;  // the reviewer moved on meanwhile
    render();
    window.scrollTo(0, 0);
    details(index + 1).catch(() => {});  // ahead of time
  }

  function nextOpen() {
    const n = state.items.length;
    for (let k = 1; k <= n; k++) {
      const i = (state.index + k) % n;
      if (!state.labels[state.items[i].query_id]) return go(i);
    }
    status("every query in the queue has your label", false);
  }

  async function give(label, candidate) {
    const item = current();
    if (!item || state.busy) return;
    const body = { query_id: item.query_id, label: label, note: $("note").value };
    if (label === "missed_positive") {
      const c = item.candidates[candidate];
      if (!c) { status("there is no candidate " + (candidate + 1) + " for this query", true); return; }
      body.passage_id = c.passage.id;
    }
    state.busy = true;
    document.body.classList.add("saving");
    try {
      const res = await api("/api/label", body);
      state.labels[item.query_id] = res.saved;
      status("saved: " + (LABEL_NAMES[label] || label) + " for " + item.query_id, false);
      if (state.index < state.items.length - 1) await go(state.index + 1); else render();
    } catch (e) {
      status("not saved: " + e.message, true);
    } finally {
      state.busy = false;
      document.body.classList.remove("saving");
    }
  }

  function toggleHelp(show) {
    const help = $("help");
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const inNote = ev.target === $("note");
    if (ev.key === "Escape") {
      if (inNote) $("note").blur();
      toggleHelp(false);
      return;
    }
    if (inNote || (ev.target && ["INPUT", "TEXTAREA", "SELECT"].includes(ev.target.tagName))) return;
    if (ev.key === "?") { toggleHelp(); ev.preventDefault(); return; }
    if (!$("help").hidden || state.busy) return;
    const key = ev.key;
    if (KEY_LABELS[key]) give(KEY_LABELS[key]);
    else if (/^[1-9]$/.test(key)) give("missed_positive", Number(key) - 1);
    else if (key === "n" || key === "ArrowRight") go(state.index + 1);
    else if (key === "p" || key === "ArrowLeft") go(state.index - 1);
    else if (key === "u") nextOpen();
    else if (key === "e") $("note").focus();
    else return;
    ev.preventDefault();
  }

  async function start() {
    document.addEventListener("keydown", onKey);
    for (const b of document.querySelectorAll("button[data-label]")) {
      b.addEventListener("click", () => give(b.dataset.label));
    }
    $("prev").addEventListener("click", () => go(state.index - 1));
    $("next").addEventListener("click", () => go(state.index + 1));
    $("next-open").addEventListener("click", nextOpen);
    $("help-button").addEventListener("click", () => toggleHelp());
    $("help").addEventListener("click", (ev) => { if (ev.target === $("help")) toggleHelp(false); });
    try {
      const q = await api("/api/queue");
      state.items = q.items;
      state.labels = q.labels || {};
      state.reviewer = q.reviewer;
      $("run").textContent = q.run;
      $("reviewer").textContent = q.reviewer;
      const open = state.items.findIndex((it) => !state.labels[it.query_id]);
      if (state.items.length) await go(open >= 0 ? open : 0); else render();
      document.body.dataset.ready = "1";
    } catch (e) {
      status("cannot load the queue: " + e.message, true);
    }
  }

  start();
})();
