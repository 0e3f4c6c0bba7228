// The audience page: ask, vote, and watch the event, live. Without this file the page still
// works through plain form posts.
"use strict";

(function () {
  const { uuid, connect, post, setField, setText, arrange, upsert, banner, announcer } = window.liveqa;
  const body = document.body;
  const code = body.dataset.code;
  const maxLength = Number(body.dataset.maxLength);
  const questions = new Map();
  const voted = new Set();
  const elements = { live: new Map(), queue: new Map(), mine: new Map(), answered: new Map() };
  const STATUS = {
    pending: "Waiting for a moderator",
    queued: "In the queue",
    live: "On screen now",
    answered: "Answered",
    dismissed: "Not taken",
  };
  let sort = body.dataset.sort || "top";
  let ready = false;

  const form = document.getElementById("ask");
  const text = document.getElementById("text");
  const count = document.getElementById("count");
  const askError = document.getElementById("ask-error");
  const sendStatus = document.getElementById("send-status");
  const sendButton = document.getElementById("send");
  const nameInput = document.getElementById("name");
  const anonymous = document.getElementById("anonymous");
  const panelist = document.getElementById("panelist");

  function byTop(a, b) {
    return b.votes - a.votes || a.created_at - b.created_at;
  }
  function byNew(a, b) {
    return b.created_at - a.created_at;
  }

  function build(kind, q) {
    const template = kind === "mine" ? "mine-template" : kind === "answered" ? "answered-template" : "question-template";
    const element = document.getElementById(template).content.firstElementChild.cloneNode(true);
    element.dataset.id = q.id;
    const vote = element.querySelector("form.vote");
    if (vote) vote.action = `/e/${encodeURIComponent(code)}/questions/${encodeURIComponent(q.id)}/vote`;
    return element;
  }

  function fill(element, q, kind) {
    element.dataset.state = q.state;
    setField(element, "text", q.text);
    setField(element, "name", q.name || "Anonymous");
    const to = setField(element, "panelist", q.panelist ? `to ${q.panelist}` : "");
    if (to) to.hidden = !q.panelist;
    const answer = element.querySelector('[data-field="answer"]');
    if (answer) {
      answer.hidden = !q.answer;
      setText(answer.querySelector('[data-field="answer-text"]'), q.answer || "");
    }
    setField(element, "votes", String(q.votes));
    setField(element, "votes-label", q.votes === 1 ? "1 vote" : `${q.votes} votes`);
    if (kind === "mine") {
      let status = STATUS[q.state] || q.state;
      if (q.state === "dismissed" && q.reason) status += `: ${q.reason}`;
      setField(element, "status", status);
    }
    const button = element.querySelector(".vote-button");
    if (button) {
      const up = !voted.has(q.id);
      button.setAttribute("aria-pressed", up ? "false" : "true");
      element.querySelector('input[name="up"]').value = up ? "true" : "false";
    }
  }

  function show(kind, list) {
    const container = document.querySelector(`[data-list="${kind}"]`);
    const cache = elements[kind];
    const keep = new Set(list.map((q) => q.id));
    for (const id of cache.keys()) if (!keep.has(id)) cache.delete(id);
    const ordered = list.map((q) => {
      let element = cache.get(q.id);
      if (!element) {
        element = build(kind, q);
        cache.set(q.id, element);
      }
      fill(element, q, kind);
      return element;
    });
    arrange(container, ordered);
    const empty = document.querySelector(`[data-empty="${kind}"]`);
    if (empty) empty.hidden = list.length > 0;
    const badge = document.querySelector(`[data-count="${kind}"]`);
    if (badge) badge.textContent = String(list.length);
  }

  const announceLive = announcer(document.getElementById("live-announcer"));

  function render() {
    const all = Array.from(questions.values());
    announceLive(all.find((q) => q.state === "live"));
    show("live", all.filter((q) => q.state === "live"));
    show("queue", all.filter((q) => q.state === "queued").sort(sort === "new" ? byNew : byTop));
    show("answered", all.filter((q) => q.state === "answered").sort((a, b) => b.updated_at - a.updated_at));
    const mine = all.filter((q) => q.mine).sort(byNew);
    show("mine", mine);
    document.getElementById("mine").hidden = mine.length === 0;
  }

  function adopt(serverEvent) {
    if (!serverEvent) return;
    body.dataset.state = serverEvent.state;
    body.dataset.voting = serverEvent.settings.voting ? "on" : "off";
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      questions.clear();
      for (const q of message.questions) questions.set(q.id, q);
      voted.clear();
      for (const id of message.voted) voted.add(id);
      adopt(message.event);
      ready = true;
    } else if (message.type === "change") {
      for (const q of message.questions) {
        const mine = questions.get(q.id)?.mine;
        if (mine && !q.mine) q.mine = true;
        upsert(questions, q);
      }
      for (const id of message.removed) questions.delete(id);
      adopt(message.event);
    } else {
      return;
    }
    if (ready) render();
  }

  // Asking.
  function updateCount() {
    const length = text.value.trim().length;
    const over = length - maxLength;
    count.textContent = over > 0 ? `${length} / ${maxLength}: ${over} too many` : `${length} / ${maxLength}`;
    count.classList.toggle("over", over > 0);
  }

  function refuse(message) {
    askError.textContent = message;
    askError.hidden = false;
  }

  let sending = false;
  async function ask(event) {
    event.preventDefault();
    if (sending) return;
    askError.hidden = true;
    const value = text.value.trim();
    if (!value) return refuse("The question is empty.");
    if (value.length > maxLength) {
      return refuse(`The question is ${value.length} characters long; the limit is ${maxLength}.`);
    }
    const payload = { text: value };
    if (nameInput && !(anonymous && anonymous.checked)) payload.name = nameInput.value;
    if (panelist) payload.panelist = panelist.value;
    if (nameInput) localStorage.setItem("liveqa:name", nameInput.value);
    sending = true;
    sendButton.disabled = true;
    sendStatus.textContent = "Sending…";
    const result = await post(`/e/${encodeURIComponent(code)}/questions`, payload, {
      key: uuid(),
      retries: 1000,
      onWaiting: () => {
        sendStatus.textContent = "Not sent yet: waiting for the connection. It will go by itself.";
      },
    });
    sending = false;
    sendButton.disabled = false;
    if (!result.ok) {
      sendStatus.textContent = "";
      return refuse(result.data.message || "The question was not accepted.");
    }
    const q = result.data.question;
    upsert(questions, q);
    render();
    text.value = "";
    updateCount();
    sendStatus.textContent =
      q.state === "pending"
        ? "Sent. A moderator will look at it first; see Your questions."
        : "Sent. It is in the queue now.";
  }

  // Voting: one tap to vote, another to take it back.
  async function vote(event) {
    const voteForm = event.target.closest("form.vote");
    if (!voteForm) return;
    event.preventDefault();
    const id = voteForm.closest("[data-id]").dataset.id;
    const q = questions.get(id);
    if (!q) return;
    const up = !voted.has(id);
    const before = q.votes;
    if (up) voted.add(id);
    else voted.delete(id);
    q.votes = Math.max(0, before + (up ? 1 : -1));
    render();
    const result = await post(`/e/${encodeURIComponent(code)}/questions/${encodeURIComponent(id)}/vote`, { up });
    if (result.ok) {
      questions.get(id).votes = result.data.question.votes;
    } else if (result.data.error === "already_voted") {
      voted.add(id);
    } else if (result.data.error === "not_voted") {
      voted.delete(id);
    } else {
      if (up) voted.delete(id);
      else voted.add(id);
      const current = questions.get(id);
      if (current) current.votes = before;
      sendStatus.textContent = result.data.message || "The vote did not count. Try again.";
    }
    render();
  }

  function setSort(value) {
    sort = value;
    for (const link of document.querySelectorAll(".sort a")) {
      if (link.dataset.sort === value) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    const url = new URL(location.href);
    url.searchParams.set("sort", value);
    history.replaceState(null, "", url);
    render();
  }

  if (text) {
    // The count explains the limit; the server still checks it.
    text.removeAttribute("maxlength");
    text.addEventListener("input", updateCount);
    updateCount();
  }
  if (nameInput && !nameInput.value) nameInput.value = localStorage.getItem("liveqa:name") || "";
  if (anonymous && nameInput) {
    const sync = () => {
      nameInput.disabled = anonymous.checked;
    };
    anonymous.addEventListener("change", sync);
    sync();
  }
  if (form) form.addEventListener("submit", ask);
  document.addEventListener("submit", vote);
  for (const link of document.querySelectorAll(".sort a")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      setSort(link.dataset.sort);
    });
  }
  connect({ code, role: "audience", onMessage, onStatus: banner(document.getElementById("connection")) });
})();
