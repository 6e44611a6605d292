// The demo page: one panel per protocol, all subscribed to the same channel.
// Plain JavaScript, no build step. Event data is only ever written with
// textContent, never parsed as HTML.
"use strict";

(() => {
  const PROTOCOLS = {
    sse: { title: "Server-Sent Events", endpoint: (channel) => `GET /channels/${channel}/sse` },
    websocket: { title: "WebSocket", endpoint: () => "GET /ws" },
    ndjson: { title: "NDJSON stream", endpoint: (channel) => `GET /channels/${channel}/ndjson` },
  };
  const STATES = ["connecting", "open", "reconnecting", "closed"];
  const MAX_EVENTS = 200;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const CHANNEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

  const channelPath = (channel) => `/channels/${encodeURIComponent(channel)}`;

  // Exponential backoff with jitter, so that clients do not all come back at once.
  const backoff = (attempt) => {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  };

  // The sentence of a JSON error body, or the HTTP status when there is none.
  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") {
        return body.message;
      }
    } catch {
      // Not JSON: fall through to the status line.
    }
    return `${response.status} ${response.statusText}`.trim();
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  // One protocol's panel: its state, a notice line and the events as they arrive.
  class Panel {
    constructor(protocol, announce) {
      const { title } = PROTOCOLS[protocol];
      this.protocol = protocol;
      this.root = element("section", "panel");
      this.root.id = `panel-${protocol}`;
      this.root.dataset.testid = `panel-${protocol}`;
      this.root.dataset.protocol = protocol;
      this.root.setAttribute("aria-labelledby", `panel-${protocol}-title`);

      const head = element("header", "panel-head");
      const heading = element("h2", "", title);
      heading.id = `panel-${protocol}-title`;
      this.state = element("span", "state");
      this.state.setAttribute("role", "status");
      head.append(heading, this.state);

      this.endpoint = element("code", "endpoint");
      this.notice = element("p", "notice");
      this.notice.hidden = true;
      this.events = element("ol", "events");
      this.events.setAttribute("aria-label", `Events received over ${title}`);
      if (announce) {
        // Only one panel is a live region: the same message three times is noise.
        this.events.setAttribute("aria-live", "polite");
        this.events.setAttribute("aria-relevant", "additions");
      }
      this.empty = element("p", "empty", "No events yet.");
      this.root.append(head, this.endpoint, this.notice, this.events, this.empty);
      this.setState("connecting");
    }

    setState(state) {
      if (!STATES.includes(state)) {
        throw new Error(`unknown state ${state}`);
      }
      this.state.textContent = state;
      this.state.dataset.state = state;
      this.root.dataset.state = state;
    }

    setChannel(channel) {
      this.endpoint.textContent = PROTOCOLS[this.protocol].endpoint(encodeURIComponent(channel));
    }

    note(text) {
      this.notice.textContent = text || "";
      this.notice.hidden = !text;
    }

    clear() {
      this.events.replaceChildren();
      this.empty.hidden = false;
    }

    addEvent(id, data) {
      const item = element("li", "event");
      item.dataset.id = id;
      const meta = element("div", "event-meta");
      meta.append(element("span", "event-id", `#${id}`));
      item.append(meta);
      if (data && typeof data === "object" && typeof data.text === "string") {
        const at = typeof data.at === "string" ? new Date(data.at) : null;
        if (at && !Number.isNaN(at.getTime())) {
          const time = element("time", "event-time", at.toLocaleTimeString());
          time.dateTime = at.toISOString();
          meta.append(time);
        }
        item.append(element("p", "event-text", data.text));
      } else {
        item.append(element("code", "event-data", JSON.stringify(data)));
      }
      const list = this.events;
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
      list.append(item);
      while (list.childElementCount > MAX_EVENTS) {
        list.firstElementChild.remove();
      }
      this.empty.hidden = true;
      if (atBottom) {
        list.scrollTop = list.scrollHeight;
      }
    }
  }

  // What every connection shares: the channel, the last id seen, reconnect timing.
  class Connection {
    constructor(panel) {
      this.panel = panel;
      this.channel = null;
      this.lastId = null;
      this.attempt = 0;
      this.timer = null;
      this.running = false;
    }

    // Start on a channel from scratch: no resume point.
    start(channel) {
      this.stop();
      this.channel = channel;
      this.lastId = null;
      this.panel.setChannel(channel);
      this.panel.clear();
      this.panel.note("");
      this.resume();
    }

    // Connect again, resuming after the last event seen.
    resume() {
      this.stop();
      this.running = true;
      this.attempt = 0;
      this.connect("connecting");
    }

    stop() {
      this.running = false;
      clearTimeout(this.timer);
      this.timer = null;
      this.close();
      this.panel.setState("closed");
    }

    opened() {
      this.attempt = 0;
      this.panel.note("");
      this.panel.setState("open");
    }

    received(id, data) {
      this.lastId = id;
      this.panel.addEvent(id, data);
    }

    reset() {
      this.panel.clear();
      this.panel.note("The server could not resume from the last event seen; showing its history.");
    }

    // The connection ended: try again after the server's hint or a backoff delay.
    scheduleReconnect(delayMs) {
      this.close();
      if (!this.running) {
        return;
      }
      const delay = delayMs ?? backoff(this.attempt);
      this.attempt += 1;
      this.panel.setState("reconnecting");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.running) {
          this.connect("reconnecting");
        }
      }, delay);
    }

    // Give up for good, e.g. on a channel the server refuses.
    fail(message) {
      this.stop();
      this.panel.note(message);
    }

    // The token has expired or is missing: stop until the page has a fresh one, then
    // resume after the last event seen (nothing is lost meanwhile).
    needToken(message) {
      this.fail(message);
      document.dispatchEvent(new CustomEvent("token-needed", { detail: message }));
    }
  }

  // SSE: EventSource reconnects by itself and resends Last-Event-ID.
  class SseConnection extends Connection {
    connect(state) {
      this.panel.setState(state);
      let url = `${channelPath(this.channel)}/sse`;
      if (this.lastId !== null) {
        // A new EventSource does not know the old one's last id: pass it along.
        url += `?last_event_id=${encodeURIComponent(this.lastId)}`;
      }
      const source = new EventSource(url);
      this.source = source;
      source.onopen = () => this.opened();
      source.onmessage = (message) => {
        this.received(message.lastEventId, JSON.parse(message.data));
      };
      source.addEventListener("reset", () => this.reset());
      source.addEventListener("expired", (message) => this.needToken(JSON.parse(message.data).message));
      source.onerror = () => {
        if (this.source !== source) {
          return;
        }
        if (source.readyState === EventSource.CONNECTING) {
          // The browser is already reconnecting, with the server's retry delay.
          this.panel.setState("reconnecting");
        } else {
          // The browser gave up (an HTTP error such as 503): retry with backoff.
          this.scheduleReconnect();
        }
      };
    }

    close() {
      if (this.source) {
        this.source.close();
        this.source = null;
      }
    }
  }

  // NDJSON: fetch() and a stream reader; one JSON object a line, empty lines are heartbeats.
  class NdjsonConnection extends Connection {
    connect(state) {
      this.panel.setState(state);
      const controller = new AbortController();
      this.controller = controller;
      this.read(controller).then(
        (retryMs) => {
          if (this.controller === controller) {
            this.scheduleReconnect(retryMs);
          }
        },
        (error) => {
          if (this.controller === controller && !controller.signal.aborted) {
            console.debug("ndjson stream ended", error);
            this.scheduleReconnect();
          }
        },
      );
    }

    // Read one response to its end; return the server's retry hint, if it gave one.
    async read(controller) {
      let url = `${channelPath(this.channel)}/ndjson`;
      if (this.lastId !== null) {
        url += `?last_event_id=${encodeURIComponent(this.lastId)}`;
      }
      const response = await fetch(url, {
        signal: controller.signal,
        cache: "no-store",
        headers: { Accept: "application/x-ndjson" },
      });
      if (!response.ok) {
        const message = await errorMessage(response);
        if (response.status >= 500) {
          throw new Error(message);
        }
        if (response.status === 401) {
          this.needToken(message);
          return undefined;
        }
        if (response.status === 400 && this.lastId !== null) {
          // A resume point this server cannot read: start over from live events.
          this.lastId = null;
          this.panel.note(message);
          return undefined;
        }
        this.fail(message);
        return undefined;
      }
      this.opened();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      let retryMs;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          return retryMs;
        }
        buffered += value;
        let newline = buffered.indexOf("\n");
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf("\n");
          if (line === "") {
            continue; // A heartbeat.
          }
          const message = JSON.parse(line);
          if (message.op === "reset") {
            this.reset();
          } else if (message.op === "expired") {
            this.needToken(message.message);
            return undefined;
          } else if (message.op === "retry") {
            retryMs = message.retry;
          } else if (typeof message.id === "string") {
            this.received(message.id, message.data);
          }
        }
      }
    }

    close() {
      if (this.controller) {
        this.controller.abort();
        this.controller = null;
      }
    }
  }

  // WebSocket: subscribe after every (re)connect, with the last id seen.
  class WebSocketConnection extends Connection {
    connect(state) {
      this.panel.setState(state);
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${window.location.host}/ws`);
      this.socket = socket;
      socket.onopen = () => this.subscribe();
      socket.onmessage = (message) => this.handle(JSON.parse(message.data));
      socket.onclose = (close) => {
        if (this.socket === socket) {
          // 1001: the server is shutting down; give it a moment before coming back.
          this.scheduleReconnect(close.code === 1001 ? BACKOFF_MAX_MS / 5 : undefined);
        }
      };
    }

    subscribe() {
      const message = { op: "subscribe", channel: this.channel };
      if (this.lastId !== null) {
        message.last_event_id = this.lastId;
      }
      this.socket.send(JSON.stringify(message));
    }

    handle(message) {
      if (message.channel !== undefined && message.channel !== this.channel) {
        return; // Left over from a channel this socket has left.
      }
      switch (message.op) {
        case "subscribed":
          this.opened();
          break;
        case "event":
          this.received(message.id, message.data);
          break;
        case "reset":
          this.reset();
          break;
        case "error":
          if (message.code === "unauthorized" || message.code === "token_expired") {
            this.needToken(message.message);
            break;
          }
          if (message.code === "bad_last_event_id" && this.lastId !== null) {
            this.lastId = null;
            this.subscribe();
          }
          this.panel.note(message.message);
          break;
        default:
          break;
      }
    }

    // One socket carries many channels: move it instead of reconnecting.
    start(channel) {
      const socket = this.socket;
      if (!this.running || !socket || socket.readyState !== WebSocket.OPEN) {
        super.start(channel);
        return;
      }
      socket.send(JSON.stringify({ op: "unsubscribe", channel: this.channel }));
      this.channel = channel;
      this.lastId = null;
      this.panel.setChannel(channel);
      this.panel.clear();
      this.panel.note("");
      this.panel.setState("connecting");
      this.subscribe();
    }

    close() {
      if (this.socket) {
        const socket = this.socket;
        this.socket = null;
        socket.close(1000);
      }
    }
  }

  const CONNECTIONS = { sse: SseConnection, websocket: WebSocketConnection, ndjson: NdjsonConnection };

  function main() {
    const app = document.getElementById("app");
    const protocols = (app.dataset.protocols || "").split(/\s+/).filter((name) => name in CONNECTIONS);
    const panels = document.getElementById("panels");
    const connections = protocols.map((protocol, index) => {
      const panel = new Panel(protocol, index === 0);
      panels.append(panel.root);
      return new CONNECTIONS[protocol](panel);
    });

    const channelForm = document.getElementById("channel-form");
    const channelInput = document.getElementById("channel");
    const toggle = document.getElementById("connection-toggle");
    const publishForm = document.getElementById("publish-form");
    const messageInput = document.getElementById("message");
    const publishButton = document.getElementById("publish-button");
    const publishError = document.getElementById("publish-error");
    const publishStatus = document.getElementById("publish-status");
    const tokenForm = document.getElementById("token-form");
    const tokenInput = document.getElementById("token");
    const tokenStatus = document.getElementById("token-status");

    const fromUrl = new URLSearchParams(window.location.search).get("channel");
    let channel = fromUrl && CHANNEL_PATTERN.test(fromUrl) ? fromUrl : channelInput.value;
    channelInput.value = channel;
    let connected = true;

    const showConnected = () => {
      toggle.textContent = connected ? "Disconnect" : "Connect";
      toggle.setAttribute("aria-pressed", String(!connected));
    };

    channelForm.addEventListener("submit", (submit) => {
      submit.preventDefault();
      const next = channelInput.value.trim();
      if (!CHANNEL_PATTERN.test(next)) {
        channelInput.reportValidity();
        return;
      }
      channel = next;
      const url = new URL(window.location.href);
      url.searchParams.set("channel", channel);
      window.history.replaceState(null, "", url);
      connected = true;
      showConnected();
      for (const connection of connections) {
        connection.start(channel);
      }
    });

    // Disconnect, then connect again: each panel resumes after the last event it saw.
    toggle.addEventListener("click", () => {
      connected = !connected;
      showConnected();
      for (const connection of connections) {
        if (connected) {
          connection.resume();
        } else {
          connection.stop();
        }
      }
    });

    publishForm.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      const text = messageInput.value;
      if (text.trim() === "") {
        return;
      }
      publishButton.disabled = true;
      publishError.textContent = "";
      publishStatus.textContent = "";
      try {
        const response = await fetch(`${channelPath(channel)}/events`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text, at: new Date().toISOString() }),
        });
        if (response.ok) {
          const body = await response.json();
          messageInput.value = "";
          publishStatus.textContent = `Published to ${body.channel} as #${body.id}.`;
        } else {
          publishError.textContent = `Not published: ${await errorMessage(response)}`;
        }
      } catch {
        publishError.textContent = "Not published: the server could not be reached.";
      } finally {
        publishButton.disabled = false;
        messageInput.focus();
      }
    });

    // With a secret set, the server needs a token: it goes to POST /auth/session once,
    // which keeps it in an HttpOnly cookie that EventSource, fetch and WebSocket all send.
    document.addEventListener("token-needed", (needed) => {
      tokenForm.hidden = false;
      tokenStatus.textContent = needed.detail || "";
    });
    tokenForm.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      const response = await fetch("/auth/session", {
        method: "POST",
        headers: { Authorization: `Bearer ${tokenInput.value.trim()}` },
      });
      if (!response.ok) {
        tokenStatus.textContent = `Not taken: ${await errorMessage(response)}`;
        return;
      }
      const session = await response.json();
      tokenInput.value = "";
      tokenStatus.textContent = `Signed in as ${session.subject}.`;
      connected = true;
      showConnected();
      for (const connection of connections) {
        connection.resume();
      }
    });

    showConnected();
    // 404: this server is open to anyone; 401: it needs a token, and has none from this page.
    fetch("/auth/ticket", { method: "POST" }).then((probe) => {
      if (probe.status === 401) {
        tokenForm.hidden = false;
      }
    });
    for (const connection of connections) {
      connection.start(channel);
    }
    // Leave nothing open while the page sits in the back/forward cache.
    window.addEventListener("pagehide", () => {
      for (const connection of connections) {
        connection.stop();
      }
    });
    window.addEventListener("pageshow", (show) => {
      if (show.persisted && connected) {
        for (const connection of connections) {
          connection.resume();
        }
      }
    });
  }

  main();
})();
