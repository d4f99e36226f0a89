// Server-Sent Events over fetch(): EventSource cannot send an Authorization header, and a token in the URL would
// end up in proxy and server logs. fetch() streams the same text/event-stream with the header, and this module
// reconnects with back-off. Every (re)connection calls onOpen, where the caller reloads what it may have missed.
import { authHeaders, expired, refreshSession } from "./api.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function openStream(url, { onEvent, onOpen, onState }) {
  let stopped = false;
  let controller = null;
  let backoff = 1000;

  function dispatch(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (data.length) onEvent(event, data.join("\n"));
  }

  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch(url, {
          headers: authHeaders({ Accept: "text/event-stream" }),
          signal: controller.signal,
          cache: "no-store",
          credentials: "omit",
        });
        if (response.status === 401) {
          if (await refreshSession()) continue;
          expired();
          return;
        }
        if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let open = false;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          if (!open) {
            // The first bytes (": connected") arrive after the server subscribed: nothing from now on is missed.
            open = true;
            backoff = 1000;
            onState("live");
            onOpen();
          }
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (error) {
        if (stopped) return;
        console.warn("alarm stream interrupted:", error.message);
      }
      if (stopped) return;
      onState("reconnecting");
      await sleep(backoff + Math.random() * 500);
      backoff = Math.min(backoff * 2, 30000);
    }
  }

  run();
  return {
    close() {
      stopped = true;
      controller?.abort();
    },
  };
}
