"use strict";
// The review page: the latest plan (the data of `tasksync plan --json`), approve and apply with
// live progress, reject single changes (they become pins), history with undo, and the reps table
// with its overrides (away until a date, back, capacity, quota, reset), after which it plans again.
(function () {
  const ts = window.tasksync;
  const el = ts.el;
  const $ = (id) => document.getElementById(id);
  let data = null;
  let busy = false;

  const money = (v) => (typeof v === "number" ? Math.round(v).toLocaleString("en-US") : "");
  const inBand = (v, band) => v >= band.lower - 1e-9 && v <= band.upper + 1e-9;

  function setStatus(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = "status" + (kind ? " " + kind : "");
  }

  function setBusy(on) {
    busy = on;
    const plan = data && data.plan;
    $("apply").disabled = on || !plan || (plan.changes.length === 0 && plan.creates.length === 0);
    $("replan").disabled = on;
    for (const b of document.querySelectorAll("button.reject, button.undo, #reps button, #reps input")) {
      b.disabled = on;
    }
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function options(select, values) {
    const keep = select.value;
    const first = select.options[0];
    select.replaceChildren(first, ...values.map((v) => el("option", { value: v, text: v })));
    if (values.includes(keep)) select.value = keep;
  }

  function renderShift() {
    const band = data.band;
    $("bands").textContent =
      "Band ±" + Math.round(band.ratio * 100) + "% over available reps: cards " +
      band.workload.lower.toFixed(1) + "–" + band.workload.upper.toFixed(1) + ", expected value " +
      money(band.expected_value.lower) + "–" + money(band.expected_value.upper) + ".";
    fill($("shift").tBodies[0], data.reps.map((r) => {
      const cls = (v, b) => "num " + (r.available ? (inBand(v, b) ? "in" : "out") : "");
      return el("tr", {}, [
        el("td", { text: r.name }),
        el("td", { text: r.available ? "yes" : "away" }),
        el("td", { class: "num", text: String(r.before) }),
        el("td", { class: cls(r.after, band.workload), text: String(r.after) }),
        el("td", { class: "num", text: r.gained ? "+" + r.gained : "" }),
        el("td", { class: "num", text: r.lost ? "−" + r.lost : "" }),
        el("td", { class: "num", text: money(r.expected_value_before) }),
        el("td", { class: cls(r.expected_value, band.expected_value), text: money(r.expected_value) }),
      ]);
    }));
  }

  function renderChanges() {
    const rep = $("f-rep").value, kind = $("f-kind").value, field = $("f-field").value;
    const text = $("f-text").value.trim().toLowerCase();
    const rows = data.changes.filter((c) =>
      (!rep || c.reps.includes(rep)) && (!kind || c.reason_kind === kind) && (!field || c.field === field) &&
      (!text || (c.title || "").toLowerCase().includes(text)));
    $("shown").textContent = rows.length + " of " + data.changes.length + " shown";
    fill($("changes").tBodies[0], rows.map((c) => {
      const action = el("td");
      if (c.task_id) {
        const b = el("button", { class: "small reject", type: "button", text: "Reject",
          title: "Keep this card's " + c.field + " as it is, now and in later plans" });
        b.dataset.task = c.task_id;
        b.dataset.field = c.field;
        b.disabled = busy;
        action.append(b);
      }
      return el("tr", {}, [
        el("td", { text: c.title }), el("td", { text: c.field }), el("td", { text: c.before }),
        el("td", { text: c.after }), el("td", { text: c.reason }), action,
      ]);
    }));
  }

  function renderConflicts() {
    fill($("conflicts").tBodies[0], (data.left_alone || []).map((c) => el("tr", {}, [
      el("td", { text: c.title || c.task_id }), el("td", { text: c.field }),
      el("td", { text: c.now }), el("td", { text: c.wanted }),
    ])));
  }

  function render() {
    const plan = data.plan;
    $("board").textContent = data.board.name || data.board.ref;
    $("summary").textContent =
      "Plan " + plan.id + " (" + plan.kind + "), computed " + plan.created_at + ": " + plan.changes.length +
      " changes, " + plan.creates.length + " cards to create, " + plan.conflicts.length + " left alone.";
    options($("f-rep"), data.reps.map((r) => r.name));
    options($("f-kind"), [...new Set(data.changes.map((c) => c.reason_kind))].sort());
    options($("f-field"), [...new Set(data.changes.map((c) => c.field))].sort());
    renderShift();
    renderChanges();
    renderConflicts();
    fill($("notes"), plan.notes.map((n) => el("li", { text: n })));
    const empty = plan.changes.length === 0 && plan.creates.length === 0;
    setStatus(empty ? "Nothing to change: the board already matches the plan." : "Review the changes, then approve.");
    setBusy(false);
  }

  async function loadHistory() {
    const h = await ts.call("GET", "/api/history");
    fill($("history").tBodies[0], h.plans.map((p) => {
      const action = el("td");
      if (p.can_undo) {
        const b = el("button", { class: "small undo", type: "button", text: "Undo" });
        b.dataset.plan = p.id;
        b.disabled = busy;
        action.append(b);
      }
      return el("tr", {}, [
        el("td", { text: p.id }), el("td", { text: p.kind }), el("td", { text: p.status }),
        el("td", { text: p.created_at }), el("td", { text: p.applied_at || "" }),
        el("td", { class: "num", text: String(p.changes) }), el("td", { class: "num", text: String(p.creates) }),
        action,
      ]);
    }));
  }

  function input(type, cls, attrs) {
    const i = el("input", Object.assign({ type: type, class: cls }, attrs || {}));
    i.disabled = busy;
    return i;
  }

  function repButton(action, text, title) {
    const b = el("button", { class: "small rep-" + action, type: "button", text: text, title: title });
    b.dataset.action = action;
    b.disabled = busy;
    return b;
  }

  // The cells with a rep's controls: away until a date / back, capacity, quota, reset (and the
  // place for an error, beside them).
  function repControls(x, today) {
    const cell = (...children) => el("td", { class: "controls" }, children);
    const label = (text) => ({ "aria-label": text + " " + x.name });
    return [
      cell(
        input("date", "until", { min: today, title: "last day away (empty: until back)", ...label("last day away:") }),
        " ", repButton("away", "Away", "gets nothing new; their cards are handed on"),
        " ", repButton("back", "Back", "available again")),
      cell(
        input("number", "tasks", { min: "0", step: "1", placeholder: "cards", ...label("most open cards:") }),
        " ", input("number", "value", { min: "0", placeholder: "value", ...label("most open pipeline value:") }),
        " ", repButton("capacity", "Set", "most open cards (and pipeline value) this rep should hold")),
      cell(
        input("number", "amount", { min: "0", placeholder: "per month", ...label("monthly quota:") }),
        " ", repButton("quota", "Set", "this rep's monthly quota")),
      cell(
        repButton("reset", "Reset", "drop every override: as in the reps export again"),
        el("span", { class: "rep-error", role: "alert" })),
    ];
  }

  function renderReps(d) {
    fill($("reps").tBodies[0], d.reps.map((x) => {
      const match = x.member ? (x.member.name === x.name ? "" : x.member.name + " ") + "by " + x.matched_by
        : "none: gets no work";
      const cap = (x.capacity == null ? "–" : String(x.capacity)) +
        (x.capacity_value == null ? "" : " / " + money(x.capacity_value));
      const tr = el("tr", {}, [
        el("td", { text: x.name }), el("td", { text: match }),
        el("td", { class: x.overrides.length ? "overridden" : "", text: x.availability }),
        el("td", { class: "num", text: cap }),
        el("td", { class: "num", text: x.quota == null ? "–" : money(x.quota) }),
        el("td", { class: "num", text: String(x.open_tasks) }),
        el("td", { class: "num", text: money(x.expected_value) }),
        ...repControls(x, d.today),
      ]);
      tr.dataset.rep = x.rep_id;
      return tr;
    }));
  }

  async function loadReps() {
    renderReps((await ts.call("GET", "/api/reps")).data);
  }

  // One control of the reps table: the override is stored, the table redrawn from the answer
  // (`tasksync reps --json`'s data), then the shown plan, now stale, is made again.
  async function changeRep(b) {
    const tr = b.closest("tr");
    const error = tr.querySelector(".rep-error");
    const field = (cls) => tr.querySelector("input." + cls).value;
    const num = (cls) => (field(cls) === "" ? null : Number(field(cls)));
    const action = b.dataset.action;
    const body = { rep: tr.dataset.rep };
    if (action === "away") body.until = field("until") || null;
    if (action === "capacity") Object.assign(body, { tasks: num("tasks"), value: num("value") });
    if (action === "quota") body.amount = num("amount");
    error.textContent = "";
    setBusy(true);
    setStatus("Saving…");
    let answer;
    try {
      answer = await ts.call("POST", "/api/reps/" + action, body);
    } catch (e) {
      error.textContent = e.message;
      setStatus("Not changed: " + e.message, "error");
      setBusy(false);
      if (e.status === 401 && document.body.dataset.mode !== "powerup") window.location.assign("/login");
      return;
    }
    renderReps(answer.data);
    await run(answer.message + ". Planning again…", async () => {
      await replanOrWait();
      setStatus(answer.message + ". Plan " + data.plan.id + " follows it.", "done");
    });
  }

  async function run(label, fn) {
    setBusy(true);
    setStatus(label);
    try {
      await fn();
    } catch (e) {
      setStatus(e.message, "error");
      setBusy(false);
      if (e.status === 401 && document.body.dataset.mode !== "powerup") window.location.assign("/login");
    }
  }

  async function replan() {
    const r = await ts.call("POST", "/api/plan", {});
    data = r.data;
    render();
    await loadHistory();
  }

  // The first load plans when there is no proposal yet. If another tab (or this page before a
  // refresh) is already planning, the server answers 409: wait for that plan instead of failing.
  async function replanOrWait() {
    try {
      await replan();
    } catch (e) {
      if (e.status !== 409) throw e;
      setStatus("Another request is planning; waiting for its plan…");
      for (let i = 0; i < 600; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const current = await ts.call("GET", "/api/plan");
        if (current.data) {
          data = current.data;
          render();
          await loadHistory();
          return;
        }
      }
      throw e;
    }
  }

  async function follow(job, verb) {
    const bar = $("progress");
    bar.hidden = false;
    for (;;) {
      bar.max = Math.max(job.total, 1);
      bar.value = job.done;
      if (job.state !== "running") break;
      setStatus(verb + "… " + job.done + " of " + (job.total || "?"));
      await new Promise((resolve) => setTimeout(resolve, 300));
      job = (await ts.call("GET", "/api/jobs/" + encodeURIComponent(job.id))).job;
    }
    const text = verb + " " + job.plan_id + ": " + job.message;
    await loadHistory();
    const r = await ts.call("POST", "/api/plan", {});
    data = r.data;
    render();
    setStatus(text, job.state === "done" ? "done" : "error");
  }

  document.addEventListener("click", (event) => {
    const b = event.target.closest("button");
    if (!b || b.disabled) return;
    if (b.id === "apply") {
      run("Applying…", async () => {
        const r = await ts.call("POST", "/api/apply", { plan_id: data.plan.id });
        await follow(r.job, "Applied");
      });
    } else if (b.id === "replan") {
      run("Planning…", replan);
    } else if (b.classList.contains("reject")) {
      run("Rejecting and planning again…", async () => {
        const r = await ts.call("POST", "/api/reject",
          { plan_id: data.plan.id, task_id: b.dataset.task, field: b.dataset.field });
        data = r.data;
        render();
        await loadHistory();
      });
    } else if (b.classList.contains("undo")) {
      run("Undoing…", async () => {
        const r = await ts.call("POST", "/api/undo", { plan_id: b.dataset.plan });
        await follow(r.job, "Undid");
      });
    } else if (b.dataset.action && b.closest("#reps")) {
      changeRep(b);
    } else if (b.id === "logout") {
      ts.call("POST", "/logout", {}).finally(() => window.location.assign("/login"));
    }
  });
  // Enter in a reps table field presses the button beside it (Away, Set).
  $("reps").addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !event.target.matches("input")) return;
    const b = event.target.closest("td").querySelector("button");
    if (b && !b.disabled) changeRep(b);
  });
  for (const id of ["f-rep", "f-kind", "f-field", "f-text"]) {
    for (const type of ["input", "change"]) $(id).addEventListener(type, () => data && renderChanges());
  }

  if (document.body.dataset.mode === "powerup") $("logout").hidden = true;
  run("Loading…", async () => {
    const s = await ts.start();
    $("who").textContent = s.who;
    const current = await ts.call("GET", "/api/plan");
    if (current.data) {
      data = current.data;
      render();
    } else {
      setStatus("Planning…");
      await replanOrWait();
    }
    await Promise.all([loadHistory(), loadReps()]);
  });
})();
