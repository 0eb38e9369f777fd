// The token-activations view: tokens in reading order coloured by one feature (or each token's strongest),
// the features most active on the text, and the top features of the hovered or pinned token.
//
// Traits (set by scopewidgets/widgets/activations.py; Python computes, this module draws):
//   tokens          string[]   display text of every token, rows concatenated (Python made whitespace visible)
//   row_lengths     number[]   tokens per row (one row per text)
//   special         number[]   positions of special tokens (BOS), drawn dim
//   feature_table   {buffer, dtype: int32}                 distinct features named by the entries
//   topk_features   {buffer, dtype: uint16, shape: [nnz]}  per token, slots into feature_table, strongest first
//   topk_values     {buffer, dtype: uint8, shape: [nnz]}   value / token's strongest, in 1/255 steps
//   topk_scale      {buffer, dtype: float32, shape: [n]}   the largest of each token's listed values (exact)
//   topk_counts     {buffer, dtype: uint8, shape: [n]}     entries per token (values > 0 only)
//   (without feature_table/topk_scale, topk_features are feature ids and topk_values plain float32)
//   (each token's entries come in the order Python ranked them: most specific first by default)
//   top_features    {feature, max, count, density, score}[]   the side list, in Python's ranking order
//   color_values    {buffer, dtype: float32, shape: [n]}   default colouring: each token's strongest feature
//                                                          that is not hidden (reserved ones unless shown)
//   color_features  {buffer, dtype: int32, shape: [n]}     which feature that is (-1: none)
//   reserved        number[]   the SAE's reserved features; the "reserved" toggle shows them
//   include_reserved  boolean  two-way: whether lists and colours include reserved features
//   densities       {[feature]: density}   density of every feature the lists name (fraction of corpus tokens)
//   labels          {[feature]: label}         labels of the side list's features; the labels of a hovered
//                                              token's features are asked for with model.send({kind: "labels",
//                                              features}) and arrive as a custom message {kind: "labels", labels}
//   color_limits    [lo, hi]   limits of color_values (used when no feature is selected)
//   selected_feature  number | null            two-way: the feature that colours the tokens
//   selected_column {feature, limits, buffer, dtype: float32, shape: [n]}   its exact values, sent by Python
//   error           string     shown in the banner
// Until Python's column for a new selection arrives (or with no kernel), tokens are coloured from the
// top-k lists and the status says so.
import "./lib/style.css";
import { offsets, unpack } from "./lib/array.js";
import { format, scale } from "./lib/color.js";
import { h, replaceChildren } from "./lib/dom.js";
import { fontOf, shownText } from "./lib/glyphs.js";
import { widgetView } from "./lib/widget.js";

const DATA_TRAITS = ["tokens", "row_lengths", "special", "feature_table", "topk_features", "topk_values", "topk_scale", "topk_counts", "color_values", "color_features"];

function readData(model) {
  const tokens = model.get("tokens") ?? [];
  const counts = unpack(model.get("topk_counts")).data;
  if (counts.length !== tokens.length) throw new Error(`topk_counts has ${counts.length} entries for ${tokens.length} tokens`);
  const starts = offsets(counts);
  const features = decodeFeatures(unpack(model.get("topk_features")).data, model.get("feature_table"));
  const values = decodeValues(unpack(model.get("topk_values")).data, model.get("topk_scale"), starts);
  const { strongest, strongestFeature } = defaultColour(model, tokens.length, features, values, starts);
  return { tokens, features, values, starts, strongest, strongestFeature, rowLengths: model.get("row_lengths") ?? [tokens.length] };
}

/** Each token's default colour value and feature: Python's color_values / color_features, or (older
 * states without them) the largest of its listed entries. */
