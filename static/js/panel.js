// The panel display: the question on screen, as large as it fits. No controls; reconnects silently.
"use strict";

(function () {
  const { connect, upsert } = window.liveqa;
  const code = document.body.dataset.code;
  const questions = new Map();
  // "Up next" is opt-in (?next=3): not every room wants the queue on the big screen.
  const nextCount = Math.min(5, Number(new URLSearchParams(location.search).get("next")) || 0);
  const area = document.querySelector(".panel-live");
  const card = document.getElementById("panel-question");
  const text = document.getElementById("panel-text");
  const name = document.getElementById("panel-name");
  const panelist = document.getElementById("panel-panelist");
  const idle = document.getElementById("panel-idle");
  const next = document.getElementById("panel-next");
  const nextList = document.getElementById("next-list");
  let shownId = null;

  // The largest type at which the whole question fits: any length, no scrolling.
  function fit() {
    if (card.hidden) return;
    const vw = window.innerWidth / 100;
    let low = 12;
    let high = Math.max(low, Math.min(7 * vw, window.innerHeight / 7));
    text.style.fontSize = `${high}px`;
    if (card.scrollHeight <= area.clientHeight && card.scrollWidth <= area.clientWidth) return;
    for (let i = 0; i < 14; i += 1) {
      const middle = (low + high) / 2;
      text.style.fontSize = `${middle}px`;
      if (card.scrollHeight <= area.clientHeight && card.scrollWidth <= area.clientWidth) low = middle;
      else high = middle;
    }
    text.style.fontSize = `${low}px`;
  }

  function render() {
    const all = Array.from(questions.values());
    if (nextCount > 0) {
      const upcoming = all
        .filter((q) => q.state === "queued")
        .sort((a, b) => (a.starred !== b.starred ? (a.starred ? -1 : 1) : b.votes - a.votes || a.created_at - b.created_at))
        .slice(0, nextCount);
      next.hidden = upcoming.length === 0;
      nextList.replaceChildren(
        ...upcoming.map((q) => {
          const li = document.createElement("li");
          li.textContent = q.text;
          return li;
        }),
      );
    }
    const live = all.find((q) => q.state === "live");
    card.hidden = !live;
    idle.hidden = Boolean(live);
    if (live) {
      if (live.id !== shownId) {
        // Restart the entrance animation for a new question only.
        card.classList.remove("panel-question");
        void card.offsetWidth;
        card.classList.add("panel-question");
      }
      text.textContent = live.text;
      name.textContent = live.name || "Anonymous";
      panelist.textContent = live.panelist ? live.panelist : "";
      panelist.hidden = !live.panelist;
      fit();
    }
    shownId = live ? live.id : null;
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      questions.clear();
      for (const q of message.questions) questions.set(q.id, q);
    } else if (message.type === "change") {
      for (const q of message.questions) upsert(questions, q);
      for (const id of message.removed) questions.delete(id);
    } else {
      return;
    }
    render();
  }

  window.addEventListener("resize", fit);
  connect({ code, role: "panel", onMessage });
})();
