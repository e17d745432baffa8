// The live view's script (served from /static: the CSP allows no inline script).
// Live pages: the overview and brand pages fetch themselves again every
// data-live-page seconds (and when the tab comes back into view) and replace their
// [data-live-part] parts with the fresh copy's, so the figures, alerts and tables
// update without reloading the page (the charts, scroll position and open tab stay).
// The parts are the server's own rendering, parsed by DOMParser (no script runs), and
// left alone while a form in them has the focus.
// Live stream: the first page of /stream asks /stream/new for mentions newer than the
// newest it shows, every data-interval seconds and whenever the tab comes back into
// view, and puts them on top without reloading the page. The items are the server's own
// rendering (the same template, escaped there), parsed with <template>, so user text is
// never turned into markup here.
"use strict";

(function () {
  const list = document.querySelector("ol.stream[data-live]");
  if (!list) {
    return;
  }
  const status = document.querySelector(".live-status");
  const interval = Math.max(5, parseInt(list.dataset.interval || "30", 10)) * 1000;
  let url = new URL(list.dataset.live, window.location.href);
  let busy = false;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  async function poll() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) {
        say("Live updates paused (" + answer.status + "). ");
        return;
      }
      const update = await answer.json();
      if (update.since) {
        url.searchParams.set("since", update.since);
      }
      if (update.count > 0) {
        const template = document.createElement("template");
        template.innerHTML = update.html;
        template.content.querySelectorAll("li.mention").forEach((item) => item.classList.add("new"));
        list.prepend(template.content);
      }
      const now = new Date();
      say("Live: " + (update.count > 0 ? update.count + " new, " : "") + "checked " +
          now.toISOString().slice(11, 16) + " UTC. ");
    } catch (error) {
      say("Live updates paused (the server did not answer). ");
    } finally {
      busy = false;
    }
  }

  window.setInterval(poll, interval);
  document.addEventListener("visibilitychange", poll);
  window.addEventListener("focus", poll);
  say("Live: new mentions appear here. ");
})();

(function () {
  const marker = document.querySelector("[data-live-page]");
  if (!marker) {
    return;
  }
  const interval = Math.max(5, parseInt(marker.dataset.livePage, 10) || 60) * 1000;
  const url = new URL(marker.dataset.liveUrl || window.location.pathname, window.location.href);
  let busy = false;

  async function update() {
    const parts = Array.from(document.querySelectorAll("[data-live-part]"));
    const focused = document.activeElement;
    if (busy || document.hidden || parts.some((part) => part.contains(focused))) {
      return;
    }
    busy = true;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!answer.ok) {
        return;
      }
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      parts.forEach((part) => {
        const next = fresh.querySelector('[data-live-part="' + part.dataset.livePart + '"]');
        if (next) {
          part.replaceWith(document.importNode(next, true));
        }
      });
      document.documentElement.dataset.liveUpdates = String(parseInt(document.documentElement.dataset.liveUpdates || "0", 10) + 1);
    } catch (error) {
      // The server did not answer: the next turn tries again.
    } finally {
      busy = false;
    }
  }

  window.setInterval(update, interval);
  document.addEventListener("visibilitychange", update);
})();
