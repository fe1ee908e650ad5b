"use strict";
// The Power-Up's connector: the capabilities tasksync offers inside Trello.
(function () {
  const ts = window.tasksync;
  const ICON = new URL("/static/icon.svg", window.location.href).href;
  const COLORS = ["red", "orange", "yellow", "green", "light-gray"];
  let session = null;

  // One tasksync session per connector, traded for the member's Trello token when it is authorized.
  function login(t) {
    if (session === null) {
      session = ts.trelloSession(t).catch((e) => {
        session = null;
        throw e;
      });
    }
    return session;
  }

  function short(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  async function cardInfo(t) {
    const authorized = await t.getRestApi().isAuthorized();
    if (!authorized) return null;
    await login(t);
    const card = await t.card("id");
    return ts.call("GET", "/api/cards/" + encodeURIComponent(card.id));
  }

  function badges(info) {
    if (!info) return [];
    const out = [];
    if (info.tier) {
      const m = /(\d+)/.exec(info.tier);
      const color = m ? COLORS[Math.min(Number(m[1]) - 1, COLORS.length - 1)] || "blue" : "blue";
      out.push({ text: info.tier, color: color });
    }
    if (info.owner_reason) out.push({ icon: ICON, text: short(info.owner_reason, 40) });
    if (info.pinned.length) out.push({ text: "pinned: " + info.pinned.join(", "), color: "purple" });
    return out;
  }

  window.TrelloPowerUp.initialize(
    {
      "board-buttons": function () {
        return [
          {
            icon: { dark: ICON, light: ICON },
            text: "Divide & prioritise",
            condition: "edit",
            callback: function (t) {
              return t.modal({ url: "./review.html", fullscreen: true, title: "tasksync: review the plan" });
            },
          },
        ];
      },
      "card-badges": function (t) {
        return cardInfo(t).then(badges, () => []);
      },
      "card-back-section": function (t) {
        return {
          title: "tasksync: why this card is here",
          icon: ICON,
          content: { type: "iframe", url: t.signUrl("./card-back.html"), height: 180 },
        };
      },
      "show-settings": function (t) {
        return t.popup({ title: "tasksync", url: "./settings.html", height: 200 });
      },
      "authorization-status": function (t) {
        return t.getRestApi().isAuthorized().then((authorized) => ({ authorized: authorized }));
      },
      "show-authorization": function (t) {
        return t.popup({ title: "Authorize tasksync", url: "./authorize.html", height: 160 });
      },
    },
    ts.appOptions()
  );
})();
