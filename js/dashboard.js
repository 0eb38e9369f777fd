// The feature dashboard: header, activation histogram (with axes), logit effects, top examples as one-line
// token strips centred on the token where the feature peaks and shaded by the feature (hover a token for its
// value; the context shown can be widened up to what the pass kept), collapsible quantile groups (empty
// ranges merged into one line), and similar features that open their own dashboard in the same widget.
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
//                max_context?: tokens kept each side of the focus (default: all)
//   context     number   two-way: tokens shown each side of an example's focus (the select widens it)
//   similar     [{feature, cosine, density, label, covered}]   density: fraction of corpus tokens (null: unknown)
//   offline_features  number[]   in an exported page, the features it can open; [] with a kernel
//   actions     [{name, label}]   extra buttons (e.g. the explorer's "steer"): a click sends the custom message
//                                 {kind: "action", name, feature} with the shown feature
//   error       string   shown in the banner
import "./lib/style.css";
import "./dashboard.css";
import { offsets, unpack } from "./lib/array.js";
import { countOf, niceTicks } from "./lib/axis.js";
import { format, scale } from "./lib/color.js";
import { h, replaceChildren } from "./lib/dom.js";
import { fontOf, shownText } from "./lib/glyphs.js";
import { widgetView } from "./lib/widget.js";

const DATA = ["header", "histogram", "logits", "examples", "similar", "offline_features"];
const CONTEXTS = [5, 10, 20, 40];

const percent = (x) => (x == null ? "unknown" : `${format(100 * x)}%`);
const number = (x) => (x == null ? "unknown" : format(x));

