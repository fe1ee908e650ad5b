"use strict";
// A stand-in for Trello's client library (power-up.min.js, served from Trello's CDN and
// unreachable in tests). It records what the Power-Up registers and asks for, so the tests can
// call each capability like Trello would and check what it returns.
//
// Configure it per origin before loading a page:
//   localStorage.setItem("powerupStub", JSON.stringify({token: "...", card: "card id", board: "board id"}))
// `token` null means the member has not authorized the Power-Up.
(function () {
  const cfg = JSON.parse(window.localStorage.getItem("powerupStub") || "{}");
  const calls = [];

  function restApi(opts) {
    return {
      options: opts,
      isAuthorized: () => Promise.resolve(Boolean(cfg.token)),
      getToken: () => Promise.resolve(cfg.token || null),
      authorize: (o) => {
        calls.push(["authorize", o]);
        return Promise.resolve(cfg.token || null);
      },
    };
  }

  function makeT(opts) {
    return {
      card: (...fields) => Promise.resolve({ id: cfg.card, fields: fields }),
      board: (...fields) => Promise.resolve({ id: cfg.board, fields: fields }),
      modal: (o) => {
        calls.push(["modal", o]);
        return Promise.resolve();
      },
      popup: (o) => {
        calls.push(["popup", o]);
        return Promise.resolve();
      },
      closePopup: () => {
        calls.push(["closePopup"]);
        return Promise.resolve();
      },
      signUrl: (url) => url,
      sizeTo: () => Promise.resolve(),
      getRestApi: () => restApi(opts),
    };
  }

  window.TrelloPowerUp = {
    Promise: Promise,
    initialize: function (capabilities, opts) {
      window.powerupStub = { capabilities: capabilities, options: opts || {}, calls: calls, t: makeT(opts || {}) };
    },
    iframe: function (opts) {
      window.powerupStub = { iframe: true, options: opts || {}, calls: calls };
      return makeT(opts || {});
    },
  };
})();
