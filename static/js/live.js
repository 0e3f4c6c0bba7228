// The live connection shared by every screen, and the few helpers they all need.
// The websocket only ever brings news; every write is an HTTP request with an idempotency key.
"use strict";

window.liveqa = (function () {
  const BASE_DELAY = 500;
  const MAX_DELAY = 30000;
  const POLICY_VIOLATION = 1008;

  function uuid() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Full jitter: a venue's worth of phones reconnecting after a blip spread out, not stampede.
  function backoff(attempt) {
    return Math.random() * Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt);
  }

  // connect({code, role, onMessage(msg), onStatus(status)}): status is "connecting", "online",
  // "lost" (was online, trying again) or "back" (online again after being lost).
  function connect(options) {
    let seq = null;
    let socket = null;
    let attempt = 0;
    let timer = null;
    let wasOnline = false;
    let lost = false;
    let denied = false;

    function url() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const params = new URLSearchParams({ role: options.role });
      if (seq !== null) params.set("since", String(seq));
      return `${scheme}//${location.host}/e/${encodeURIComponent(options.code)}/live?${params}`;
    }

    function status(value) {
      if (options.onStatus) options.onStatus(value);
    }

    function open() {
      clearTimeout(timer);
      timer = null;
      if (socket || denied) return;
      const ws = new WebSocket(url());
      socket = ws;
      ws.onmessage = (frame) => {
        let message;
        try {
          message = JSON.parse(frame.data);
        } catch (error) {
          return;
        }
        if (attempt !== 0 || !wasOnline || lost) {
          attempt = 0;
          status(lost ? "back" : "online");
          wasOnline = true;
          lost = false;
        }
        if (message.type === "resync") {
          // The server may have lost messages for us: start again from a snapshot.
          seq = null;
          ws.close();
          return;
        }
        if (message.type === "snapshot") {
          seq = message.seq;
        } else if (message.type === "change") {
          if (seq !== null && message.seq <= seq) return;
          seq = message.seq;
        }
        options.onMessage(message);
      };
      ws.onclose = (event) => {
        if (socket !== ws) return;
        socket = null;
        if (event.code === POLICY_VIOLATION) {
          // Access ended (a link was regenerated, a session signed out): retrying cannot help.
          denied = true;
          status(event.reason === "passcode changed" ? "passcode" : "denied");
          return;
        }
        if (wasOnline && !lost) {
          lost = true;
          status("lost");
        }
        timer = setTimeout(open, backoff(attempt));
        attempt += 1;
      };
    }

    // The browser knows before the socket does: act on it rather than wait for a timeout.
    window.addEventListener("offline", () => {
      if (socket) socket.close();
    });
    window.addEventListener("online", () => {
      if (!socket) open();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !socket) open();
    });
    status("connecting");
    open();
    return {
      get seq() {
        return seq;
      },
    };
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // POST JSON with an idempotency key. Retries with the same key while the outcome is unknown
  // (no answer, or a 5xx), so a retry never makes a second question. Resolves to
  // {ok, status, data}; `onWaiting(attempt)` is called before each retry.
  async function post(url, body, { key = uuid(), retries = 5, onWaiting } = {}) {
    for (let attempt = 0; ; attempt += 1) {
      let response = null;
      try {
        response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-CSRF-Token": csrfToken(),
          },
          body: JSON.stringify(body),
        });
      } catch (error) {
        response = null;
      }
      if (response && response.status < 500) {
        let data = {};
        try {
          data = await response.json();
        } catch (error) {
          data = { message: `The server answered ${response.status}.` };
        }
        return { ok: response.ok, status: response.status, data };
      }
      if (attempt >= retries) {
        return {
          ok: false,
          status: response ? response.status : 0,
          data: { error: "unknown", message: "Could not reach the server. Try again." },
        };
      }
      if (onWaiting) onWaiting(attempt + 1);
      await new Promise((resolve) => {
        const wait = setTimeout(resolve, Math.max(250, backoff(attempt + 1)));
        window.addEventListener(
          "online",
          () => {
            clearTimeout(wait);
            resolve();
          },
          { once: true },
        );
      });
    }
  }

  // Put a question's fields into an element cloned from a <template>: text only, never HTML.
  function setField(root, name, text) {
    const node = root.querySelector(`[data-field="${name}"]`);
    if (node && node.textContent !== text) node.textContent = text;
    return node;
  }

  // Plain text from people with its line breaks kept and http(s) links made clickable, built as
  // text nodes, <br> and <a> elements: never parsed as HTML. Mirrors liveqa/markup.py.
  const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
  const TRAILING = /[.,;:!?)\]}'"]+$/;
  const shown = new WeakMap();
  function setText(node, text) {
    if (!node || shown.get(node) === text) return node;
    shown.set(node, text);
    const parts = [];
    text.split("\n").forEach((line, index) => {
      if (index > 0) parts.push(document.createElement("br"));
      let last = 0;
      for (const match of line.matchAll(LINK)) {
        const url = match[0].replace(TRAILING, "");
        parts.push(line.slice(last, match.index));
        const link = document.createElement("a");
        link.href = url;
        link.rel = "nofollow ugc noopener noreferrer";
        link.textContent = url;
        parts.push(link);
        last = match.index + url.length;
      }
      parts.push(line.slice(last));
    });
    node.replaceChildren(...parts);
    return node;
  }

  // Keep `list` holding exactly `elements`, in order, moving as little as possible, and keep
  // keyboard focus where it was even when its element moved.
  function arrange(list, elements) {
    const focused = document.activeElement;
    elements.forEach((element, index) => {
      if (list.children[index] !== element) list.insertBefore(element, list.children[index] || null);
    });
    while (list.children.length > elements.length) list.lastElementChild.remove();
    if (focused && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
  }

  // A newer copy of a question replaces ours; an older revision is ignored.
  function upsert(map, question) {
    const current = map.get(question.id);
    if (current && current.rev > question.rev) return false;
    map.set(question.id, question);
    return true;
  }

  function banner(element) {
    let hide = null;
    return (value) => {
      clearTimeout(hide);
      element.dataset.state = value; // connecting, online, lost, back, denied or passcode
      if (value === "passcode") {
        element.textContent = "This event has a new passcode. Reload the page to enter it.";
        element.classList.remove("online");
        element.hidden = false;
      } else if (value === "denied") {
        element.textContent = "This screen has been signed out. Open the link you were given again.";
        element.classList.remove("online");
        element.hidden = false;
      } else if (value === "lost") {
        element.textContent = "Reconnecting…";
        element.classList.remove("online");
        element.hidden = false;
      } else if (value === "back") {
        element.textContent = "Back online";
        element.classList.add("online");
        element.hidden = false;
        hide = setTimeout(() => {
          element.hidden = true;
        }, 3000);
      }
    };
  }

  // Say what went on screen once, when it changes. The lists are not live regions themselves,
  // so a vote count ticking over is not read out each time.
  function announcer(element) {
    let said = null;
    return (live) => {
      const id = live ? live.id : "";
      if (said !== null && id !== said) {
        element.textContent = live ? `Live now: ${live.text}` : "Nothing on screen now.";
      }
      said = id;
    };
  }

  return { uuid, connect, post, setField, setText, arrange, upsert, banner, announcer };
})();
