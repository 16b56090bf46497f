// One EventSource per page on /api/events, shared by every chart and header on it.

import { pagePosition } from "./api.js";

const EVENT_TYPES = ["metrics", "run", "experiment", "artifact", "param", "tag", "span"];

let source = null;
let lastId = null;
let retryDelay = 500;
const listeners = new Set();

/**
 * Call `listener(type, data)` for every journal event from the page's first API position on.
 * Returns a function that unsubscribes. The stream opens on the first subscription.
 */
export function subscribe(listener) {
  listeners.add(listener);
  if (source == null) open();
  return () => listeners.delete(listener);
}

function open() {
  // The page's first API answer tells which position its data reflects; resuming after the last
  // event id received means nothing is missed or repeated across reconnects.
  const after = lastId ?? pagePosition();
  source = new EventSource(after == null ? "/api/events" : `/api/events?after=${encodeURIComponent(after)}`);
  for (const type of EVENT_TYPES) source.addEventListener(type, onMessage);
  source.addEventListener("open", () => {
    retryDelay = 500;
  });
  source.addEventListener("error", () => {
    // The browser reconnects by itself (sending Last-Event-ID) unless the stream is closed for
    // good, for instance after a server restart answered with an error; then start over here.
    if (source.readyState === EventSource.CLOSED) {
      source = null;
      setTimeout(open, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10_000);
    }
  });
}

function onMessage(event) {
  if (event.lastEventId) lastId = event.lastEventId;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  for (const listener of listeners) listener(event.type, data);
}