function defaultColour(model, n, features, values, starts) {
  const payload = model.get("color_values");
  if (payload && payload.buffer != null) {
    const strongest = unpack(payload).data;
    const strongestFeature = unpack(model.get("color_features")).data;
    if (strongest.length !== n || strongestFeature.length !== n) {
      throw new Error(`color_values/color_features have ${strongest.length}/${strongestFeature.length} entries for ${n} tokens`);
    }
    return { strongest, strongestFeature };
  }
  const strongest = new Float32Array(n);
  const strongestFeature = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    for (let j = starts[i]; j < starts[i + 1]; j++) {
      if (values[j] > strongest[i]) [strongest[i], strongestFeature[i]] = [values[j], features[j]];
    }
  }
  return { strongest, strongestFeature };
}

/** Entries name slots of a feature table (compact form) or features directly. */
function decodeFeatures(slots, tablePayload) {
  if (!tablePayload || tablePayload.buffer == null) return slots;
  const table = unpack(tablePayload).data;
  const out = new Int32Array(slots.length);
  for (let j = 0; j < slots.length; j++) {
    if (slots[j] >= table.length) throw new Error(`feature slot ${slots[j]} is outside a table of ${table.length}`);
    out[j] = table[slots[j]];
  }
  return out;
}

/** uint8 fractions of the largest of each token's listed values (255: that value, exact), or plain values. */
function decodeValues(raw, scalePayload, starts) {
  if (!scalePayload || scalePayload.buffer == null) return raw;
  const scale = unpack(scalePayload).data;
  const out = new Float32Array(raw.length);
  for (let i = 0; i < scale.length; i++) {
    for (let j = starts[i]; j < starts[i + 1]; j++) out[j] = raw[j] === 255 ? scale[i] : (raw[j] / 255) * scale[i];
  }
  return out;
}

function peak(values) {
  let top = 1e-9;
  for (const v of values) if (v > top) top = v;
  return top;
}

/** The values that colour the tokens now, their limits, and whether they are exact. */
function colouring(model, data) {
  const feature = model.get("selected_feature");
  if (feature == null) return { feature, values: data.strongest, limits: model.get("color_limits") ?? [0, 1], exact: true };
  const column = model.get("selected_column");
  if (column && column.feature === feature) return { feature, values: unpack(column).data, limits: column.limits, exact: true };
  const values = new Float32Array(data.tokens.length);
  for (let i = 0; i < values.length; i++) {
    for (let j = data.starts[i]; j < data.starts[i + 1]; j++) if (data.features[j] === feature) values[i] = data.values[j];
  }
  return { feature, values, limits: [0, peak(values)], exact: false };
}

/** A density (fraction of corpus tokens where a feature fires) as a percentage; "" when unknown. */
function densityText(density) {
  return density == null || Number.isNaN(density) ? "" : `${format(100 * density)}%`;
}

function featureButton(model, label, feature, value, count, density) {
  const title = density == null ? null : `fires on ${densityText(density)} of corpus tokens`;
  return h(
    "button",
    { class: "sw-feat", type: "button", dataset: { feature }, "aria-pressed": String(model.get("selected_feature") === feature) },
    h("span", { class: "sw-fid" }, `#${feature}`),
    h("span", { class: "sw-flabel", title: label || null }, label),
    h("span", { class: "sw-fval" }, format(value)),
    h("span", { class: "sw-fdens", "data-testid": "density", title }, densityText(density)),
    h("span", { class: "sw-fcount" }, count == null ? "" : `${count}×`),
  );
}

// One block per text line (split after tokens that end in a newline): small blocks lay out faster than one
// long inline run, and blocks scrolled out of view skip layout and paint (content-visibility in the CSS).
function tokenRows(data, special, font) {
  const fragment = document.createDocumentFragment();
  let i = 0;
  data.rowLengths.forEach((length, r) => {
    const numbered = data.rowLengths.length > 1;
    const row = h("div", { class: numbered ? "sw-row sw-numbered" : "sw-row", dataset: { row: r } });
    if (numbered) row.appendChild(h("span", { class: "sw-rowlabel" }, String(r + 1)));
    let line = row.appendChild(h("div", { class: "sw-line" }));
    for (const end = i + length; i < end; i++) {
      const span = document.createElement("span");
      span.className = special.has(i) ? "sw-tok sw-special" : "sw-tok";
      span.dataset.i = i;
      span.textContent = shownText(data.tokens[i], font); // a glyph no font has: its code point
      line.appendChild(span);
      if (data.tokens[i].endsWith("\n") && i < end - 1) line = row.appendChild(h("div", { class: "sw-line" }));
    }
    fragment.appendChild(row);
  });
  return fragment;
}

