// The workspace's charts: volume, NSS with its interval, share of voice, sources, and
// what people talk about, for one brand and optionally its competitors.
//
// No inline script (the page's CSP allows scripts from 'self' only): this file finds
// <section data-charts> elements, reads their settings from data-* attributes, fetches
// JSON from the same origin and builds everything with DOM calls (textContent, never
// innerHTML), so hostile text in a term, a title or an author stays text.
//
// Every point leads to its posts: a click opens the stream filtered to that bucket
// (/stream?brand=..&start=..&end=..: the names are the section's data-stream-start and
// data-stream-end, as the stream reads them), a dragged (brushed) range to that range;
// terms, conversations and authors open the stream with q=, conversation= or author=.
(function () {
  "use strict";

  var GOOD = "#1a7f37", BAD = "#cf222e", NEUTRAL = "#57606a", SPARSE = "rgba(140,149,159,0.18)";
  var BAND = "rgba(87,96,106,0.16)", FILLING = "rgba(9,105,218,0.08)";
  var PALETTE = ["#0969da", "#8250df", "#bf8700", "#1b7c83", "#bc4c00", "#6e7781"];
  var RANGES = ["24h", "7d", "30d", "90d"];
  var RESOLUTIONS = ["hour", "day", "week"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function iso(seconds) { return new Date(seconds * 1000).toISOString().replace(".000Z", "Z"); }

  function fmtTime(seconds, resolution) {
    var s = iso(seconds);
    if (resolution === "hour") return s.slice(0, 10) + " " + s.slice(11, 16) + " UTC";
    return s.slice(0, 10);
  }

  function signed(x, digits) {
    if (x === null || x === undefined) return "–";
    var v = x.toFixed(digits === undefined ? 1 : digits);
    return x > 0 ? "+" + v : v;
  }

  // Green or red only where the 95 % interval lies on one side of 0: a figure that could
  // be either is grey, whatever its sign.
  function moodColour(low, high) {
    if (low === null || low === undefined || high === null || high === undefined) return NEUTRAL;
    return low > 0 ? GOOD : high < 0 ? BAD : NEUTRAL;
  }

  // The stream's URL for a filter; the stream reads the same names from its URL.
  function streamUrl(base, params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      if (params[key] !== null && params[key] !== undefined && params[key] !== "") q.set(key, params[key]);
    });
    return base + "?" + q.toString();
  }

  // JSON from the view; an error names what the server said (its JSON "error", or the
  // status of a page that is not JSON, such as "database busy").
  function getJson(url) {
    return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"}).then(function (r) {
      var type = r.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) throw new Error("HTTP " + r.status + " " + r.statusText);
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
        return body;
      });
    });
  }

  function Workspace(root) {
    this.root = root;
    this.api = root.getAttribute("data-api") || "/api/charts";
    this.stream = root.getAttribute("data-stream") || "/stream";
    this.brand = root.getAttribute("data-brand");
    this.startName = root.getAttribute("data-stream-start") || "start";
    this.endName = root.getAttribute("data-stream-end") || "end";
    this.competitors = JSON.parse(root.getAttribute("data-competitors") || "[]");
    var url = new URLSearchParams(window.location.search);
    this.state = {
      range: url.get("range") || root.getAttribute("data-range") || "7d",
      resolution: url.get("resolution") || root.getAttribute("data-resolution") || "",
      since: url.get("since") || "",
      until: url.get("until") || "",
      compare: url.get("compare") === null ? (root.getAttribute("data-compare") === "true") : url.get("compare") === "1"
    };
    this.plots = [];
    this.build();
    this.load();
  }

  Workspace.prototype.build = function () {
    var self = this;
    this.root.textContent = "";
    var picker = el("div", {className: "chart-controls", role: "toolbar", "aria-label": "Chart range"});
    RANGES.forEach(function (r) {
      var b = el("button", {type: "button", "data-range": r, text: r, className: "range"});
      b.addEventListener("click", function () {
        self.state.range = r; self.state.since = ""; self.state.until = ""; self.state.resolution = "";
        self.load();
      });
      picker.appendChild(b);
    });
    var since = el("input", {type: "datetime-local", "aria-label": "From (UTC)", name: "since"});
    var until = el("input", {type: "datetime-local", "aria-label": "To (UTC)", name: "until"});
    var apply = el("button", {type: "button", text: "Apply", className: "custom"});
    apply.addEventListener("click", function () {
      if (!since.value) return;
      self.state.since = since.value + ":00Z";
      self.state.until = until.value ? until.value + ":00Z" : "";
      self.state.range = ""; self.state.resolution = "";
      self.load();
    });
    picker.appendChild(el("span", {className: "custom-range"}, [since, until, apply]));
    var res = el("select", {"aria-label": "Resolution", name: "resolution"});
    RESOLUTIONS.forEach(function (r) { res.appendChild(el("option", {value: r, text: "per " + r})); });
    res.addEventListener("change", function () { self.state.resolution = res.value; self.load(); });
    picker.appendChild(res);
    if (this.competitors.length) {
      var box = el("input", {type: "checkbox", name: "compare"});
      box.checked = this.state.compare;
      box.addEventListener("change", function () { self.state.compare = box.checked; self.load(); });
      picker.appendChild(el("label", {className: "compare"},
        [box, document.createTextNode(" compare with " + this.competitors.join(", "))]));
    }
    this.controls = {picker: picker, since: since, until: until, resolution: res};
    this.status = el("p", {className: "chart-status", role: "status"});
    this.readout = el("div", {className: "chart-readout", "aria-live": "polite"});
    this.volume = el("div", {className: "chart", "data-chart": "volume"});
    this.nss = el("div", {className: "chart", "data-chart": "nss"});
    this.voice = el("div", {className: "chart", "data-chart": "share"});
    this.sources = el("div", {className: "chart-sources"});
    this.talk = el("div", {className: "chart-talk"});
    var legend = el("p", {className: "chart-legend"}, [
      el("span", {className: "swatch good", text: "positive"}), el("span", {className: "swatch bad", text: "negative"}),
      el("span", {className: "swatch band", text: "95 % interval"}),
      el("span", {className: "swatch sparse", text: "too few mentions to tell"}),
      el("span", {className: "swatch filling", text: "still filling"})
    ]);
    [picker, this.status, el("h3", {text: "Volume"}), this.volume, el("h3", {text: "Mood (NSS)"}), legend, this.nss,
     this.readout, el("h3", {text: "Share of voice"}), this.voice, el("h3", {text: "Sources"}), this.sources,
     el("h3", {text: "What people talk about"}), this.talk].forEach(function (n) { self.root.appendChild(n); });
  };

  Workspace.prototype.query = function () {
    var s = this.state, q = {brand: this.brand};
    if (s.since) { q.since = s.since; if (s.until) q.until = s.until; } else q.range = s.range;
    if (s.resolution) q.resolution = s.resolution;
    if (s.compare && this.competitors.length) q.compare = this.competitors.join(",");
    return q;
  };

  Workspace.prototype.load = function () {
    var self = this, q = this.query();
    // The view's own URL keeps the choice, so a chart can be shared or reloaded.
    var shown = new URLSearchParams(window.location.search);
    ["range", "since", "until", "resolution", "compare"].forEach(function (k) { shown.delete(k); });
    if (q.range) shown.set("range", q.range);
    if (q.since) shown.set("since", q.since);
    if (q.until) shown.set("until", q.until);
    if (q.resolution) shown.set("resolution", q.resolution);
    if (this.competitors.length) shown.set("compare", this.state.compare ? "1" : "0");
    window.history.replaceState(null, "", window.location.pathname + "?" + shown.toString());
    Array.prototype.forEach.call(this.controls.picker.querySelectorAll("button.range"), function (b) {
      b.setAttribute("aria-pressed", String(!q.since && b.getAttribute("data-range") === q.range));
    });
    this.status.textContent = "Loading…";
    this.root.setAttribute("aria-busy", "true");
    getJson(streamUrl(this.api + "/trends", q))
      .then(function (data) { self.draw(data); self.loadTalk(data); })
      .catch(function (err) { self.status.textContent = "Could not load the charts: " + err.message; })
      .then(function () { self.root.removeAttribute("aria-busy"); });
  };

  Workspace.prototype.destroy = function () {
    this.plots.forEach(function (p) { p.destroy(); });
    this.plots = [];
    this.volume.textContent = ""; this.nss.textContent = ""; this.voice.textContent = "";
  };

  Workspace.prototype.width = function () {
    return Math.max(280, Math.min(this.root.clientWidth || 800, 1100));
  };

  // A click opens the bucket's posts; a drag (brush) opens the brushed range's.
  Workspace.prototype.leadsToStream = function (u, data) {
    var self = this, brushed = false, times = data.t, step = data.step;
    u.over.addEventListener("mousedown", function () { brushed = false; });
    u.over.addEventListener("click", function () {
      if (brushed) return;
      var i = u.cursor.idx;
      if (i === null || i === undefined) return;
      self.open(times[i], times[i] + step);
    });
    return function (uu) {
      var w = uu.select.width;
      if (w < 4) return;
      brushed = true;
      var a = uu.posToVal(uu.select.left, "x"), b = uu.posToVal(uu.select.left + w, "x");
      var lo = times[0], hi = times[times.length - 1] + step;
      a = Math.max(lo, Math.floor((a - lo) / step) * step + lo);
      b = Math.min(hi, Math.ceil((b - lo) / step) * step + lo);
      if (b > a) self.open(a, b);
    };
  };

  // The stream's URL for the brand's posts in [since, until) (ISO strings or epoch
  // seconds), with ``extra`` filters.
  Workspace.prototype.posts = function (since, until, extra) {
    var params = {brand: this.brand};
    params[this.startName] = typeof since === "number" ? iso(since) : since;
    params[this.endName] = typeof until === "number" ? iso(until) : until;
    Object.keys(extra || {}).forEach(function (k) { params[k] = extra[k]; });
    return streamUrl(this.stream, params);
  };

  Workspace.prototype.open = function (since, until) {
    window.location.assign(this.posts(since, until));
  };

  Workspace.prototype.draw = function (data) {
    var self = this;
    this.destroy();
    this.data = data;
    var main = data.series[0], r = data.range, step = r.step_seconds;
    this.controls.resolution.value = r.resolution;
    this.controls.since.value = r.start.slice(0, 16);
    this.controls.until.value = r.end.slice(0, 16);
    var total = main.mentions.reduce(function (a, b) { return a + b; }, 0);
    this.status.textContent = total.toLocaleString("en") + " mentions of " + data.brands[0] + " from " +
      fmtTime(Date.parse(r.start) / 1000, r.resolution) + " to " + fmtTime(Date.parse(r.end) / 1000, r.resolution) +
      ", per " + r.resolution + ". Click a point or drag across the chart to read its posts.";
    var t = main.t, w = this.width();
    var ctx = {t: t, step: step};
    var base = {
      width: w, height: 220,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      cursor: {drag: {x: true, y: false, setScale: false}, points: {size: 7}},
      legend: {show: true, live: true},
      scales: {x: {time: true, range: [t[0], t[t.length - 1] + step]}}
    };

    // Shading behind the plot: buckets too sparse to tell (grey), the one still filling.
    function shade(series) {
      return function (u) {
        var c = u.ctx, top = u.bbox.top, h = u.bbox.height;
        c.save();
        for (var i = 0; i < t.length; i++) {
          var fill = series.filling[i] ? FILLING : (series.sparse[i] && series.scored[i] > 0) ? SPARSE : null;
          if (!fill) continue;
          var x0 = u.valToPos(t[i], "x", true), x1 = u.valToPos(t[i] + step, "x", true);
          c.fillStyle = fill;
          c.fillRect(x0, top, Math.max(1, x1 - x0), h);
        }
        c.restore();
      };
    }

    // Volume: bars for the brand, lines for competitors.
    var volSeries = [{}], volData = [t];
    data.series.forEach(function (s, k) {
      volSeries.push(k === 0
        ? {label: s.brand, stroke: PALETTE[0], fill: "rgba(9,105,218,0.35)", paths: uPlot.paths.bars({size: [0.8, 40], align: 1}),
           points: {show: false}, value: function (u, v) { return v === null ? "–" : v.toLocaleString("en"); }}
        : {label: s.brand, stroke: PALETTE[k % PALETTE.length], width: 1.5,
           value: function (u, v) { return v === null ? "–" : v.toLocaleString("en"); }});
      volData.push(s.mentions);
    });
    var volOpts = Object.assign({}, base, {series: volSeries, axes: [{}, {label: "mentions", size: 60}],
      scales: {x: base.scales.x, y: {range: function (u, min, max) { return [0, Math.max(1, max) * 1.08]; }}},
      hooks: {drawClear: [shade(main)], setCursor: [function (u) { self.readoutAt(u.cursor.idx); }]}});
    var vol = new uPlot(volOpts, volData, this.volume);
    vol.hooks.setSelect = [this.leadsToStream(vol, ctx)];  // uPlot reads its hooks object when firing
    this.plots.push(vol);

    // NSS: the brand's line coloured by sign, its 95 % interval as a band, sparse buckets
    // left off the line (shown is null) and shaded; competitors as thin lines.
    var nssSeries = [{}], nssData = [t];
    nssSeries.push({label: main.brand + " NSS", width: 2, spanGaps: false,
      stroke: function (u) { return signGradient(u); },
      points: {show: true, size: 5, fill: function (u) { return signGradient(u); }},
      value: function (u, v, si, i) { return v === null ? (i !== null && main.sparse[i] ? "too few" : "–") : signed(v); }});
    nssData.push(main.nss);
    nssSeries.push({label: "high", stroke: "transparent", points: {show: false}, value: function () { return ""; }});
    nssSeries.push({label: "low", stroke: "transparent", points: {show: false}, value: function () { return ""; }});
    nssData.push(main.high); nssData.push(main.low);
    data.series.slice(1).forEach(function (s, k) {
      nssSeries.push({label: s.brand + " NSS", stroke: PALETTE[(k + 1) % PALETTE.length], width: 1.25, spanGaps: false,
        value: function (u, v) { return v === null ? "–" : signed(v); }});
      nssData.push(s.nss);
    });
    var nssOpts = Object.assign({}, base, {
      series: nssSeries, bands: [{series: [2, 3], fill: BAND}],
      scales: {x: base.scales.x, y: {range: [-100, 100]}},
      axes: [{}, {label: "NSS", size: 60, values: function (u, vals) { return vals.map(function (v) { return signed(v, 0); }); }}],
      hooks: {drawClear: [shade(main)], draw: [zeroLine, whiskers(main)],
              setCursor: [function (u) { self.readoutAt(u.cursor.idx); }]}
    });
    var nss = new uPlot(nssOpts, nssData, this.nss);
    nss.hooks.setSelect = [this.leadsToStream(nss, ctx)];
    hideLegend(nss, [2, 3]);
    this.plots.push(nss);

    // Share of voice, in % of the compared brands' mentions.
    if (data.brands.length > 1) {
      var sovSeries = [{}], sovData = [data.share_of_voice.t];
      data.brands.forEach(function (b, k) {
        sovSeries.push({label: b, stroke: PALETTE[k % PALETTE.length], width: k ? 1.25 : 2, points: {show: true, size: 4},
          value: function (u, v) { return v === null ? "–" : v.toFixed(1) + " %"; }});
        sovData.push(data.share_of_voice.shares[b].map(function (v) { return v === null ? null : 100 * v; }));
      });
      var sov = new uPlot(Object.assign({}, base, {series: sovSeries, scales: {x: base.scales.x, y: {range: [0, 100]}},
        axes: [{}, {label: "% of mentions", size: 60}]}), sovData, this.voice);
      sov.hooks.setSelect = [this.leadsToStream(sov, ctx)];
      this.plots.push(sov);
    } else {
      this.voice.appendChild(el("p", {className: "missing",
        text: this.competitors.length ? "Tick ‘compare’ to see the share of voice." :
          "No competitors configured for " + data.brands[0] + " (add them to the config to see the share of voice)."}));
    }
    this.drawSources(data);
    this.readoutAt(null);
  };

  function hideLegend(u, indices) {
    var rows = u.root.querySelectorAll(".u-legend tr");
    indices.forEach(function (i) { if (rows[i]) rows[i].style.display = "none"; });
  }

  // Green above 0, red below: a vertical gradient with a hard stop at the zero line.
  function signGradient(u) {
    var top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
    var zero = u.valToPos(0, "y", true);
    if (!isFinite(zero) || bottom <= top) return NEUTRAL;
    var g = u.ctx.createLinearGradient(0, top, 0, bottom);
    var stop = Math.min(1, Math.max(0, (zero - top) / (bottom - top)));
    g.addColorStop(0, GOOD); g.addColorStop(stop, GOOD); g.addColorStop(stop, BAD); g.addColorStop(1, BAD);
    return g;
  }

  // Each bucket's interval as a vertical whisker too: the band alone vanishes around a
  // bucket whose neighbours are empty, and a sparse bucket has only its interval to show.
  function whiskers(series) {
    return function (u) {
      var c = u.ctx;
      c.save(); c.lineWidth = 1.5;
      for (var i = 0; i < series.t.length; i++) {
        if (series.low[i] === null || series.high[i] === null) continue;
        var x = u.valToPos(series.t[i], "x", true);
        c.strokeStyle = series.sparse[i] ? "rgba(110,119,129,0.55)" : "rgba(87,96,106,0.45)";
        c.beginPath(); c.moveTo(x, u.valToPos(series.low[i], "y", true)); c.lineTo(x, u.valToPos(series.high[i], "y", true));
        c.stroke();
      }
      c.restore();
    };
  }

  function zeroLine(u) {
    var y = u.valToPos(0, "y", true), c = u.ctx;
    c.save(); c.strokeStyle = NEUTRAL; c.lineWidth = 1; c.setLineDash([4, 4]);
    c.beginPath(); c.moveTo(u.bbox.left, y); c.lineTo(u.bbox.left + u.bbox.width, y); c.stroke(); c.restore();
  }

  // The numbers behind the hovered bucket, one hover away, with the link to its posts.
  Workspace.prototype.readoutAt = function (i) {
    var data = this.data;
    if (!data) return;
    var s = data.series[0], r = data.range;
    this.readout.textContent = "";
    if (i === null || i === undefined) {
      this.readout.appendChild(el("p", {text: "Hover over the charts for a period's numbers."}));
      return;
    }
    var since = s.t[i], until = s.t[i] + r.step_seconds;
    var head = fmtTime(since, r.resolution) + (s.filling[i] ? " (still filling)" : "");
    var line;
    if (!s.scored[i]) line = s.mentions[i] + " mentions, none scored";
    else if (s.sparse[i]) line = s.mentions[i] + " mentions, " + s.scored[i] + " scored: too few to tell the mood " +
      "(somewhere between " + signed(s.low[i], 0) + " and " + signed(s.high[i], 0) + ")";
    else line = s.mentions[i].toLocaleString("en") + " mentions · NSS " + signed(s.nss[i]) + " ± " +
      (1.96 * s.nss_se[i]).toFixed(1) + " (95 %: " + signed(s.low[i]) + " to " + signed(s.high[i]) + ") · " +
      s.positive[i] + " positive, " + s.neutral[i] + " neutral, " + s.negative[i] + " negative";
    var value = el("strong", {text: line});
    if (s.scored[i] && !s.sparse[i]) value.style.color = moodColour(s.low[i], s.high[i]);
    var link = el("a", {href: this.posts(since, until),
      className: "open-posts", text: "Read these posts →"});
    this.readout.appendChild(el("p", {}, [el("span", {text: head + ": "}), value, document.createTextNode(" "), link]));
  };

  Workspace.prototype.drawSources = function (data) {
    var self = this, r = data.range;
    this.sources.textContent = "";
    var rows = data.sources.filter(function (s) { return s.brand === data.brands[0]; });
    if (!rows.length) { this.sources.appendChild(el("p", {className: "missing", text: "No mentions in this range."})); return; }
    var body = el("tbody");
    rows.forEach(function (s) {
      var bar = el("span", {className: "bar"});
      bar.style.width = Math.round(100 * (s.share || 0)) + "%";
      var mood = el("td", {className: "num", text: s.sparse ? "too few" : signed(s.nss) + " ± " + (1.96 * s.nss_se).toFixed(1)});
      if (!s.sparse) mood.style.color = moodColour(s.low, s.high);
      var link = el("a", {href: self.posts(r.start, r.end, {source: s.source}),
        text: s.source});
      body.appendChild(el("tr", {}, [el("th", {scope: "row"}, [link]),
        el("td", {className: "num", text: s.mentions.toLocaleString("en")}),
        el("td", {className: "share"}, [bar, document.createTextNode(" " + (100 * (s.share || 0)).toFixed(1) + " %")]),
        mood]));
    });
    this.sources.appendChild(el("table", {}, [el("thead", {}, [el("tr", {}, [
      el("th", {scope: "col", text: "source"}), el("th", {scope: "col", text: "mentions"}),
      el("th", {scope: "col", text: "share"}), el("th", {scope: "col", text: "NSS ± 95 %"})])]), body]));
  };

  // Terms, conversations and authors: three requests, each section filled when it answers.
  Workspace.prototype.loadTalk = function (data) {
    var self = this, r = data.range;
    var q = {brand: this.brand, since: r.start, until: r.end};
    this.talk.textContent = "";
    var parts = [["terms", "Rising terms and hashtags"], ["conversations", "Conversations"], ["authors", "Authors with the most reach"]];
    parts.forEach(function (p) {
      var box = el("div", {className: "talk-part", "data-part": p[0]}, [el("h4", {text: p[1]}), el("p", {text: "Loading…"})]);
      self.talk.appendChild(box);
      getJson(streamUrl(self.api + "/" + p[0], q))
        .then(function (body) { box.replaceChild(self["render_" + p[0]](body, r), box.lastChild); })
        .catch(function (err) { box.lastChild.textContent = "Could not load: " + err.message; });
    });
  };

  Workspace.prototype.linkList = function (items, render) {
    if (!items.length) return el("p", {className: "missing", text: "Nothing stands out."});
    var list = el("ol");
    items.forEach(function (item) { list.appendChild(el("li", {}, render(item))); });
    return list;
  };

  Workspace.prototype.render_terms = function (body, r) {
    var self = this;
    var term = function (t) {
      return [el("a", {href: self.posts(r.start, r.end, {q: t.term}), text: t.term}),
        document.createTextNode(" — in " + t.mentions + " of the sampled posts (" + (100 * t.share).toFixed(0) + " % vs " +
          (100 * t.baseline_share).toFixed(1) + " % before)")];
    };
    return el("div", {}, [el("h5", {text: "Terms"}), this.linkList(body.terms, term),
      el("h5", {text: "Hashtags"}), this.linkList(body.hashtags, term)]);
  };

  Workspace.prototype.render_conversations = function (body, r) {
    var self = this;
    var thread = function (c) {
      var title = (c.title || c.conversation_id).replace(/\s+/g, " ");
      if (title.length > 120) title = title.slice(0, 119) + "…";
      var mood = el("span", {className: "nss", text: c.nss === null ? "" : " NSS " + signed(c.nss) + " over " + c.voices + " voices"});
      mood.style.color = c.label === "positive" ? GOOD : c.label === "negative" ? BAD : NEUTRAL;
      // The thread's posts: its id, and the minutes it spans (what the stream can filter
      // by even where it does not know conversation=).
      var first = Math.floor(Date.parse(c.first_at) / 60000) * 60, last = Math.floor(Date.parse(c.last_at) / 60000) * 60 + 60;
      return [el("a", {href: self.posts(first, last, {source: c.source, conversation: c.conversation_id}), text: title}),
        document.createTextNode(" [" + c.source + "] " + c.mentions + " mentions, " + c.positive + " positive, " + c.negative + " negative ·"),
        mood];
    };
    return el("div", {}, [el("h5", {text: "Most active"}), this.linkList(body.most_active, thread),
      el("h5", {text: "Most negative"}), this.linkList(body.most_negative, thread),
      el("h5", {text: "Most positive"}), this.linkList(body.most_positive, thread)]);
  };

  Workspace.prototype.render_authors = function (body, r) {
    var self = this;
    return this.linkList(body.authors, function (a) {
      var mood = el("span", {className: "nss", text: a.sparse ? "" : " · NSS " + signed(a.nss)});
      mood.style.color = moodColour(a.low, a.high);
      return [el("a", {href: self.posts(r.start, r.end, {author: a.author}), text: a.author}),
        document.createTextNode(" (" + a.sources.join(", ") + ") " + a.engagement.toLocaleString("en") + " engagements on " +
          a.mentions + " mentions"), mood];
    });
  };

  function start() {
    if (typeof uPlot === "undefined") return;
    var roots = document.querySelectorAll("section[data-charts]");
    Array.prototype.forEach.call(roots, function (root) {
      var ws = new Workspace(root);
      var timer = null;
      window.addEventListener("resize", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var w = ws.width();
          ws.plots.forEach(function (p) { p.setSize({width: w, height: p.height}); });
        }, 150);
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
