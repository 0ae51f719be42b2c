// The console's live parts. Everything else is plain links and forms that work without this file.
// - the live feed (server-sent events): when the desk changes, the part of the page that shows it is fetched
//   again (the incident list, or the open incident's reports and messages);
// - a new urgent incident: a visible banner and a sound, on every page;
// - the 112 alarm: on every page while an urgent incident is past the deadline and not accepted;
// - inactivity: keys pressed and clicks keep the session on (told to the bridge at most once a minute);
// - keyboard shortcuts for what a dispatcher does most (listed in the help dialog, "?"); never while typing.
"use strict";
(function () {
  const body = document.body;
  const feedUrl = body.dataset.feed;
  if (!feedUrl) return;  // the login page
  const csrf = body.dataset.csrf;
  const SEEN_KEY = "bm-urgent-seen";
  let urgentNow = [];  // the open urgent incidents as the feed last named them, newest first (shortcut "n")

  // ---- sound: a short two-tone signal (Web Audio; browsers allow it after the first key or click) ----------
  let audio = null;
  function unlockAudio() {
    if (!audio && (window.AudioContext || window.webkitAudioContext)) {
      audio = new (window.AudioContext || window.webkitAudioContext)();
    }
    if (audio && audio.state === "suspended") audio.resume();
  }
  function beep() {
    if (!audio || audio.state !== "running") return false;
    [0, 0.25, 0.5].forEach(function (at, n) {
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = n % 2 ? 660 : 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + 0.18);
    });
    return true;
  }

  // ---- inactivity: the dispatcher's own keys and clicks keep the session on --------------------------------
  let lastPing = Date.now();
  function active() {
    unlockAudio();
    if (Date.now() - lastPing < 60000) return;
    lastPing = Date.now();
    fetch("/console/activity", {method: "POST", headers: {"X-CSRF-Token": csrf, "X-Console": "fetch"},
                                credentials: "same-origin"}).then(loginIfGone);
  }
  document.addEventListener("keydown", active);
  document.addEventListener("pointerdown", active);

  function loginIfGone(response) {
    if (response.status === 401) window.location.assign("/console/login?reason=expired");
    return response;
  }

  // ---- refreshing a part of the page, keeping what the dispatcher is typing and where the focus is --------
  function swap(target, html) {
    const focused = document.activeElement && target.contains(document.activeElement) ? document.activeElement : null;
    const focusId = focused && focused.id, focusHref = focused && focused.getAttribute("href");
    const typed = {}, chosen = {}, opened = {};
    target.querySelectorAll("textarea[id], input[id]").forEach(function (field) {
      if (field.value) typed[field.id] = [field.value, field.selectionStart, field.selectionEnd];
    });
    // What the dispatcher chose and opened stays so: a choice in a list, a folded part they unfolded.
    target.querySelectorAll("select[id]").forEach(function (field) { chosen[field.id] = field.value; });
    target.querySelectorAll("details[id]").forEach(function (part) { opened[part.id] = part.open; });
    // Photos and videos already shown stay the same elements: a photo is not fetched again, and a video the
    // dispatcher is watching plays on through the refresh. By address, in page order (a photo can show twice:
    // a thumbnail and in its report); a video by its poster (and, while it is not playing, its sources).
    const media = {};
    const shown = [["img[src]", "src"], ["video[poster]", "poster"]];
    shown.forEach(function (kind) {
      target.querySelectorAll(kind[0]).forEach(function (element) {
        const key = kind[0] + element.getAttribute(kind[1]);
        (media[key] = media[key] || []).push(element);
      });
    });
    target.innerHTML = html;
    shown.forEach(function (kind) {
      target.querySelectorAll(kind[0]).forEach(function (element) {
        const kept = (media[kind[0] + element.getAttribute(kind[1])] || []).shift();
        // A video whose copies changed (its compatible copy arrived) is the new element, unless it is playing.
        const same = kind[0] !== "video[poster]" || !kept || !kept.paused || kept.innerHTML === element.innerHTML;
        if (kept && same) element.replaceWith(kept);
      });
    });
    Object.keys(typed).forEach(function (id) {
      const field = document.getElementById(id);
      if (field) { field.value = typed[id][0]; }
    });
    Object.keys(chosen).forEach(function (id) {
      const field = document.getElementById(id);
      if (field && Array.prototype.some.call(field.options, function (o) { return o.value === chosen[id]; })) {
        field.value = chosen[id];
      }
    });
    Object.keys(opened).forEach(function (id) {
      const part = document.getElementById(id);
      if (part) part.open = opened[id];
    });
    let again = focusId ? document.getElementById(focusId) : null;
    if (!again && focusHref) again = target.querySelector('[href="' + CSS.escape(focusHref) + '"]');
    if (again) {
      again.focus();
      if (focusId && typed[focusId] && again.setSelectionRange) again.setSelectionRange(typed[focusId][1], typed[focusId][2]);
    }
  }

  // Every part of the page marked data-live-url is fetched again when the desk changes; the incident list
  // with the filters the dispatcher chose.
  const parts = Array.prototype.map.call(document.querySelectorAll("[data-live-url]"), function (target) {
    return {target: target, url: function () {
      const query = new URLSearchParams();
      const filters = target.dataset.liveFilters && document.getElementById(target.dataset.liveFilters);
      if (filters) new FormData(filters).forEach(function (v, k) { if (v) query.set(k, v); });
      return target.dataset.liveUrl + (query.toString() ? "?" + query : "");
    }};
  });
  let refreshing = false, pending = false;
  function refresh() {
    if (refreshing) { pending = true; return; }
    refreshing = true;
    Promise.all(parts.map(function (part) {
      return fetch(part.url(), {headers: {"X-Console": "fetch"}, credentials: "same-origin"})
        .then(loginIfGone)
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) swap(part.target, html); });
    })).catch(function () {}).then(function () {
      refreshing = false;
      document.dispatchEvent(new Event("console:refreshed"));  // the map draws what changed (map.js)
      if (pending) { pending = false; setTimeout(refresh, 300); }
    });
  }

  // ---- new urgent incidents and the 112 alarm --------------------------------------------------------------
  function seen() {
    try { return JSON.parse(sessionStorage.getItem(SEEN_KEY) || "null"); } catch (e) { return null; }
  }
  function signalNew(urgent) {
    const known = seen();
    const ids = urgent.map(function (i) { return i.id; });
    sessionStorage.setItem(SEEN_KEY, JSON.stringify(known ? known.concat(ids.filter(function (id) {
      return known.indexOf(id) < 0; })) : ids));
    if (known === null) return;  // the first look of this session: what is there is on screen already
    const fresh = urgent.filter(function (i) { return known.indexOf(i.id) < 0; });
    if (!fresh.length) return;
    const banner = document.getElementById("new-urgent");
    banner.textContent = "";
    const title = document.createElement("strong");
    title.textContent = body.dataset.textNewUrgent + ": ";
    banner.appendChild(title);
    fresh.forEach(function (i) {
      const link = document.createElement("a");
      link.href = "/console/incidents/" + encodeURIComponent(i.id);
      link.textContent = i.name[body.dataset.lang] || i.name.nl;
      banner.appendChild(link);
      banner.appendChild(document.createTextNode(" "));
    });
    banner.hidden = false;
    banner.dataset.sound = beep() ? "played" : "blocked";
    banner.dataset.signals = String(Number(banner.dataset.signals || 0) + 1);
  }
  function alarm(overdue) {
    const box = document.getElementById("alarm-112"), list = document.getElementById("alarm-112-list");
    list.textContent = "";
    overdue.forEach(function (i) {
      const link = document.createElement("a");
      link.href = "/console/incidents/" + encodeURIComponent(i.id);
      link.textContent = i.name[body.dataset.lang] || i.name.nl;
      list.appendChild(link);
      list.appendChild(document.createTextNode(" "));
    });
    const was = !box.hidden;
    box.hidden = overdue.length === 0;
    if (!box.hidden && !was) beep();
  }

  // ---- the feed ------------------------------------------------------------------------------------------
  // A browser gives up on an EventSource that got an error answer (a 502 during a deploy, a 401 once the
  // session ended): then the screen would look live and show nothing new. So: a lost feed is said loudly, a
  // closed one is opened again with a growing pause, and an ended session goes to the login.
  let version = null, feed = null, pause = 1000;
  const state = document.getElementById("feed-state");
  function lost() {
    state.textContent = body.dataset.textLiveLost;
    state.classList.add("lost");
    body.dataset.live = "off";
  }
  function connect() {
    feed = new EventSource(feedUrl);
    feed.addEventListener("open", function () {
      state.textContent = ""; state.classList.remove("lost"); body.dataset.live = "on"; pause = 1000;
    });
    feed.addEventListener("error", function () {
      lost();
      if (feed.readyState !== EventSource.CLOSED) return;  // the browser retries by itself
      fetch("/console/incidents/rows", {headers: {"X-Console": "fetch"}, credentials: "same-origin"})
        .then(loginIfGone).catch(function () {});
      setTimeout(connect, pause);
      pause = Math.min(30000, pause * 2);
    });
    feed.addEventListener("desk", function (event) {
      const desk = JSON.parse(event.data);
      urgentNow = desk.urgent.map(function (i) { return i.id; });
      signalNew(desk.urgent);
      alarm(desk.overdue);
      if (version !== null && desk.version !== version) refresh();
      version = desk.version;
    });
    feed.addEventListener("session", function (event) {
      feed.close();
      window.location.assign("/console/login?reason=" + encodeURIComponent(event.data));
    });
  }
  connect();

  // ---- keyboard shortcuts -------------------------------------------------------------------------------
  // j/k move through the list, n goes to the next urgent incident, Enter or o opens the one chosen, q goes to
  // the question form, Esc or Backspace goes back to the list, ? shows them all. Never while the dispatcher
  // types (a field has the focus) or holds Ctrl, Alt or Cmd: those keys are theirs.
  const help = document.getElementById("shortcuts");
  const helpButton = document.getElementById("shortcuts-open");
  function showHelp() {
    if (!help || help.open) return false;
    help.showModal();
    return true;
  }
  if (help && helpButton) {
    helpButton.hidden = false;
    helpButton.addEventListener("click", showHelp);
  }
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function listed() {  // the incidents of the list (or of the map page's list), in their order
    return Array.prototype.slice.call(document.querySelectorAll("[data-incident-id] a.incident-link"));
  }
  function choose(link) {
    link.focus();  // the focus is the choice: visible, read out, and Enter opens it (map.js lights it up)
    link.scrollIntoView({block: "nearest"});
    return true;
  }
  function step(by) {
    const links = listed();
    if (!links.length) return false;
    const at = links.indexOf(document.activeElement);
    if (at < 0) return choose(links[by > 0 ? 0 : links.length - 1]);
    return choose(links[Math.min(links.length - 1, Math.max(0, at + by))]);
  }
  function nextUrgent() {
    const links = listed();
    if (links.length) {
      const urgent = links.filter(function (a) { return a.closest("[data-incident-id]").classList.contains("prio-1"); });
      if (!urgent.length) return false;
      const at = links.indexOf(document.activeElement);
      return choose(urgent.find(function (a) { return links.indexOf(a) > at; }) || urgent[0]);
    }
    // On an incident's page: the next urgent incident the feed named, after this one.
    const here = decodeURIComponent((window.location.pathname.match(/^\/console\/incidents\/([^/]+)$/) || [])[1] || "");
    const next = urgentNow[(urgentNow.indexOf(here) + 1) % Math.max(1, urgentNow.length)];
    if (!next || next === here) return false;
    window.location.assign("/console/incidents/" + encodeURIComponent(next));
    return true;
  }
  function openChosen() {
    const links = listed(), at = links.indexOf(document.activeElement);
    if (at < 0) return false;
    window.location.assign(links[at].href);
    return true;
  }
  function ask() {
    const field = document.getElementById("side-question") || document.querySelector("textarea[id^='q-']");
    if (!field) return false;
    field.focus();
    field.scrollIntoView({block: "nearest"});
    return true;
  }
  function back() {
    const link = document.querySelector("[data-key-back]");
    if (!link) return false;
    // Back to the list as it was left (its filters, where it was scrolled), else the list itself.
    const list = window.location.origin + "/console/incidents";
    const from = document.referrer;
    if (from === list || from.indexOf(list + "?") === 0) window.history.back();
    else window.location.assign(link.href);
    return true;
  }
  const SHORTCUTS = {j: function () { return step(1); }, k: function () { return step(-1); }, n: nextUrgent,
                     o: openChosen, q: ask, Escape: back, Backspace: back, "?": showHelp};
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (help && help.open) return;  // the dialog's own keys (Esc closes it)
    const shortcut = SHORTCUTS[event.key];
    if (shortcut && shortcut()) event.preventDefault();
  });

  // ---- a form is sent once: a double click must not ask the citizen twice or start two actions -----------
  document.addEventListener("submit", function (event) {
    if (event.target.method === "dialog") return;  // closing the help, nothing sent
    const buttons = event.target.querySelectorAll("button[type=submit]");
    setTimeout(function () { buttons.forEach(function (b) { b.disabled = true; }); }, 0);
  });
})();
