// meshc graph --format html: draws the data meshc embedded (#mesh-data). Every state shown
// was decided by meshc; this script only lays out, styles and explains. Text reaches the
// document through textContent only, never as markup.
"use strict";
(function () {
  const started = performance.now();
  const data = JSON.parse(document.getElementById("mesh-data").textContent);
  const timings = { parse: performance.now() - started };
  const LARGE = 250; // services: beyond this, labels show only when zoomed in

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  document.getElementById("title").textContent = data.mesh;
  document.getElementById("title").title = "drawn by " + data.generator;
  const namespaceSelect = document.getElementById("namespace");
  for (const namespace of data.namespaces) namespaceSelect.appendChild(element("option", namespace)).value = namespace;

  const elements = [];
  for (const group of data.groups) {
    elements.push({ group: "nodes", data: { id: group.id, label: group.label, kind: group.kind, parent: group.parent || undefined },
                    classes: "group group-" + group.kind });
  }
  for (const node of data.nodes) {
    elements.push({ group: "nodes", data: { id: node.id, label: node.name, kind: node.kind, parent: node.parent,
                                            namespace: node.namespace },
                    classes: [node.kind, node.severity ? "diagnostic-" + node.severity : ""].join(" ") });
  }
  for (const edge of data.edges) {
    elements.push({ group: "edges", data: { id: edge.id, source: edge.source, target: edge.target },
                    classes: [edge.kind, edge.state, edge.protocolClass,
                              edge.severity ? "diagnostic-" + edge.severity : ""].join(" ") });
  }
  const groupIds = new Set(data.groups.map((g) => g.id));
  const byId = new Map();
  for (const item of [...data.groups, ...data.nodes, ...data.edges]) byId.set(item.id, item);

  const large = data.nodes.length > LARGE;
  const cy = cytoscape({
    container: document.getElementById("graph"),
    elements: elements,
    textureOnViewport: large,
    hideEdgesOnViewport: large,
    minZoom: 0.02,
    maxZoom: 4,
    style: [
      { selector: "node", style: { "label": "data(label)", "font-size": 12, "text-valign": "center", "text-halign": "center",
                                   "width": 120, "height": 30, "shape": "round-rectangle", "background-color": "#ddf4ff",
                                   "border-width": 1, "border-color": "#0969da", "color": "#0a3069",
                                   "text-wrap": "ellipsis", "text-max-width": 112,
                                   "min-zoomed-font-size": large ? 7 : 0 } },
      { selector: "node.gateway", style: { "shape": "cut-rectangle", "background-color": "#fbefff", "border-color": "#8250df", "color": "#3e1f79" } },
      { selector: "node.external", style: { "shape": "ellipse", "background-color": "#f6f8fa", "border-color": "#6e7781",
                                            "border-style": "dashed", "color": "#24292f" } },
      { selector: "node.group", style: { "shape": "round-rectangle", "background-color": "#ffffff", "background-opacity": 0.6,
                                         "border-color": "#d0d7de", "border-width": 1, "color": "#57606a", "font-size": 12,
                                         "text-valign": "top", "text-halign": "center", "padding": 12, "text-margin-y": -2, "text-wrap": "none",
                                         "min-zoomed-font-size": 0 } },
      { selector: "node.group-platform", style: { "background-color": "#f6f8fa", "border-width": 2, "font-weight": "bold", "font-size": 14 } },
      { selector: "node.group-external", style: { "border-style": "dashed" } },
      { selector: "node.diagnostic-warning", style: { "border-width": 4, "border-color": "#bf8700" } },
      { selector: "node.diagnostic-error", style: { "border-width": 4, "border-color": "#cf222e" } },
      { selector: "node:selected", style: { "background-color": "#0969da", "color": "#ffffff" } },
      { selector: "node.match", style: { "background-color": "#ffd33d", "color": "#1f2328" } },
      { selector: "edge", style: { "curve-style": large ? "straight" : "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.9,
                                   "width": 1.6, "line-color": "#0969da", "target-arrow-color": "#0969da", "opacity": 0.85 } },
      { selector: "edge.tcp", style: { "width": 1 } },
      { selector: "edge.grpc", style: { "source-arrow-shape": "circle", "source-arrow-color": "#0969da" } },
      { selector: "edge.route", style: { "width": 4 } },
      { selector: "edge.permissive", style: { "line-color": "#bf8700", "target-arrow-color": "#bf8700", "line-style": "dashed", "line-dash-pattern": [8, 3] } },
      { selector: "edge.plaintext", style: { "line-color": "#fb8500", "target-arrow-color": "#fb8500", "line-style": "dotted" } },
      { selector: "edge.denied", style: { "line-color": "#cf222e", "target-arrow-color": "#cf222e", "target-arrow-shape": "tee",
                                          "line-style": "dashed", "width": 2.5 } },
      { selector: "edge.diagnostic-error", style: { "underlay-color": "#cf222e", "underlay-opacity": 0.3, "underlay-padding": 4 } },
      { selector: "edge.diagnostic-warning", style: { "underlay-color": "#bf8700", "underlay-opacity": 0.2, "underlay-padding": 3 } },
      { selector: "edge:selected", style: { "width": 5, "opacity": 1 } },
      { selector: "edge.overview", style: { "opacity": 0.12 } },
      { selector: "edge.focus", style: { "opacity": 1, "width": 2.5, "z-index": 10 } },
      { selector: ".faded", style: { "opacity": 0.12 } },
    ],
    layout: { name: "preset" },
  });

  // Layout, two levels of layered (dagre) layout: the workloads inside each namespace group,
  // then the namespace groups inside each platform, then the platforms and the external
  // services, each level sized by the one below. Every dagre run is small, so a 1,000-service
  // mesh lays out in well under a second where one dagre run over the whole compound graph
  // takes minutes.
  const NODE_W = 120, NODE_H = 30, PAD = 16, LABEL = 22, COLUMN = 12;

  function dagreLayout(items, links, rankSep) {
    const headless = cytoscape({
      headless: true, styleEnabled: true,
      style: [{ selector: "node", style: { "width": "data(w)", "height": "data(h)", "shape": "rectangle" } }],
      elements: [
        ...items.map((item) => ({ group: "nodes", data: { id: item.id, w: item.w, h: item.h } })),
        ...links.map(([source, target], i) => ({ group: "edges", data: { id: "l" + i, source: source, target: target } })),
      ],
    });
    headless.layout({ name: "dagre", rankDir: "LR", nodeSep: 14, rankSep: rankSep, animate: false, fit: false }).run();
    const positions = new Map();
    headless.nodes().forEach((n) => positions.set(n.id(), { x: n.position("x"), y: n.position("y") }));
    headless.destroy();
    return positions;
  }

  // A rank holding more than COLUMN nodes (typically many unconnected services) is folded
  // into several columns, so that a namespace of 100 services is a block, not a tall line.
  function foldTallRanks(positions) {
    const ranks = new Map();
    positions.forEach((p, id) => { const x = Math.round(p.x); if (!ranks.has(x)) ranks.set(x, []); ranks.get(x).push(id); });
    let shift = 0;
    for (const x of [...ranks.keys()].sort((a, b) => a - b)) {
      const ids = ranks.get(x).sort((a, b) => positions.get(a).y - positions.get(b).y);
      const top = positions.get(ids[0]).y;
      ids.forEach((id, i) => {
        positions.set(id, { x: x + shift + Math.floor(i / COLUMN) * (NODE_W + 20), y: top + (i % COLUMN) * (NODE_H + 14) });
      });
      shift += (Math.ceil(ids.length / COLUMN) - 1) * (NODE_W + 20);
    }
    return positions;
  }

  // Lay out `children` (id -> {w, h}) with `links`; returns the box size and each child's
  // centre relative to the box's top-left corner.
  function box(children, links, rankSep, fold) {
    const items = [...children].map(([id, size]) => ({ id: id, w: size.w, h: size.h }));
    let positions = dagreLayout(items, links, rankSep);
    if (fold) positions = foldTallRanks(positions);
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const item of items) {
      const p = positions.get(item.id);
      minX = Math.min(minX, p.x - item.w / 2); maxX = Math.max(maxX, p.x + item.w / 2);
      minY = Math.min(minY, p.y - item.h / 2); maxY = Math.max(maxY, p.y + item.h / 2);
    }
    const offsets = new Map();
    positions.forEach((p, id) => offsets.set(id, { x: p.x - minX + PAD, y: p.y - minY + PAD + LABEL }));
    return { w: maxX - minX + 2 * PAD, h: maxY - minY + 2 * PAD + LABEL, offsets: offsets };
  }

  function aggregated(edges, groupOf) {
    const seen = new Set(), links = [];
    edges.forEach((e) => {
      const a = groupOf(e.source()), b = groupOf(e.target());
      if (a && b && a !== b && !seen.has(a + "\n" + b)) { seen.add(a + "\n" + b); links.push([a, b]); }
    });
    return links;
  }

  function runLayout() {
    const layoutStarted = performance.now();
    const leaves = cy.nodes(".service, .gateway, .external").filter((n) => n.visible());
    const edges = cy.edges().filter((e) => e.visible());
    const inner = new Map(); // namespace group id -> leaves
    leaves.forEach((n) => { const p = n.data("parent"); if (!inner.has(p)) inner.set(p, []); inner.get(p).push(n); });
    const groupBoxes = new Map();
    inner.forEach((nodes, groupId) => {
      const ids = new Set(nodes.map((n) => n.id()));
      const links = edges.filter((e) => ids.has(e.source().id()) && ids.has(e.target().id()))
        .map((e) => [e.source().id(), e.target().id()]);
      groupBoxes.set(groupId, box(new Map(nodes.map((n) => [n.id(), { w: NODE_W, h: NODE_H }])), links, 60, true));
    });
    const outerOf = (groupId) => cy.getElementById(groupId).data("parent") || groupId;
    const outer = new Map(); // platform group id (or a top-level group) -> its namespace groups
    groupBoxes.forEach((_, groupId) => {
      const o = outerOf(groupId);
      if (!outer.has(o)) outer.set(o, new Map());
      outer.get(o).set(groupId, groupBoxes.get(groupId));
    });
    const leafGroup = (n) => n.data("parent");
    const outerBoxes = new Map();
    outer.forEach((children, o) => {
      outerBoxes.set(o, box(children, aggregated(edges, (n) => children.has(leafGroup(n)) ? leafGroup(n) : null), 80, false));
    });
    const top = box(outerBoxes, aggregated(edges, (n) => outerOf(leafGroup(n))), 120, false);
    cy.batch(() => {
      outerBoxes.forEach((outerBox, o) => {
        const oc = top.offsets.get(o);
        const oLeft = oc.x - outerBox.w / 2, oTop = oc.y - outerBox.h / 2;
        outerBox.offsets.forEach((gc, groupId) => {
          const groupBox = groupBoxes.get(groupId);
          const gLeft = oLeft + gc.x - groupBox.w / 2, gTop = oTop + gc.y - groupBox.h / 2;
          groupBox.offsets.forEach((nc, id) => cy.getElementById(id).position({ x: gLeft + nc.x, y: gTop + nc.y }));
        });
      });
    });
    cy.fit(cy.elements().filter((e) => e.visible()), 20);
    timings.layout = performance.now() - layoutStarted;
  }

  function updateCounts() {
    const visible = cy.nodes(".service, .gateway, .external").filter((n) => n.visible());
    const edges = cy.edges().filter((e) => e.visible());
    const counts = document.getElementById("counts");
    counts.textContent = visible.length + " workloads, " + edges.length + " calls shown; " +
      edges.filter(".denied").length + " denied, " + edges.filter(".plaintext").length + " plain text";
    counts.dataset.nodes = String(visible.length);
    counts.dataset.edges = String(edges.length);
    counts.dataset.denied = String(edges.filter(".denied").length);
  }

  function section(title, body) {
    const wrapper = element("div");
    wrapper.appendChild(element("h3", title));
    wrapper.appendChild(body);
    return wrapper;
  }

  function list(items, render) {
    const ul = element("ul");
    for (const item of items) {
      const li = element("li");
      render(li, item);
      ul.appendChild(li);
    }
    if (!items.length) ul.appendChild(element("li", "none"));
    return ul;
  }

  function table(headings, rows) {
    const t = element("table");
    const head = t.appendChild(element("tr"));
    for (const heading of headings) head.appendChild(element("th", heading));
    for (const row of rows) {
      const tr = t.appendChild(element("tr"));
      for (const cell of row) tr.appendChild(element("td", cell));
    }
    return t;
  }

  function code(value) {
    return element("code", typeof value === "string" ? value : JSON.stringify(value));
  }

  function routeSection(routes) {
    const wrapper = element("div", null, "routes");
    if (!routes.length) wrapper.appendChild(element("p", "none"));
    for (const route of routes) {
      const block = wrapper.appendChild(element("div", null, "route"));
      block.dataset.route = route.name;
      block.appendChild(element("strong", route.name + (route.hosts.length ? " (" + route.hosts.join(", ") + ")" : "")));
      block.appendChild(list(route.rules, (li, rule) => {
        li.appendChild(element("span", "match "));
        li.appendChild(code(rule.match.length ? rule.match : "everything"));
        li.appendChild(element("span", rule.to.length ? " \u2192 " + rule.to.join(", ") : ""));
        if (Object.keys(rule.other).length) { li.appendChild(element("span", " ")); li.appendChild(code(rule.other)); }
      }));
    }
    return wrapper;
  }

  function diagnosticsOf(item) {
    return list(item.diagnostics.map((i) => data.diagnostics[i]), (li, d) => {
      li.className = "severity-" + d.severity;
      li.textContent = d.severity + " " + d.code + " " + d.location + ": " + d.message;
    });
  }

  function showDetails(item) {
    const panel = document.getElementById("details");
    const body = document.getElementById("details-body");
    body.replaceChildren();
    panel.hidden = false;
    panel.dataset.id = item.id;
    const d = item.details || {};
    if (groupIds.has(item.id)) {
      document.getElementById("details-title").textContent = item.label;
      body.appendChild(section("Artifacts", list(item.artifacts || [], (li, a) => { li.textContent = a.target + ": " + a.path; })));
      return;
    }
    if (item.name !== undefined) {
      document.getElementById("details-title").textContent = item.kind + " " + item.namespace + "/" + item.name;
      body.appendChild(element("p", "defined at " + item.source + (d.platform ? "; platform " + d.platform : "") +
                                    (d.mtls ? "; mTLS " + d.mtls : "")));
      if (d.placement) {
        // a service on several platforms: this node is its placement on d.platform
        const placed = d.placement;
        body.appendChild(section("Placement", element("p", "one of its placements on " + placed.platforms.join(", ") +
          "; failover priority " + placed.priority + (placed.weight ? "; weight " + placed.weight : ""))));
      }
      body.appendChild(section("Ports", table(["name", "port", "protocol"], (d.ports || []).map((p) => [p.name, p.port, p.protocol]))));
      if (d.hosts) body.appendChild(section("Hosts", list(d.hosts, (li, h) => { li.textContent = h; })));
      if (d.versions && d.versions.length) body.appendChild(section("Versions", element("p", d.versions.join(", "))));
      if (d.routes) body.appendChild(section("Routes", routeSection(d.routes)));
      if (d.policies) {
        body.appendChild(section("Access policies", list(d.policies, (li, policy) => {
          li.appendChild(element("strong", policy.name));
          li.appendChild(list(policy.rules, (inner, rule) => {
            const { section: which, from, ...limits } = rule;
            inner.appendChild(element("span", which + " from " + from.join(", ") + " "));
            if (Object.keys(limits).length) inner.appendChild(code(limits));
          }));
        })));
      }
      if (d.tls) body.appendChild(section("TLS", code(d.tls)));
      if (d.calls) body.appendChild(section("Calls", list(d.calls, (li, c) => { li.textContent = c; })));
      if (d.callers) body.appendChild(section("Called by", list(d.callers, (li, c) => { li.textContent = c; })));
      if (d.artifacts) body.appendChild(section("Artifacts", list(d.artifacts, (li, a) => { li.textContent = a.target + ": " + a.path; })));
      body.appendChild(section("Diagnostics", diagnosticsOf(item)));
      return;
    }
    // an edge
    document.getElementById("details-title").textContent = item.source + " \u2192 " + item.target;
    const state = element("p", "state: " + item.state + (item.denial ? " (" + item.denial + ")" : ""), "state-" + item.state);
    body.appendChild(state);
    body.appendChild(element("p", "authorisation: " + item.authorization + "; transport: " + item.transport +
                                  "; protocols: " + item.protocols.join(", ")));
    if (item.tier !== undefined) {
      body.appendChild(element("p", "failover tier " + item.tier + " of the caller's placements of the callee" +
                                    (item.tier === 0 ? " (takes the traffic while it is healthy)" : "")));
    }
    if (item.routes) body.appendChild(section("Routes", list(item.routes, (li, r) => { li.textContent = r; })));
    body.appendChild(section("Diagnostics", diagnosticsOf(item)));
  }

  // With many services the overview fades every edge; a tapped workload shows its own.
  if (large) cy.edges().addClass("overview");
  cy.on("tap", "node, edge", (event) => {
    const item = byId.get(event.target.id());
    if (item) showDetails(item);
    cy.edges().removeClass("focus");
    if (event.target.isNode()) event.target.connectedEdges().addClass("focus");
  });

  const diagnosticList = document.getElementById("diagnostic-list");
  data.diagnostics.forEach((d) => {
    const li = diagnosticList.appendChild(element("li", d.severity + " " + d.code + " " + d.location + ": " + d.message,
                                                  "severity-" + d.severity));
    if (d.on && cy.getElementById(d.on).length) {
      li.addEventListener("click", () => {
        const target = cy.getElementById(d.on);
        cy.elements().unselect();
        target.select();
        cy.animate({ fit: { eles: target.union(target.connectedNodes()), padding: 80 } }, { duration: 200 });
        showDetails(byId.get(d.on));
      });
    }
  });
  if (!data.diagnostics.length) diagnosticList.appendChild(element("li", "none"));

  function applyNamespace() {
    const namespace = namespaceSelect.value;
    cy.batch(() => {
      cy.elements().style("display", "element");
      if (namespace) {
        const inside = cy.nodes(".service, .gateway, .external").filter((n) => n.data("namespace") === namespace);
        const shown = inside.union(inside.connectedEdges()).union(inside.connectedEdges().connectedNodes());
        const withParents = shown.union(shown.nodes().ancestors());
        cy.elements().difference(withParents).style("display", "none");
      }
    });
    runLayout();
    updateCounts();
  }
  namespaceSelect.addEventListener("change", applyNamespace);

  const search = document.getElementById("search");
  search.addEventListener("input", () => {
    const text = search.value.trim().toLowerCase();
    const matches = text
      ? cy.nodes(".service, .gateway, .external").filter((n) => n.visible() && n.id().toLowerCase().includes(text))
      : cy.collection();
    cy.batch(() => {
      cy.elements().removeClass("match faded");
      if (!text) return;
      cy.elements().not(matches).not(matches.ancestors()).addClass("faded");
      matches.addClass("match");
    });
    search.dataset.matches = String(matches.length);
    if (matches.length) {
      cy.fit(matches, 60);
      const b = matches.boundingBox();
      if (cy.zoom() > 1.2) cy.zoom({ level: 1.2, position: { x: (b.x1 + b.x2) / 2, y: (b.y1 + b.y2) / 2 } });
    }
  });
  document.getElementById("fit").addEventListener("click", () => cy.fit(undefined, 20));

  timings.setup = performance.now() - started;
  runLayout();
  updateCounts();
  timings.total = performance.now() - started;
  window.meshcGraph = { cy: cy, data: data, timings: timings };
  document.body.dataset.ready = "true";
})();
