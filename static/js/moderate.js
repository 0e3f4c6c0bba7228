// The moderator's screen: every question of the event, live, with actions by mouse or keyboard.
"use strict";

(function () {
  const { connect, post, setField, setText, arrange, upsert, banner, announcer } = window.liveqa;
  const body = document.body;
  const code = body.dataset.code;
  const base = `/e/${encodeURIComponent(code)}`;
  const questions = new Map();
  const elements = new Map();
  const LISTS = ["live", "pending", "queued", "answered", "dismissed"];
  const toast = document.getElementById("toast");
  const controls = document.getElementById("controls");
  const queueSort = document.getElementById("queue-sort");
  const dismissDialog = document.getElementById("dismiss-dialog");
  const textDialog = document.getElementById("text-dialog");
  const answerDialog = document.getElementById("answer-dialog");
  let selected = null;
  let ready = false;
  let waiting = -1;
  let toastTimer = null;

  function say(message) {
    clearTimeout(toastTimer);
    toast.textContent = message;
    toast.hidden = false;
    toastTimer = setTimeout(() => {
      toast.hidden = true;
    }, 6000);
  }

  const order = {
    live: (a, b) => a.updated_at - b.updated_at,
    pending: (a, b) => a.created_at - b.created_at,
    answered: (a, b) => b.updated_at - a.updated_at,
    dismissed: (a, b) => b.updated_at - a.updated_at,
    queued: (a, b) => {
      if (queueSort.value === "new") return b.created_at - a.created_at;
      if (queueSort.value === "starred" && a.starred !== b.starred) return a.starred ? -1 : 1;
      return b.votes - a.votes || a.created_at - b.created_at;
    },
  };

  function element(q) {
    let li = elements.get(q.id);
    if (!li) {
      li = document.getElementById("question-template").content.firstElementChild.cloneNode(true);
      li.dataset.id = q.id;
      elements.set(q.id, li);
    }
    li.dataset.state = q.state;
    li.dataset.starred = q.starred ? "true" : "false";
    setField(li, "votes-label", q.votes === 1 ? "1 vote" : `${q.votes} votes`);
    setField(li, "name", q.name || "Anonymous");
    setField(li, "text", q.text);
    const to = setField(li, "panelist", q.panelist ? `to ${q.panelist}` : "");
    to.hidden = !q.panelist;
    const reason = setField(li, "reason", q.state === "dismissed" ? q.reason || "" : "");
    reason.hidden = !(q.state === "dismissed" && q.reason);
    const answer = li.querySelector('[data-field="answer"]');
    answer.hidden = !q.answer;
    setText(answer.querySelector('[data-field="answer-text"]'), q.answer || "");
    const assignee = setField(li, "assignee", q.assignee ? `Assigned to ${q.assignee}` : "");
    assignee.hidden = !q.assignee;
    const draft = li.querySelector('[data-field="draft"]');
    draft.hidden = !q.draft;
    setField(draft, "draft-text", q.draft || "");
    const star = li.querySelector('[data-action="star"]');
    star.setAttribute("aria-pressed", q.starred ? "true" : "false");
    star.firstChild.textContent = q.starred ? "Unstar " : "Star ";
    li.setAttribute("aria-label", `${stateName(q.state)}: ${q.text}`);
    return li;
  }

  // After the event, what is left in the queue is what still needs a written answer.
  function stateName(state) {
    const closed = body.dataset.state === "closed" || body.dataset.state === "archived";
    return state === "queued" && closed ? "unanswered" : state;
  }

  const announceLive = announcer(document.getElementById("live-announcer"));

  function render() {
    const all = Array.from(questions.values());
    announceLive(all.find((q) => q.state === "live"));
    for (const id of elements.keys()) if (!questions.has(id)) elements.delete(id);
    for (const state of LISTS) {
      const list = all.filter((q) => q.state === state).sort(order[state]);
      arrange(document.querySelector(`[data-list="${state}"]`), list.map(element));
      document.querySelector(`[data-empty="${state}"]`).hidden = list.length > 0;
      for (const count of document.querySelectorAll(`[data-count="${state}"]`)) {
        count.textContent = String(list.length);
      }
    }
    const pending = all.filter((q) => q.state === "pending").length;
    if (pending !== waiting) {
      // Announced by the live region, so only when the number changes.
      waiting = pending;
      document.getElementById("waiting").textContent =
        pending === 0 ? "" : pending === 1 ? "1 question waiting" : `${pending} questions waiting`;
    }
    document.querySelector('[data-stat="questions"]').textContent = String(all.length);
    document.querySelector('[data-stat="votes"]').textContent = String(all.reduce((n, q) => n + q.votes, 0));
    if (selected && !elements.has(selected)) selected = null;
    for (const [id, li] of elements) li.classList.toggle("selected", id === selected);
  }

  let current = null;
  function adopt(serverEvent) {
    if (!serverEvent) return;
    current = serverEvent;
    const changed = body.dataset.state !== serverEvent.state;
    body.dataset.state = serverEvent.state;
    if (changed && ready) render();
    for (const radio of controls.querySelectorAll('input[name="state"]')) {
      radio.checked = radio.value === serverEvent.state;
    }
    controls.elements.premoderation.checked = serverEvent.settings.premoderation;
    controls.elements.voting.checked = serverEvent.settings.voting;
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      questions.clear();
      for (const q of message.questions) questions.set(q.id, q);
      adopt(message.event);
      ready = true;
    } else if (message.type === "change") {
      for (const q of message.questions) upsert(questions, q);
      for (const id of message.removed) questions.delete(id);
      adopt(message.event);
    } else if (message.type === "presence") {
      document.querySelector(".presence").hidden = false;
      for (const role of ["audience", "moderator", "panel"]) {
        document.querySelector(`[data-stat="${role}"]`).textContent = String(message[role] ?? 0);
      }
      return;
    } else {
      return;
    }
    if (ready) render();
  }

  // Actions.
  async function act(id, action, payload = {}) {
    const result = await post(`${base}/questions/${encodeURIComponent(id)}/${action}`, payload);
    if (result.ok) {
      upsert(questions, result.data.question);
      render();
      return true;
    }
    const conflict = result.status === 409 ? "Someone may have acted on it first. " : "";
    say(`${conflict}${result.data.message || "That did not work."}`);
    return false;
  }

  // Resolves to the value of the button that closed the dialog ("" for Escape).
  function ask(dialog, setup) {
    return new Promise((resolve) => {
      setup();
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
      dialog.showModal();
    });
  }

  // Assign, draft and publish a written answer. A live question can only be published.
  async function answerInWriting(q, li) {
    const area = document.getElementById("answer-text");
    const assignee = document.getElementById("answer-assignee");
    const drafting = q.state !== "live";
    const choice = await ask(answerDialog, () => {
      setField(answerDialog, "quote", q.text);
      const field = answerDialog.querySelector('[data-field="assign-field"]');
      if (field) field.hidden = !drafting;
      if (assignee) assignee.value = q.assignee || "";
      answerDialog.querySelector('[data-field="save-draft"]').hidden = !drafting;
      area.value = q.draft || q.answer || "";
    });
    if (choice !== "publish" && choice !== "draft") {
      li.focus();
      return false;
    }
    if (drafting && assignee && assignee.value !== (q.assignee || "")) {
      if (!(await act(q.id, "assign", { panelist: assignee.value }))) return false;
    }
    if (choice === "publish") return act(q.id, "answer", { text: area.value });
    if (area.value.trim() === (q.draft || "")) return true;
    return act(q.id, "draft", { text: area.value });
  }

  async function run(id, action) {
    const q = questions.get(id);
    const li = elements.get(id);
    if (!q || !li) return;
    const button = li.querySelector(`[data-action="${action}"]`);
    if (!button || getComputedStyle(button).display === "none") return;
    // Keep the keyboard moving: after an item leaves its list, select its neighbour.
    const neighbour = li.nextElementSibling || li.previousElementSibling;
    let ok = false;
    if (action === "dismiss") {
      const form = dismissDialog.querySelector("form");
      const confirmed = await ask(dismissDialog, () => {
        setField(dismissDialog, "quote", q.text);
        form.elements["reason-text"].value = "";
        form.querySelector('input[name="reason-choice"]').checked = true;
      });
      if (confirmed !== "ok") return li.focus();
      const choice = form.querySelector('input[name="reason-choice"]:checked');
      const reason = choice && choice.value ? choice.value : form.elements["reason-text"].value;
      ok = await act(id, "dismiss", { reason });
    } else if (action === "answer") {
      ok = await answerInWriting(q, li);
    } else if (action === "edit") {
      const area = document.getElementById("dialog-text");
      const confirmed = await ask(textDialog, () => {
        setField(textDialog, "label", "Question text");
        document.getElementById("text-h").textContent = "Edit the question";
        area.value = q.text;
      });
      if (confirmed !== "ok") return li.focus();
      ok = await act(id, action, { text: area.value });
    } else if (action === "star") {
      ok = await act(id, "star", { starred: !q.starred });
    } else if (action === "promote") {
      ok = await act(id, "promote", { previous: controls.elements.previous.value });
    } else {
      ok = await act(id, action);
    }
    if (ok && selected === id && neighbour && li.parentElement !== neighbour.parentElement) {
      select(neighbour.dataset.id);
    } else if (selected === id) {
      li.focus({ preventScroll: false });
    }
  }

  function select(id) {
    selected = id;
    for (const [key, li] of elements) li.classList.toggle("selected", key === id);
    const li = elements.get(id);
    if (li) li.focus();
  }

  function visible() {
    return LISTS.flatMap((state) => Array.from(document.querySelectorAll(`[data-list="${state}"] > .mq`)));
  }

  const KEYS = { a: "approve", x: "dismiss", r: "restore", p: "promote", m: "done", b: "back", s: "star", e: "edit", w: "answer" };
  const COLUMNS = { 1: "pending", 2: "queued", 3: "answered", 4: "dismissed" };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // Letters are shortcuts everywhere but where they type text (radios and checkboxes take none).
    if (event.target.closest("input:not([type=radio]):not([type=checkbox]), textarea, select, dialog")) return;
    const key = event.key.toLowerCase();
    const items = visible();
    const current = event.target.closest(".mq") ? event.target.closest(".mq").dataset.id : selected;
    if (key === "j" || key === "k") {
      event.preventDefault();
      const index = items.findIndex((li) => li.dataset.id === current);
      const next = key === "j" ? index + 1 : index < 0 ? items.length - 1 : index - 1;
      const target = items[Math.max(0, Math.min(items.length - 1, next))];
      if (target) select(target.dataset.id);
    } else if (COLUMNS[key]) {
      event.preventDefault();
      const first = document.querySelector(`[data-list="${COLUMNS[key]}"] > .mq`);
      if (first) select(first.dataset.id);
      else document.getElementById(`col-${COLUMNS[key]}`).scrollIntoView();
    } else if (KEYS[key] && current) {
      event.preventDefault();
      selected = current;
      run(current, KEYS[key]);
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".mq [data-action]");
    if (button) {
      const id = button.closest(".mq").dataset.id;
      selected = id;
      run(id, button.dataset.action);
      return;
    }
    const item = event.target.closest(".mq");
    if (item && !event.target.closest("a, button")) select(item.dataset.id);
  });

  document.getElementById("reason-text").addEventListener("input", () => {
    dismissDialog.querySelector('input[name="reason-choice"][value=""]').checked = true;
  });

  controls.addEventListener("change", async (event) => {
    const input = event.target;
    if (input.name === "previous") return;
    const payload = input.name === "state" ? { state: input.value } : { [input.name]: input.checked };
    const result = await post(`${base}/state`, payload);
    if (result.ok) {
      adopt(result.data.event);
    } else {
      say(result.data.message || "The event did not change.");
      adopt(current); // put the controls back as the event still is
    }
  });
  queueSort.addEventListener("change", render);
  connect({ code, role: "moderator", onMessage, onStatus: banner(document.getElementById("connection")) });
})();
