// The feature dashboard: header, activation histogram, logit effects, top examples as token strips shaded by
// the feature (hover a token for its value), collapsible quantile groups, and similar features that open
// their own dashboard in the same widget.
//
// Traits (set by scopewidgets/widgets/dashboard.py; Python computes, this module draws):
//   feature     number   two-way: the feature shown (a click on a similar feature sets it; Python answers
//                        with the data traits below; until then the view says it is opening it)
//   header      {feature, label, density, max_activation, mean_activation, n_tokens, source} (null: unknown)
//   histogram   {counts, edges}: binary float64 [n] and [n + 1]
//   logits      {top, bottom}: [{token, value}], strongest first
//   examples    {tokens: string[], special: uint8 [t], values: float32 [t] (NaN: unknown), lengths: int32 [e],
//                focus: int32 [e], max_values: float32 [e], seq_index: float64 [e], position: int32 [e],
//                groups: [{kind: "top"|"quantile", first, count, lower?, upper?, tokens?, fraction?}],
//                limits: [lo, hi]}
//   similar     [{feature, cosine, label, covered}]
//   offline_features  number[]   in an exported page, the features it can open; [] with a kernel
//   actions     [{name, label}]   extra buttons (e.g. the explorer's "steer"): a click sends the custom message
//                                 {kind: "action", name, feature} with the shown feature
//   error       string   shown in the banner
import "./lib/style.css";
import "./dashboard.css";
import { offsets, unpack } from "./lib/array.js";
import { format, scale } from "./lib/color.js";
import { h, replaceChildren } from "./lib/dom.js";
import { errorBanner, guarded } from "./lib/error.js";

const DATA = ["header", "histogram", "logits", "examples", "similar", "offline_features"];

const percent = (x) => (x == null ? "unknown" : `${format(100 * x)}%`);
const number = (x) => (x == null ? "unknown" : format(x));

function headerView(header) {
  const stats = [
    ["density", percent(header.density)],
    ["max", number(header.max_activation)],
    ["mean when active", number(header.mean_activation)],
    ["corpus", `${(header.n_tokens ?? 0).toLocaleString("en-US")} tokens`],
  ];
  return [
    h("h3", { class: "sw-dash-title", "data-testid": "dash-title" },
      h("span", { class: "sw-fid" }, `Feature #${header.feature}`),
      header.label ? h("span", { class: "sw-flabel" }, header.label) : null),
    h("div", { class: "sw-dash-stats", "data-testid": "dash-stats" },
      stats.map(([name, value]) => h("span", { dataset: { stat: name } }, h("strong", {}, value), ` ${name}`)),
      h("span", { class: "sw-dash-source" }, header.source ?? "")),
  ];
}

function histogramView(histogram) {
  const counts = unpack(histogram.counts).data;
  const edges = unpack(histogram.edges).data;
  let top = 0;
  for (const c of counts) top = Math.max(top, c);
  const bars = Array.from(counts, (count, i) => h("div", {
    class: "sw-bar-bin",
    dataset: { i, count },
    title: `[${format(edges[i])}, ${format(edges[i + 1])}): ${count} tokens`,
    style: { height: `${top ? (100 * count) / top : 0}%` },
  }));
  return [
    h("h4", {}, "Activations (tokens where it fires)"),
    h("div", { class: "sw-hist", "data-testid": "histogram" }, bars),
    h("div", { class: "sw-hist-axis" }, h("span", {}, format(edges[0] ?? 0)), h("span", {}, format(edges[edges.length - 1] ?? 0))),
  ];
}

function logitList(title, items, testid) {
  return h("section", { "data-testid": testid }, h("h4", {}, title), h("div", { class: "sw-list" },
    items.length ? items.map(({ token, value }) => h("div", { class: "sw-logit" },
      h("span", { class: "sw-logit-token" }, token), h("span", { class: "sw-fval" }, format(value))))
      : h("div", { class: "sw-empty" }, "none")));
}

function similarView(similar, offline, shown) {
  const buttons = similar.map(({ feature, cosine, label, covered }) => {
    const reachable = covered && (!offline.length || offline.includes(feature));
    const why = !covered ? "not in this pass" : reachable ? null : "not saved in this file";
    return h("button", { class: "sw-feat", type: "button", dataset: { feature }, disabled: !reachable || feature === shown, title: why },
      h("span", { class: "sw-fid" }, `#${feature}`), h("span", { class: "sw-flabel" }, label),
      h("span", { class: "sw-fval" }, format(cosine)));
  });
  return [h("h4", {}, "Similar features (decoder cosine)"),
    h("div", { class: "sw-list", "data-testid": "similar" }, buttons.length ? buttons : h("div", { class: "sw-empty" }, "none"))];
}

/** Token strips of examples [first, first + count), and the spans made (for hovering). */
function strips(data, first, count, colour, spans) {
  return Array.from({ length: count }, (_, k) => {
    const e = first + k;
    const strip = h("div", { class: "sw-strip", dataset: { example: e } },
      h("span", { class: "sw-strip-value" }, format(data.maxValues[e])));
    const line = strip.appendChild(h("span", { class: "sw-strip-tokens" }));
    for (let t = data.starts[e]; t < data.starts[e + 1]; t++) {
      const value = data.values[t];
      const span = h("span", {
        class: `sw-tok${data.special[t] ? " sw-special" : ""}${t - data.starts[e] === data.focus[e] ? " sw-focus" : ""}`,
        dataset: { t, example: e },
        title: Number.isNaN(value) ? "value unknown" : format(value),
        style: { backgroundColor: Number.isNaN(value) ? "transparent" : colour(value) },
      }, data.tokens[t]);
      spans[t] = span;
      line.appendChild(span);
    }
    return strip;
  });
}