function headerView(header) {
  const stats = [
    ["density", percent(header.density)],
    ["max", number(header.max_activation)],
    ["mean when active", number(header.mean_activation)],
    ["corpus", countOf(header.n_tokens ?? 0, "token")],
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

/** Tick labels along an axis: `ticks` placed at `at(value)` percent (left or bottom). */
function axisLabels(cls, ticks, at, side, label) {
  return h("div", { class: cls }, ticks.map((value) =>
    h("span", { class: "sw-tick", dataset: { value }, style: { [side]: `${at(value)}%` } }, label(value))));
}

function histogramView(histogram) {
  const counts = unpack(histogram.counts).data;
  const edges = unpack(histogram.edges).data;
  let top = 0;
  for (const c of counts) top = Math.max(top, c);
  const lo = edges[0] ?? 0;
  const hi = edges[edges.length - 1] ?? 0;
  const bars = Array.from(counts, (count, i) => h("div", {
    class: "sw-bar-bin",
    dataset: { i, count },
    title: `[${format(edges[i])}, ${format(edges[i + 1])}): ${countOf(count, "token")}`,
    style: { height: `${top ? (100 * count) / top : 0}%` },
  }));
  const x = axisLabels("sw-hist-x", niceTicks(lo, hi, 4), (v) => (100 * (v - lo)) / (hi - lo), "left", format);
  const y = axisLabels("sw-hist-y", top ? niceTicks(0, top, 2) : [], (v) => (100 * v) / top, "bottom",
    (v) => v.toLocaleString("en-US"));
  return [
    h("h4", {}, "Activations (tokens where it fires)"),
    h("div", { class: "sw-hist-frame", "data-testid": "histogram-frame" }, y,
      h("div", { class: "sw-hist", "data-testid": "histogram" }, bars), h("span"), x),
    h("div", { class: "sw-hist-caption" }, "x: activation · y: tokens per bin"),
  ];
}

const DIRECT_NOTE = "The decoder direction read by the unembedding (through the final norm's gain), as SAEDashboard " +
  "shows it: it skips every layer after the SAE. The label's words after the arrow are read by steering, through " +
  "those layers, so the two can differ.";

const STEER_NOTE = "The first-order change of each token's logit per unit of steering strength when the feature's " +
  "decoder direction is added at every position, through every layer after the SAE (the model's steering Jacobian); " +
  "automatic labels name their words after the arrow by this measure.";

function logitList(title, items, testid, font, note = DIRECT_NOTE) {
  return h("section", { "data-testid": testid }, h("h4", { title: note }, title), h("div", { class: "sw-list" },
    items.length ? items.map(({ token, value }) => h("div", { class: "sw-logit" },
      h("span", { class: "sw-logit-token" }, shownText(token, font)), h("span", { class: "sw-fval" }, format(value))))
      : h("div", { class: "sw-empty" }, "none")));
}

/** A similar feature's density (fraction of corpus tokens where it fires) as a percentage; "–" when unknown. */
function densityCell(density) {
  const known = density != null && !Number.isNaN(density);
  return h("span", { class: "sw-fdens", "data-testid": "density",
    title: known ? `fires on ${percent(density)} of corpus tokens` : "density unknown" }, known ? percent(density) : "–");
}

function similarView(similar, offline, shown) {
  const buttons = similar.map(({ feature, cosine, density, label, covered }) => {
    const reachable = covered && (!offline.length || offline.includes(feature));
    const why = !covered ? "not in this pass" : reachable ? null : "not saved in this file";
    return h("button", { class: "sw-feat", type: "button", dataset: { feature }, disabled: !reachable || feature === shown, title: why },
      h("span", { class: "sw-fid" }, `#${feature}`), h("span", { class: "sw-flabel", title: label || null }, label),
      h("span", { class: "sw-fval", title: "decoder cosine" }, format(cosine)), densityCell(density));
  });
  return [h("h4", {}, "Similar features (decoder cosine, density)"),
    h("div", { class: "sw-list", "data-testid": "similar" }, buttons.length ? buttons : h("div", { class: "sw-empty" }, "none"))];
}

/**
 * One-line token strips of examples [first, first + count), each centred on its focus token (the tokens
 * before it right-aligned, those after it left-aligned, both clipped at the edges), with at most `context`
 * tokens each side; the spans made are kept in `spans` (for hovering). Python sends newlines as "↵".
 */
function strips(data, first, count, colour, spans, context, font) {
  return Array.from({ length: count }, (_, k) => {
    const e = first + k;
    const before = h("span", { class: "sw-strip-before" });
    const at = h("span", { class: "sw-strip-at" });
    const after = h("span", { class: "sw-strip-after" });
    const start = data.starts[e];
    const focus = start + data.focus[e];
    const from = Math.max(start, focus - context);
    const to = Math.min(data.starts[e + 1], focus + context + 1);
    for (let t = from; t < to; t++) {
      const value = data.values[t];
      const span = h("span", {
        class: `sw-tok${data.special[t] ? " sw-special" : ""}${t === focus ? " sw-focus" : ""}`,
        dataset: { t, example: e },
        title: Number.isNaN(value) ? "value unknown" : format(value),
        style: { backgroundColor: Number.isNaN(value) ? "transparent" : colour(value) },
      }, shownText(data.tokens[t], font));
      spans[t] = span;
      (t < focus ? before : t === focus ? at : after).appendChild(span);
    }
    return h("div", { class: "sw-strip", dataset: { example: e } },
      h("span", { class: "sw-strip-value" }, format(data.maxValues[e])),
      h("span", { class: "sw-strip-tokens" }, before, at, after));
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
  if (data.starts[lengths.length] !== data.tokens.length) throw new Error(`examples: lengths cover ${countOf(data.starts[lengths.length], "token")}, got ${data.tokens.length}`);
  return data;
}

/** Quantile groups with runs of empty ones merged: [{kind: "quantile", ...} | {kind: "empty", lower, upper}]. */
function mergeEmpty(groups) {
  const out = [];
  for (const group of groups) {
    const last = out[out.length - 1];
    if (group.kind !== "quantile" || group.tokens > 0) out.push(group);
    else if (last?.kind === "empty") last.upper = group.upper;
    else out.push({ kind: "empty", lower: group.lower, upper: group.upper });
  }
  return out;
}

function examplesView(examples, spans, context, font) {
  const data = readExamples(examples);
  const colour = scale(examples.limits ?? [0, 1]);
  const sections = mergeEmpty(examples.groups ?? []).map((group) => {
    if (group.kind === "empty") {
      return h("div", { class: "sw-group sw-group-empty", "data-testid": "empty-groups" },
        `[${format(group.lower)}, ${format(group.upper)}) · no token in this range`);
    }
    const body = strips(data, group.first, group.count, colour, spans, context, font);
    if (group.kind === "top") {
      return h("section", { "data-testid": "top-examples" }, h("h4", {}, "Top activations"),
        body.length ? body : h("div", { class: "sw-empty" }, "It never fires on this corpus"));
    }
    const title = `[${format(group.lower)}, ${format(group.upper)}) · ${countOf(group.tokens, "token")} (${percent(group.fraction)})`;
    return h("details", { class: "sw-group", "data-testid": "quantile-group" },
      h("summary", {}, title), body.length ? body : h("div", { class: "sw-empty" }, "no example kept"));
  });
  return { data, sections };
}

/** The context choices up to what the pass kept (`max_context`), and the select showing `context`. */
function contextSelect(examples, context) {
  const kept = examples?.max_context ?? Infinity;
  const choices = CONTEXTS.filter((n) => n <= kept);
  if (Number.isFinite(kept) && !choices.includes(kept)) choices.push(kept);
  if (!choices.includes(context)) choices.push(context);
  choices.sort((a, b) => a - b);
  const select = h("select", { "data-testid": "context", title: "tokens shown each side of the peak" },
    choices.map((n) => h("option", { value: n }, `±${n} tokens`)));
  select.value = String(context);
  return h("label", { class: "sw-dash-context" }, "context ", select);
}

function render({ model, el }) {
  const view = widgetView(model);
  const back = h("button", { class: "sw-chip", type: "button", dataset: { action: "back" }, "data-testid": "back", hidden: true }, "← back");
  const status = h("span", { "data-testid": "status" });
  const actions = h("span", { class: "sw-dash-actions" });
  const contextBox = h("span");
  const header = h("div", { class: "sw-dash-header", "data-testid": "dash-header" });
  const side = h("div", { class: "sw-side" });
  const main = h("div", { class: "sw-dash-examples", "data-testid": "examples" });
  const root = h("div", { class: "scopewidgets sw-dash", "data-testid": "dashboard" },
    view.banner.el, h("div", { class: "sw-bar" }, back, status, contextBox, actions), header, h("div", { class: "sw-body" }, main, side));
  view.mount(el, root);

  const history = [];
  let data = null;
  let spans = [];
  const shown = () => model.get("header")?.feature;
  const idle = () => {
    const wanted = model.get("feature");
    status.textContent = wanted !== shown() ? `Opening feature #${wanted}…` : "Hover a token for its activation";
    back.hidden = !history.length;
  };

  const drawExamples = () => {
    const context = model.get("context") ?? 5;
    spans = [];
    const shownExamples = examplesView(model.get("examples"), spans, context, fontOf(main));
    data = shownExamples.data;
    replaceChildren(main, shownExamples.sections);
    replaceChildren(contextBox, contextSelect(model.get("examples"), context));
  };
  const draw = () => {
    const offline = model.get("offline_features") ?? [];
    replaceChildren(header, headerView(model.get("header") ?? {}));
    const logits = model.get("logits") ?? { top: [], bottom: [] };
    replaceChildren(side, h("section", {}, histogramView(model.get("histogram"))),
      ...(logits.steer_top?.length ? [
        logitList("Promoted by steering", logits.steer_top, "steer-top-logits", fontOf(side), STEER_NOTE),
        logitList("Suppressed by steering", logits.steer_bottom ?? [], "steer-bottom-logits", fontOf(side), STEER_NOTE),
      ] : []),
      logitList("Promoted tokens (direct logit effect)", logits.top, "top-logits", fontOf(side)),
      logitList("Suppressed tokens (direct)", logits.bottom, "bottom-logits", fontOf(side)),
      h("section", {}, similarView(model.get("similar") ?? [], offline, shown())));
    drawExamples();
    idle();
  };
  // One redraw per action: a new feature changes six traits, a wider context one; each draws once.
  const redraw = view.coalesce((reasons) => (reasons.has("data") ? draw() : drawExamples()));
  const drawActions = () => {
    replaceChildren(actions, (model.get("actions") ?? []).map(({ name, label }) => h("button",
      { class: "sw-chip", type: "button", dataset: { command: name }, "data-testid": `action-${name}` }, label ?? name)));
  };

  const open = (feature, remember) => {
    if (remember) history.push(shown());
    model.set("feature", feature);
    model.save_changes();
    idle();
  };
  view.listen(root, "click", (event) => {
    if (event.target.closest("[data-action=back]") && history.length) return open(history.pop(), false);
    const command = event.target.closest("[data-command]");
    if (command) return model.send({ kind: "action", name: command.dataset.command, feature: shown() });
    const button = event.target.closest(".sw-feat");
    if (button && !button.disabled) open(Number(button.dataset.feature), true);
  });
  view.listen(contextBox, "change", (event) => {
    model.set("context", Number(event.target.value));
    model.save_changes();
  });
  view.listen(main, "mouseover", (event) => {
    const token = event.target.closest(".sw-tok");
    if (!token || !data) return;
    const t = Number(token.dataset.t);
    const e = Number(token.dataset.example);
    const value = data.values[t];
    const where = `seq ${data.seqIndex[e]}, position ${data.position[e] - data.focus[e] + (t - data.starts[e])}`;
    status.textContent = `“${data.tokens[t]}” ${Number.isNaN(value) ? "value unknown" : format(value)} · ${where}`;
  });
  view.listen(main, "mouseleave", idle);

  for (const name of DATA) view.on(`change:${name}`, () => redraw("data"));
  view.on("change:context", () => redraw("context"));
  view.on("change:feature", idle);
  view.on("change:actions", drawActions);
  view.guard(draw)();
  view.guard(drawActions)();
  return view.cleanup;
}

export default { render };
