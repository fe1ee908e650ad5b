"use strict";
// The Power-Up's settings: who you are to tasksync and the board's latest plan.
(async function () {
  const ts = window.tasksync;
  const $ = (id) => document.getElementById(id);
  const t = window.TrelloPowerUp.iframe(ts.appOptions());
  $("open").addEventListener("click", () => {
    t.modal({ url: "./review.html", fullscreen: true, title: "tasksync: review the plan" });
  });
  try {
    const s = await ts.trelloSession(t);
    $("who").textContent = "Signed in to tasksync as " + s.who + ".";
    const h = await ts.call("GET", "/api/history");
    const p = h.plans[0];
    $("latest").textContent = p
      ? "Latest plan " + p.id + ": " + p.status + ", " + p.changes + " changes."
      : "No plan yet.";
    $("status").textContent = "tasksync is configured for this board.";
  } catch (e) {
    $("status").textContent = e.message;
  }
})();