function readExamples(examples) {
  const lengths = unpack(examples.lengths).data;
  const data = {
    tokens: examples.tokens ?? [],
    special: unpack(examples.special).data,
    values: unpack(examples.values).data,
    focus: unpack(examples.focus).data,
    maxValues: unpack(examples.max_values).data,
    seqIndex: unpack(examples.seq_index).data,
    position: unpack(examples.position).data,
    starts: offsets(lengths),
  };
  if (data.starts[lengths.length] !== data.tokens.length) throw new Error(`examples: lengths cover ${data.starts[lengths.length]} tokens, got ${data.tokens.length}`);
  return data;
}

function examplesView(examples, spans) {
  const data = readExamples(examples);
  const colour = scale(examples.limits ?? [0, 1]);
  const sections = (examples.groups ?? []).map((group) => {
    const body = strips(data, group.first, group.count, colour, spans);
    if (group.kind === "top") {
      return h("section", { "data-testid": "top-examples" }, h("h4", {}, "Top activations"),
        body.length ? body : h("div", { class: "sw-empty" }, "It never fires on this corpus"));
    }
    const title = `[${format(group.lower)}, ${format(group.upper)}) · ${group.tokens.toLocaleString("en-US")} tokens (${percent(group.fraction)})`;
    return h("details", { class: "sw-group", "data-testid": "quantile-group" },
      h("summary", {}, title), body.length ? body : h("div", { class: "sw-empty" }, "no token in this range"));
  });
  return { data, sections };
}

function render({ model, el }) {
  const banner = errorBanner(model);
  const back = h("button", { class: "sw-chip", type: "button", dataset: { action: "back" }, "data-testid": "back", hidden: true }, "← back");
  const status = h("span", { "data-testid": "status" });
  const actions = h("span", { class: "sw-dash-actions" });
  const header = h("div", { class: "sw-dash-header", "data-testid": "dash-header" });
  const side = h("div", { class: "sw-side" });
  const main = h("div", { class: "sw-dash-examples", "data-testid": "examples" });
  const root = h("div", { class: "scopewidgets sw-dash", "data-testid": "dashboard" },
    banner.el, h("div", { class: "sw-bar" }, back, status, actions), header, h("div", { class: "sw-body" }, main, side));
  el.appendChild(root);

  const history = [];
  let data = null;
  let spans = [];
  const shown = () => model.get("header")?.feature;
  const idle = () => {
    const wanted = model.get("feature");
    status.textContent = wanted !== shown() ? `Opening feature #${wanted}…` : "Hover a token for its activation";
    back.hidden = !history.length;
  };

  const draw = guarded(banner, () => {
    const offline = model.get("offline_features") ?? [];
    replaceChildren(header, headerView(model.get("header") ?? {}));
    const logits = model.get("logits") ?? { top: [], bottom: [] };
    replaceChildren(side, h("section", {}, histogramView(model.get("histogram"))),
      logitList("Promoted tokens (logit effect)", logits.top, "top-logits"),
      logitList("Suppressed tokens", logits.bottom, "bottom-logits"),
      h("section", {}, similarView(model.get("similar") ?? [], offline, shown())));
    spans = [];
    const view = examplesView(model.get("examples"), spans);
    data = view.data;
    replaceChildren(main, view.sections);
    idle();
  });

  const drawActions = guarded(banner, () => {
    replaceChildren(actions, (model.get("actions") ?? []).map(({ name, label }) => h("button",
      { class: "sw-chip", type: "button", dataset: { command: name }, "data-testid": `action-${name}` }, label ?? name)));
  });

  const open = (feature, remember) => {
    if (remember) history.push(shown());
    model.set("feature", feature);
    model.save_changes();
    idle();
  };
  const onClick = guarded(banner, (event) => {
    if (event.target.closest("[data-action=back]") && history.length) return open(history.pop(), false);
    const command = event.target.closest("[data-command]");
    if (command) return model.send({ kind: "action", name: command.dataset.command, feature: shown() });
    const button = event.target.closest(".sw-feat");
    if (button && !button.disabled) open(Number(button.dataset.feature), true);
  });
  const onOver = guarded(banner, (event) => {
    const token = event.target.closest(".sw-tok");
    if (!token || !data) return;
    const t = Number(token.dataset.t);
    const e = Number(token.dataset.example);
    const value = data.values[t];
    const where = `seq ${data.seqIndex[e]}, position ${data.position[e] - data.focus[e] + (t - data.starts[e])}`;
    status.textContent = `“${data.tokens[t]}” ${Number.isNaN(value) ? "value unknown" : format(value)} · ${where}`;
  });

  const subscriptions = [...DATA.map((name) => [`change:${name}`, draw]), ["change:feature", guarded(banner, idle)],
    ["change:actions", drawActions]];
  for (const [event, handler] of subscriptions) model.on(event, handler);
  root.addEventListener("click", onClick);
  main.addEventListener("mouseover", onOver);
  main.addEventListener("mouseleave", idle);
  draw();
  drawActions();

  return () => {
    for (const [event, handler] of subscriptions) model.off(event, handler);
    banner.cleanup();
    root.removeEventListener("click", onClick);
    main.removeEventListener("mouseover", onOver);
    main.removeEventListener("mouseleave", idle);
    root.remove();
  };
}

export default { render };
