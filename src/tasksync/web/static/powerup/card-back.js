"use strict";
// The back of a card: why tasksync gave it its owner and priority, plan after plan.
(async function () {
  const ts = window.tasksync;
  const $ = (id) => document.getElementById(id);
  const t = window.TrelloPowerUp.iframe(ts.appOptions());
  try {
    await ts.trelloSession(t);
    const card = await t.card("id");
    const info = await ts.call("GET", "/api/cards/" + encodeURIComponent(card.id));
    $("status").textContent = info.history.length ? "" : "tasksync has not changed this card yet.";
    const now = [];
    if (info.tier) now.push("Priority " + info.tier);
    if (info.pinned.length) now.push("pinned (left alone): " + info.pinned.join(", "));
    $("now").textContent = now.join(" · ");
    $("history").replaceChildren(...info.history.map((h) => ts.el("li", {}, [
      ts.el("span", { class: "pill", text: h.field }), " ",
      ts.el("span", { text: h.reason || "(no reason)" }), " ",
      ts.el("span", { class: "muted", text: "— plan " + h.plan_id + ", " + h.status + " " + (h.at || "") }),
    ])));
  } catch (e) {
    $("status").textContent = e.message;
  }
  t.sizeTo(document.body);
})();
