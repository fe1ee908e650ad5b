"use strict";
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("status");
  try {
    await window.tasksync.call("POST", "/login", { token: document.getElementById("token").value });
    window.location.assign("/review");
  } catch (e) {
    status.hidden = false;
    status.className = "status error";
    status.textContent = e.message;
  }
});
