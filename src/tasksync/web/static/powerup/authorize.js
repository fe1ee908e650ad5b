"use strict";
// Asks Trello for the member's token (read only); tasksync then checks board membership with it.
(function () {
  const ts = window.tasksync;
  const t = window.TrelloPowerUp.iframe(ts.appOptions());
  document.getElementById("authorize").addEventListener("click", async () => {
    try {
      await t.getRestApi().authorize({ scope: "read", expiration: "30days" });
      await t.closePopup();
    } catch (e) {
      document.getElementById("status").textContent = e.message;
    }
  });
})();
