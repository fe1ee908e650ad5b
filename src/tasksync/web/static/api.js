"use strict";
// Talks to tasksync's JSON API. Logged in by cookie (the review page) or, inside Trello, by a
// session traded for the member's Trello token (sent as a bearer: cookies are third-party there).
// Every write carries the session's CSRF token.
(function () {
  const state = { bearer: null, csrf: null, who: null };

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.bearer) headers.Authorization = "Bearer " + state.bearer;
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
      init.body = JSON.stringify(body || {});
    }
    const resp = await fetch(path, init);
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const err = new Error((data && data.error) || resp.statusText || "request failed");
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function appOptions() {
    return { appKey: document.body.dataset.appKey || "", appName: document.body.dataset.appName || "tasksync" };
  }

  // Inside Trello: trade the member's Trello token for a tasksync session.
  async function trelloSession(t) {
    const token = await t.getRestApi().getToken();
    if (!token) {
      const err = new Error("Authorize tasksync first (the Power-Up's settings, then Authorize account).");
      err.status = 401;
      throw err;
    }
    const s = await call("POST", "/powerup/session", { token: token });
    state.bearer = s.session;
    state.csrf = s.csrf;
    state.who = s.who;
    return s;
  }

  async function start() {
    if (document.body.dataset.mode === "powerup") {
      const t = window.TrelloPowerUp.iframe(appOptions());
      await trelloSession(t);
      return { who: state.who, t: t };
    }
    const s = await call("GET", "/api/session");
    state.csrf = s.csrf;
    state.who = s.who;
    return { who: s.who, t: null };
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  window.tasksync = { call: call, start: start, trelloSession: trelloSession, appOptions: appOptions, state: state, el: el };
})();
