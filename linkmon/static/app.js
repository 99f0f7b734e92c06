// linkmon status page: polls /api/v1/status and redraws in place, never reloads.
// Everything comes from linkmon itself (no CDN, no fonts, no other host), so the page works
// on a NOC network with no internet. Words come from words.js: Bahasa Indonesia unless ?lang=en
// or the agent speaks English; the button switches without a reload.
// One document, two layouts (style.css picks one by width): the NOC wall, dense and fixed to
// one screen, and a single column for a phone, where offices in trouble come first.
"use strict";

(() => {
  const TEXT = window.linkmonText;
  const STATES = ["up", "degraded", "down", "unknown", "unreachable"];
  const TERMINAL = new Set(["pusat", "drc"]);
  const RANK = {kecamatan: 0, kabupaten: 1, kota: 1, provinsi: 2, pusat: 3, drc: 3};
  const SYMBOL = {up: "✔", degraded: "▲", down: "✖", unreachable: "⊘", unknown: "?",
                  available: "✔", unavailable: "✖", maintenance: "⚒"};

  const params = new URLSearchParams(window.location.search);
  let chosenLang = TEXT[params.get("lang")] ? params.get("lang") : null;
  const refreshSeconds = Math.min(300, Math.max(1, Number(params.get("refresh")) || 5));

  let doc = null;          // last status document
  let sites = new Map();   // its sites by id
  let failingSince = null; // Date of the first failed poll since the last good one
  let failure = "";

  const language = () => chosenLang || (doc && TEXT[doc.agent.language] ? doc.agent.language : "id");
  const words = () => TEXT[language()];
  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (_, key) => String(values[key]));
  // As fill, for h(): a value may be an element, kept whole.
  const fillParts = (template, values) =>
    template.split(/\{(\w+)\}/).map((part, i) => i % 2 ? values[part] : part);

  // -- small DOM builder: text always goes in as text nodes, never as HTML ----------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else el.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === "") continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // -- time, as people at the site read the clock ------------------------------------------
  const formatters = new Map();
  function parts(date, timeZone) {
    if (!formatters.has(timeZone)) {
      formatters.set(timeZone, new Intl.DateTimeFormat("en-GB", {
        timeZone, year: "numeric", month: "numeric", day: "numeric",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23"}));
    }
    const out = {};
    for (const p of formatters.get(timeZone).formatToParts(date)) out[p.type] = p.value;
    return out;
  }
  const siteOf = (id) => sites.get(id);
  const zoneOf = (siteId) => {
    const site = siteOf(siteId);
    return site ? [site.timezone, site.zone_abbr] : [doc.agent.timezone, doc.agent.zone_abbr];
  };
  function clock(date, [timeZone, abbr]) {
    const p = parts(date, timeZone);
    return `${p.hour}:${p.minute} ${abbr}`;
  }
  // "08:12 WITA" today, the date in front when it was another day: "24 Nov 17:47 WITA".
  function when(date, zone) {
    const a = parts(date, zone[0]);
    const b = parts(now(), zone[0]);
    if (a.day === b.day && a.month === b.month && a.year === b.year) return clock(date, zone);
    return `${Number(a.day)} ${words().months[Number(a.month) - 1].slice(0, 3)} ${clock(date, zone)}`;
  }
  // "3 j 5 m": the two largest units, as linkmon status prints them.
  function duration(seconds) {
    const [d, hUnit, m, s] = words().units;
    const total = Math.max(0, Math.round(seconds));
    const all = [[Math.floor(total / 86400), d], [Math.floor(total / 3600) % 24, hUnit],
                 [Math.floor(total / 60) % 60, m], [total % 60, s]];
    const shown = all.filter(([n]) => n).slice(0, 2).map(([n, u]) => `${n} ${u}`);
    return shown.length ? shown.join(" ") : `0 ${s}`;
  }
  const now = () => new Date(doc.generated_at);

  // -- words ------------------------------------------------------------------------------
  const stateWord = (state) => words().state[state] || state.toUpperCase();
  function causeWords(cause) {
    if (!cause) return "";
    if (cause.startsWith("upstream:")) return fill(words().upstream, {links: cause.slice(9)});
    if (cause.startsWith("silent:")) return silentWords(cause.slice(7).split(","));
    return words().causes[cause] || cause;
  }
  // A fleet's document (linkmon fleet): "agent silent: kab-malinau last seen 08:12 WITA (5 m ago)".
  function silentWords(names) {
    const agents = new Map((doc.agents || []).map((agent) => [agent.name, agent]));
    const seen = names.map((name) => {
      const agent = agents.get(name);
      if (!agent || !agent.last_seen) return fill(words().neverSeen, {agent: name});
      const at = new Date(agent.last_seen);  // in the zone of the agent's own office
      return fill(words().lastSeen, {agent: name, when: when(at, zoneOf(agent.name)),
                                     ago: duration((now() - at) / 1000)});
    });
    return fill(words().silent, {agents: seen.join("; ")});
  }
  // "turun sejak 08:12 WITA (3 j 5 m)", in the local time of the link's office;
  // short: "sejak 08:12 WITA (3 j 5 m)" where a badge already says the state. A narrow
  // screen breaks the line between the time and the duration, never inside either.
  function since(link, short) {
    const at = new Date(link.since);
    return fillParts(short ? words().sinceShort : words().since, {
      state: stateWord(link.state).toLowerCase(),
      when: h("span", {class: "nobreak"}, when(at, zoneOf(officeEnd(link)))),
      duration: h("span", {class: "nobreak"}, duration((now() - at) / 1000))});
  }
  const rtt = (seconds) => seconds === null ? "–" : `${(seconds * 1000).toFixed(1)} ms`;
  const loss = (ratio) => ratio === null ? "–" : `${Math.round(ratio * 100)} %`;
  function shortName(site) {
    const prefix = "Kecamatan ";
    return site.kind === "kecamatan" && site.name.startsWith(prefix)
      ? site.name.slice(prefix.length) : site.name;
  }
  function officeEnd(link) {
    const ends = [link.from, link.to].filter((id) => siteOf(id));
    if (!ends.length) return link.from;
    return ends.reduce((a, b) => (RANK[siteOf(b).kind] ?? 0) < (RANK[siteOf(a).kind] ?? 0) ? b : a);
  }

  function badge(state, label, extraClass) {
    return h("span", {class: `badge s-${state} ${extraClass || ""}`.trim()},
             h("span", {class: "sym", "aria-hidden": "true"}, SYMBOL[state] || "•"), label);
  }
  function serviceBadge(service, short) {
    const label = (short ? words().serviceShort : words().service)[service.state];
    return badge(service.state, label || service.state.toUpperCase(), "service");
  }

  // Heading levels follow the nesting of the network, so a screen reader can walk it.
  const heading = (level, attrs, ...children) => h(`h${Math.min(level, 6)}`, attrs, ...children);
  // style.css says which layout it chose, so the breakpoint is written in one place only.
  const layout = () =>
    getComputedStyle(document.documentElement).getPropertyValue("--layout").trim() || "wall";

  // -- the parts of the page ----------------------------------------------------------------
  function header() {
    const w = words();
    document.documentElement.lang = language();
    document.body.dataset.state = doc.summary.state;
    document.getElementById("agent").textContent = doc.agent.name;
    const overall = document.getElementById("overall");
    overall.dataset.state = doc.summary.state;
    overall.replaceChildren(badge(doc.summary.state, stateWord(doc.summary.state), "big"));
    document.getElementById("offices").replaceChildren(
      h("div", {class: "number"}, h("span", {class: "online"}, doc.summary.offices_online),
        h("span", {class: "total"}, ` / ${doc.summary.offices_total}`)),
      h("div", {class: "caption"}, w.offices));
    const zone = [doc.agent.timezone, doc.agent.zone_abbr];
    document.getElementById("clock").textContent = clock(now(), zone);
    const p = parts(now(), zone[0]);
    document.getElementById("date").textContent =
      `${Number(p.day)} ${w.months[Number(p.month) - 1]} ${p.year}`;
  }

  // The button names the other language in that language, and says so with its lang attribute.
  function languageButton() {
    const other = language() === "id" ? "en" : "id";
    const button = document.getElementById("lang");
    button.lang = other;
    button.textContent = TEXT[other].name;
  }

  function counts() {
    const w = words();
    document.getElementById("counts-title").textContent = w.linkStates;
    document.getElementById("count-list").replaceChildren(...STATES.map((state) =>
      h("li", {class: `count s-${state}`, "data-count": state,
               "data-zero": doc.summary.links[state] ? null : "true"},
        h("span", {class: "n"}, doc.summary.links[state]),
        h("span", {class: "what"}, `${w.links} ${stateWord(state).toLowerCase()}`))));
  }

  function outages() {
    const w = words();
    document.getElementById("outages-title").textContent =
      `${w.outages} (${doc.outages.length})`;
    const links = new Map(doc.links.map((l) => [l.id, l]));
    const open = new Set(doc.outages.map((o) => o.link));
    // Links unreachable behind another open outage go on that outage's card: one cause, one card.
    const behind = new Map();
    const cards = [];
    // Worst first, planned work last, oldest first within each.
    const weight = (o) => {
      const link = links.get(o.link);
      if (link && link.maintenance) return 5;
      return {down: 0, unreachable: 1, degraded: 2, unknown: 3}[o.state] ?? 4;
    };
    const ordered = [...doc.outages].sort((a, b) =>
      weight(a) - weight(b) || a.since.localeCompare(b.since));
    for (const outage of ordered) {
      const link = links.get(outage.link);
      const via = link && link.unreachable_via;
      if (outage.state === "unreachable" && via && open.has(via)) {
        if (!behind.has(via)) behind.set(via, []);
        behind.get(via).push(outage);
      } else {
        cards.push(outage);
      }
    }
    const list = cards.map((outage) => {
      const link = links.get(outage.link) || {id: outage.link, from: outage.link, network: "",
        since: outage.since, state: outage.state, maintenance: null};
      const office = siteOf(officeEnd(link));
      const hidden = behind.get(outage.link) || [];
      const names = hidden.map((o) => {
        const l = links.get(o.link);
        const site = l && siteOf(officeEnd(l));
        return site ? shortName(site) : o.link;
      });
      return h("article", {class: `outage s-${outage.state}`, "data-outage": outage.link,
                           "data-state": outage.state},
        h("div", {class: "line1"}, badge(outage.state, stateWord(outage.state)),
          heading(3, {class: "office", title: office ? office.name : null},
            office ? shortName(office) : outage.link),
          link.maintenance ? badge("maintenance", w.inMaintenance) : null,
          h("span", {class: "muted id", title: outage.link},
            `${outage.link}${link.network ? " · " + link.network : ""}`)),
        h("p", {class: "line2"}, since({...link, state: outage.state, since: outage.since})),
        h("p", {class: "line3"}, causeWords(outage.cause),
          outage.alerted ? h("span", {class: "muted"}, ` · ${w.alerted}`) : null),
        hidden.length ? h("p", {class: "behind"},
          fill(w.behind, {n: hidden.length, names: names.join(", ")})) : null);
    });
    document.getElementById("outage-list").replaceChildren(
      ...(list.length ? list : [h("p", {class: "calm"}, badge("up", stateWord("up")), w.noOutages)]));
  }

  function maintenance() {
    const w = words();
    const links = new Map(doc.links.map((l) => [l.id, l]));
    document.getElementById("maintenance").hidden = !doc.maintenance.length;
    document.getElementById("maintenance-title").textContent =
      `${w.maintenance} (${doc.maintenance.length})`;
    document.getElementById("window-list").replaceChildren(...doc.maintenance.map((win) => {
      const first = win.links.length ? links.get(win.links[0]) : null;
      const zone = zoneOf(first ? officeEnd(first) : win.sites[0]);
      return h("article", {class: "window"}, badge("maintenance", w.inMaintenance),
        h("span", {class: "when"}, `${when(new Date(win.start), zone)} – ` +
          `${when(new Date(win.end), zone)}`),
        h("span", {class: "what"}, [...win.links, ...win.sites].join(", ")),
        h("span", {class: "reason"}, win.reason));
    }));
  }

  function linkRow(link) {
    const w = words();
    const peer = siteOf(link.to === officeEnd(link) ? link.from : link.to);
    const toTerminal = peer && TERMINAL.has(peer.kind) ? ` → ${peer.kind === "drc" ? "DRC" : "DC"}` : "";
    return h("div", {class: `link s-${link.state}`, "data-link": link.id, "data-state": link.state,
                     title: link.detail ? `${link.id}: ${link.detail}` : link.id},
      h("div", {class: "row"},
        badge(link.state, stateWord(link.state)),
        h("span", {class: "net"}, `${link.network.toUpperCase()}${toTerminal}`),
        h("span", {class: "figures"}, h("span", {class: "rtt"}, rtt(link.rtt_seconds)),
          h("span", {class: "loss"}, loss(link.loss)))),
      link.state !== "up" ? h("div", {class: "since"}, since(link, true)) : null,
      link.maintenance ? h("div", {class: "note maint"}, badge("maintenance", w.inMaintenance),
        ` ${fill(w.until, {when: when(new Date(link.maintenance.until), zoneOf(officeEnd(link)))})}`) : null,
      link.flapping ? h("div", {class: "note"}, badge("degraded", w.flapping)) : null);
  }

  function network() {
    const w = words();
    document.getElementById("network-title").textContent = w.network;
    const ids = new Set(doc.sites.map((s) => s.id));
    const children = new Map();
    for (const site of doc.sites) {
      const parent = ids.has(site.parent) ? site.parent : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(site);
    }
    const kids = (site) => children.get(site.id) || [];
    const linksOf = new Map();
    for (const link of doc.links) {
      const office = officeEnd(link);
      if (!linksOf.has(office)) linksOf.set(office, []);
      linksOf.get(office).push(link);
    }
    const ownLinks = (site) => linksOf.get(site.id) || [];
    const inMaintenance = (site) => ownLinks(site).some((l) => l.maintenance);

    // How soon an office needs a look, 0 first: cut off, then limited, then not yet known,
    // then planned work, then fine. An office with offices below it counts as its worst one.
    function attention(site) {
      const service = site.service ? site.service.state : "unknown";
      const states = new Set(ownLinks(site).map((l) => l.state));
      let own = 4;
      if (inMaintenance(site)) own = 3;
      else if (service === "unavailable" || states.has("down") || states.has("unreachable")) own = 0;
      else if (service === "degraded" || states.has("degraded")
               || ownLinks(site).some((l) => l.flapping)) own = 1;
      else if (service === "unknown" || states.has("unknown")) own = 2;
      return Math.min(own, ...kids(site).map(attention));
    }
    // The wall keeps the configured order (people learn where an office sits on it); a phone
    // is read top to bottom, so there the offices that need a look come first.
    const inOrder = (sites) => layout() === "column"
      ? [...sites].sort((a, b) => attention(a) - attention(b)) : sites;

    function tile(site, level) {
      const service = site.service || {state: "unknown", via: [], reason: ""};
      const reason = w.reason[service.reason] || causeWords(service.reason);
      return h("div", {class: `tile v-${service.state}${inMaintenance(site) ? " maint" : ""}`,
                       "data-site": site.id, "data-service": service.state,
                       title: reason ? `${site.name}: ${reason}` : site.name},
        heading(level, {class: "name"}, shortName(site)),
        site.service && service.state !== "available" ? h("div", {class: "svc"},
          serviceBadge(service, true), reason ? h("span", {class: "reason"}, reason) : null) : null,
        ...ownLinks(site).map(linkRow));
    }
    function block(site, level) {
      const service = site.service;
      const reason = service && (w.reason[service.reason] || causeWords(service.reason));
      const below = inOrder(kids(site));
      return h("div", {class: "block", "data-site": site.id,
                       "data-service": service ? service.state : null},
        h("div", {class: "block-head"},
          heading(level, {class: "name"}, site.name),
          service ? serviceBadge(service) : null,
          reason ? h("span", {class: "reason"}, reason) : null),
        h("div", {class: "uplinks"}, ...ownLinks(site).map(linkRow)),
        ...below.filter((k) => kids(k).length).map((k) => block(k, level + 1)),
        h("div", {class: "tiles"},
          ...below.filter((k) => !kids(k).length).map((k) => tile(k, level + 1))));
    }
    const roots = children.get(null) || [];
    const terminals = roots.filter((s) => TERMINAL.has(s.kind));
    const pusat = terminals.length ? h("div", {class: "pusat"},
      heading(3, {}, w.pusat),
      ...terminals.map((s) => h("div", {class: "terminal", "data-site": s.id},
        h("span", {class: "kind"}, s.kind === "drc" ? "DRC" : "DC"),
        h("span", {class: "name"}, s.name),
        ...ownLinks(s).map(linkRow)))) : null;
    document.getElementById("network-tree").replaceChildren(
      ...[pusat, ...inOrder(roots.filter((s) => !TERMINAL.has(s.kind))).map((s) => block(s, 3))]
        .filter(Boolean));
  }

  // One jump link per visible section of <main> marked data-nav, titled by its heading.
  function jumpLinks() {
    const nav = document.getElementById("jump");
    nav.setAttribute("aria-label", words().sections);
    const sections = [...document.querySelectorAll("main section[data-nav]")]
      .filter((section) => !section.hidden);
    nav.replaceChildren(h("ul", {}, ...sections.map((section) =>
      h("li", {}, h("a", {href: `#${section.id}`}, section.querySelector("h2").textContent)))));
  }

  function footer() {
    const w = words();
    const zone = [doc.agent.timezone, doc.agent.zone_abbr];
    const p = parts(now(), zone[0]);
    const seconds = String(now().getUTCSeconds()).padStart(2, "0");
    document.getElementById("foot").textContent =
      `${fill(w.updated, {when: `${p.hour}:${p.minute}:${seconds} ${zone[1]}`})} · ` +
      `${fill(w.every, {n: refreshSeconds})} · linkmon ${doc.agent.version}`;
  }

  function banner() {
    const el = document.getElementById("banner");
    document.body.classList.toggle("stale", failingSince !== null);
    if (failingSince === null && doc) {
      el.hidden = true;
      return;
    }
    el.hidden = false;
    if (failingSince === null) {
      el.textContent = words().waiting;
      return;
    }
    const p = parts(failingSince, doc ? doc.agent.timezone : "UTC");
    const abbr = doc ? doc.agent.zone_abbr : "UTC";
    el.textContent = fill(words().unreachableDaemon,
                          {when: `${p.hour}:${p.minute} ${abbr}`, error: failure});
  }

  // A part of the wall that must scroll (on a small desk screen) can be scrolled by keyboard too.
  // A few pixels over (rounding, a last margin) are nothing to scroll to, and no tab stop.
  function scrollableSections() {
    for (const section of document.querySelectorAll("main > section")) {
      if (section.scrollHeight - section.clientHeight > 4) section.tabIndex = 0;
      else section.removeAttribute("tabindex");
    }
  }

  let drawnLayout = null;
  function draw() {
    drawnLayout = layout();
    document.documentElement.lang = language();
    languageButton();
    if (doc) {
      header();
      counts();
      outages();
      maintenance();
      network();
      jumpLinks();
      footer();
    }
    banner();
    scrollableSections();
  }

  async function poll() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(2000, refreshSeconds * 900));
    try {
      const response = await fetch("api/v1/status", {cache: "no-store", signal: controller.signal,
                                                     headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      doc = await response.json();
      sites = new Map(doc.sites.map((s) => [s.id, s]));
      failingSince = null;
      failure = "";
    } catch (error) {
      if (failingSince === null) failingSince = new Date();
      failure = error.name === "AbortError" ? "timeout" : error.message;
    } finally {
      clearTimeout(timer);
    }
    try {
      draw();
    } catch (error) {
      failingSince = failingSince || new Date();
      failure = `unexpected status document: ${error.message}`;
      banner();
    }
    setTimeout(poll, refreshSeconds * 1000);
  }

  document.getElementById("lang").addEventListener("click", () => {
    chosenLang = language() === "id" ? "en" : "id";
    const url = new URL(window.location.href);
    url.searchParams.set("lang", chosenLang);
    window.history.replaceState(null, "", url);
    draw();
  });
  // Turning a tablet or resizing a window may switch layouts; the order of offices goes with it.
  window.addEventListener("resize", () => {
    if (layout() !== drawnLayout) draw();
    else scrollableSections();
  });

  draw();
  poll();
})();