function render({ model, el }) {
  const view = widgetView(model);
  const status = h("span", { "data-testid": "status" });
  const clear = h("button", { class: "sw-chip", type: "button", dataset: { action: "clear" }, "data-testid": "clear" }, "clear ×");
  const reservedBox = h("input", { type: "checkbox", "data-testid": "include-reserved" });
  const reservedToggle = h("label", { class: "sw-chip", title: "Reserved features fire on nearly every token; they are hidden by default" },
    reservedBox, " show reserved");
  const tokensEl = h("div", { class: "sw-tokens", "data-testid": "tokens" });
  const detailTitle = h("h4", { "data-testid": "token-title" });
  const detailList = h("div", { class: "sw-list", "data-testid": "token-detail" });
  const featureList = h("div", { class: "sw-list", "data-testid": "feature-list" });
  const listTitle = h("h4", { "data-testid": "feature-list-title" });
  const root = h(
    "div",
    { class: "scopewidgets sw-acts", "data-testid": "token-view" },
    view.banner.el,
    h("div", { class: "sw-bar" }, status, clear, reservedToggle),
    h("div", { class: "sw-body" }, tokensEl, h("div", { class: "sw-side" },
      h("section", {}, detailTitle, detailList),
      h("section", {}, listTitle, featureList))),
  );
  view.mount(el, root);

  let data = null;
  let spans = [];
  let current = null;
  let pinned = null;
  let shown = null;
  const labels = new Map();
  const requested = new Set();
  const labelOf = (feature) => labels.get(feature) ?? "";
  const densityOf = (feature) => (model.get("densities") ?? {})[feature];
  const mergeLabels = (table) => {
    for (const [feature, label] of Object.entries(table ?? {})) labels.set(Number(feature), label);
  };
  const requestLabels = (features) => {
    const missing = features.filter((f) => !labels.has(f) && !requested.has(f));
    if (!missing.length) return;
    for (const f of missing) requested.add(f);
    model.send({ kind: "labels", features: missing });
  };
  mergeLabels(model.get("labels"));

  const showToken = (i) => {
    shown = i;
    if (i == null || !data) {
      detailTitle.textContent = "Hover a token to see its features; click to pin";
      replaceChildren(detailList);
      return;
    }
    const where = data.rowLengths.length > 1 ? ` · text ${Number(spans[i].closest(".sw-row").dataset.row) + 1}` : "";
    const colouredBy = current.feature ?? (data.strongestFeature[i] >= 0 ? data.strongestFeature[i] : null);
    const selected = colouredBy == null ? "" : ` · colour: #${colouredBy} = ${format(current.values[i])}`;
    detailTitle.textContent = `Token ${i} “${data.tokens[i]}”${where}${selected}${pinned === i ? " (pinned)" : ""}`;
    const features = Array.from(data.features.subarray(data.starts[i], data.starts[i + 1]));
    requestLabels(features);
    const items = features.map((f, j) => featureButton(model, labelOf(f), f, data.values[data.starts[i] + j], null, densityOf(f)));
    replaceChildren(detailList, items.length ? items : h("div", { class: "sw-empty" }, "No feature fires on this token"));
  };

  const drawFeatureList = () => {
    const top = model.get("top_features") ?? [];
    const highest = peak(top.map((f) => f.max));
    listTitle.textContent = model.get("rank") === "activation" ? "Features most active here" : "Features specific to this text";
    listTitle.title = model.get("rank") === "activation" ? "" :
      "Ordered by activation relative to the feature's typical activation, weighted by how rare the feature is; % = density";
    replaceChildren(featureList, top.length ? top.map((f) => {
      const button = featureButton(model, labelOf(f.feature), f.feature, f.max, f.count, f.density);
      button.appendChild(h("span", { class: "sw-fbar", style: { width: `${(100 * f.max) / highest}%` } }));
      return button;
    }) : h("div", { class: "sw-empty" }, "No feature fires on this text"));
  };

  const recolour = view.guard(() => {
    if (!data) return; // the data failed to load: its error stays in the banner
    current = colouring(model, data);
    const colour = scale(current.limits);
    for (let i = 0; i < spans.length; i++) spans[i].style.backgroundColor = colour(current.values[i]);
    const label = current.feature == null ? "" : labelOf(current.feature);
    const reserved = model.get("reserved") ?? [];
    const withReserved = Boolean(model.get("include_reserved"));
    reservedBox.checked = withReserved;
    reservedToggle.hidden = reserved.length === 0;
    const without = reserved.length && !withReserved ? `, reserved ${reserved.map((f) => `#${f}`).join(" ")} left out` : "";
    status.textContent = current.feature == null
      ? `Colour: each token's strongest feature${without} (hover a token to see which; scale 0–${format(current.limits[1])})`
      : `Colour: feature #${current.feature}${label ? ` ${label}` : ""} (scale 0–${format(current.limits[1])})` +
        (current.exact ? "" : " · from each token's top-k; exact values need the kernel");
    clear.hidden = current.feature == null;
    for (const button of root.querySelectorAll(".sw-feat")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.feature) === current.feature));
    }
    showToken(shown);
  });

  const rebuild = view.guard(() => {
    data = readData(model);
    pinned = shown = null;
    tokensEl.textContent = "";
    tokensEl.appendChild(data.tokens.length ? tokenRows(data, new Set(model.get("special") ?? []), fontOf(tokensEl)) : h("div", { class: "sw-empty" }, "No tokens"));
    spans = Array.from(tokensEl.querySelectorAll(".sw-tok"));
    drawFeatureList();
    recolour();
  });

  const select = (feature) => {
    model.set("selected_feature", feature);
    model.save_changes();
  };
  const onClick = view.guard((event) => {
    const target = event.target;
    if (target.closest("[data-action=clear]")) return select(null);
    const button = target.closest(".sw-feat");
    if (button) {
      const feature = Number(button.dataset.feature);
      return select(model.get("selected_feature") === feature ? null : feature);
    }
    const token = target.closest(".sw-tok");
    if (token) {
      if (pinned != null) spans[pinned]?.classList.remove("sw-pinned");
      const i = Number(token.dataset.i);
      pinned = pinned === i ? null : i;
      if (pinned != null) token.classList.add("sw-pinned");
      showToken(i);
    }
  });
  const onOver = view.guard((event) => {
    const token = event.target.closest(".sw-tok");
    if (token && pinned == null) showToken(Number(token.dataset.i));
  });
  const onLeave = view.guard(() => showToken(pinned));
  const onToggle = view.guard(() => {
    model.set("include_reserved", reservedBox.checked);
    model.save_changes();
  });

  // One redraw per action: new data changes ten traits, a selection three (feature, column, limits).
  const redraw = view.coalesce((reasons) => {
    if (reasons.has("data")) return rebuild();
    if (reasons.has("list")) drawFeatureList();
    recolour();
  });
  for (const name of DATA_TRAITS) view.on(`change:${name}`, () => redraw("data"));
  for (const name of ["top_features", "densities", "rank"]) view.on(`change:${name}`, () => redraw("list"));
  view.on("change:labels", () => {
    mergeLabels(model.get("labels"));
    redraw("list");
  });
  view.on("msg:custom", (message) => {
    if (message?.kind !== "labels") return;
    mergeLabels(message.labels);
    showToken(shown);
  });
  for (const name of ["selected_feature", "selected_column", "color_limits", "include_reserved", "reserved"]) {
    view.on(`change:${name}`, () => redraw("colour"));
  }
  view.listen(root, "click", onClick);
  view.listen(tokensEl, "mouseover", onOver);
  view.listen(tokensEl, "mouseleave", onLeave);
  view.listen(reservedBox, "change", onToggle);
  rebuild();
  return view.cleanup;
}

export default { render };
