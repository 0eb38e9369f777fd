// The steering panel: prompt, one slider per feature (a power curve: useful strengths span the track), settings, Generate; the default and steered
// completions side by side, streamed token by token (custom messages), then drawn from the `result` trait
// with the differing tokens marked. Python decides captions, densities, ranges, code and every token's text.
// controls: [{feature, caption, limit, density}] (density: fraction of corpus tokens, null when unknown).
import "./lib/style.css";
import "./steering.css";
import { countOf } from "./lib/axis.js";
import { format } from "./lib/color.js";
import { h, replaceChildren } from "./lib/dom.js";
import { fontOf, shownText } from "./lib/glyphs.js";
import { widgetView } from "./lib/widget.js";

const TICKS = 1000; // slider resolution per side

const HINT = "Press Generate to see the default and the steered completions here";

/** Strength at slider position p in [-1, 1]: sign(p) * limit * |p| ** power (as scopewidgets._steer_controls). */
export function sliderValue(p, limit, power) {
  if (!p) return 0;
  return Math.sign(p) * limit * Math.abs(p) ** power;
}

/** Inverse of sliderValue, clipped to [-1, 1]. */
export function sliderPosition(value, limit, power) {
  if (!(limit > 0) || !value) return 0;
  return Math.sign(value) * Math.min(Math.abs(value) / limit, 1) ** (1 / power);
}

/** A strength as the panel keeps it: 3 significant digits (as scopewidgets.steering.significant); -0 is 0. */
export function roundStrength(value) {
  return Number(value.toPrecision(3)) + 0;
}

/** Short text for a strength that a number box reads back: 3 significant digits, whole digits kept. */
export function formatStrength(value) {
  return String(roundStrength(value));
}

function commit(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

function settingsRow(model) {
  const select = (name, options) =>
    h("select", { "data-testid": name, onchange: (e) => commit(model, name, e.target.value) },
      options.map((o) => h("option", { value: o }, o)));
  const number = (name, attrs, parse) =>
    h("input", { type: "number", "data-testid": name, ...attrs,
      onchange: (e) => commit(model, name, parse(e.target.value)) });
  const live = h("input", { type: "checkbox", "data-testid": "live",
    onchange: (e) => commit(model, "live", e.target.checked) });
  const fields = {
    method: select("method", ["add", "add_scaled", "clamp", "ablate"]),
    positions: select("positions", ["all", "prompt", "generated"]),
    max_new_tokens: number("max_new_tokens", { min: 1, step: 1, style: { width: "5em" } }, (v) => parseInt(v, 10)),
    temperature: number("temperature", { min: 0, step: 0.1, style: { width: "5em" } }, Number),
    seed: number("seed", { min: 0, step: 1, style: { width: "6em" } }, (v) => parseInt(v, 10)),
    live,
  };
  const label = (text, el) => h("label", { class: "sw-steer-field" }, text, el);
  const el = h("div", { class: "sw-steer-settings" },
    label("method", fields.method), label("positions", fields.positions),
    label("tokens", fields.max_new_tokens), label("temperature", fields.temperature),
    label("seed", fields.seed), label("live", fields.live));
  const sync = () => {
    for (const [name, input] of Object.entries(fields)) {
      if (name === "live") input.checked = !!model.get("live");
      else if (document.activeElement !== input) input.value = String(model.get(name));
    }
  };
  return { el, sync };
}

/** A feature's density (fraction of corpus tokens where it fires) as a percentage; "–" when unknown. */
function densityCell(density, key) {
  const known = density != null && !Number.isNaN(density);
  const text = known ? `${format(100 * density)}%` : "–";
  return h("span", { class: "sw-fdens", "data-testid": `density-${key}`,
    title: known ? `density: fires on ${text} of corpus tokens` : "density unknown" }, text);
}

function featureRow(model, control, onSettle) {
  const key = String(control.feature);
  const power = model.get("power");
  const strength = () => Number(model.get("strengths")[key] ?? 0);
  const ablate = model.get("method") === "ablate";
  const slider = h("input", { type: "range", min: -TICKS, max: TICKS, step: 1, "data-testid": `slider-${key}`,
    disabled: ablate || !(control.limit > 0) });
  const value = h("input", { type: "number", class: "sw-steer-value", "data-testid": `value-${key}`,
    step: "any", disabled: ablate });
  const setStrength = (v) => commit(model, "strengths", { ...model.get("strengths"), [key]: roundStrength(v) });
  slider.addEventListener("input", () => {
    value.value = formatStrength(sliderValue(slider.value / TICKS, control.limit, power));
  });
  slider.addEventListener("change", () => {
    setStrength(sliderValue(slider.value / TICKS, control.limit, power));
    onSettle();
  });
  value.addEventListener("change", () => {
    const v = Number(value.value);
    if (Number.isFinite(v)) {
      setStrength(v);
      onSettle();
    }
  });
  const remove = h("button", { class: "sw-steer-remove", title: "remove", "data-testid": `remove-${key}`,
    onclick: () => commit(model, "features", model.get("features").filter((f) => String(f) !== key)) }, "×");
  const sync = () => {
    const v = strength();
    slider.value = String(Math.round(sliderPosition(v, control.limit, power) * TICKS));
    if (document.activeElement !== value) value.value = formatStrength(v);
  };
  sync();
  const limit = control.limit > 0 ? formatStrength(control.limit) : "";
  const track = h("span", { class: "sw-steer-track" }, slider,
    h("span", { class: "sw-steer-ticks", "data-testid": `ticks-${key}` },
      h("span", {}, limit && `-${limit}`), h("span", {}, limit && "0"), h("span", {}, limit)));
  const el = h("div", { class: "sw-steer-feature", dataset: { feature: key } },
    h("span", { class: "sw-steer-id" }, `#${key}`), h("span", { class: "sw-steer-caption", title: control.caption }, control.caption),
    densityCell(control.density, key), track, value, remove);
  return { el, sync };
}

function column(name) {
  const generated = h("span", { class: "sw-steer-generated" });
  const prompt = h("span", { class: "sw-steer-prompt" });
  const hint = h("span", { class: "sw-steer-hint", "data-testid": "hint" }, HINT); // until something is drawn
  const el = h("div", { class: "sw-steer-col", "data-testid": name },
    h("div", { class: "sw-steer-head" }, name), h("div", { class: "sw-steer-text" }, hint, prompt, generated));
  return { el, prompt, generated, hint };
}

function drawResult(columns, result) {
  const differs = result.differs ?? [];
  for (const [name, col] of Object.entries(columns)) {
    const font = fontOf(col.generated);
    col.hint.hidden = true;
    col.prompt.textContent = shownText((result.prompt_tokens ?? []).join(""), font);
    replaceChildren(col.generated, (result[`${name}_tokens`] ?? []).map((token, i) =>
      h("span", { class: differs[i] ? "sw-steer-tok sw-steer-diff" : "sw-steer-tok" }, shownText(token, font))));
  }
}

function render({ model, el }) {
  const view = widgetView(model);
  const promptBox = h("textarea", { class: "sw-steer-promptbox", rows: 2, "data-testid": "prompt",
    placeholder: "A prompt to complete, e.g. I think that",
    onchange: (e) => commit(model, "prompt", e.target.value) });
  const settings = settingsRow(model);
  const features = h("div", { class: "sw-steer-features", "data-testid": "features" });
  const addInput = h("input", { type: "number", min: 0, step: 1, placeholder: "feature", "data-testid": "add-input",
    style: { width: "7em" } });
  const add = () => {
    const f = parseInt(addInput.value, 10);
    if (Number.isInteger(f) && !model.get("features").includes(f)) commit(model, "features", [...model.get("features"), f]);
    addInput.value = "";
  };
  const generate = () => model.send({ type: "generate" });
  const status = h("span", { class: "sw-steer-status", "data-testid": "status" });
  const controls = h("div", { class: "sw-steer-controls" }, promptBox, settings.el, features,
    h("div", { class: "sw-steer-actions" }, addInput, h("button", { onclick: add, "data-testid": "add" }, "add feature"),
      h("button", { class: "sw-steer-generate", onclick: generate, "data-testid": "generate" }, "Generate"), status));
  const columns = { default: column("default"), steered: column("steered") };
  const code = h("pre", { class: "sw-steer-code", "data-testid": "code" });
  const copy = h("button", { "data-testid": "copy", onclick: () => {
    navigator.clipboard?.writeText(model.get("code")).then(() => { copy.textContent = "copied"; }, () => {});
  } }, "copy");
  const summary = h("div", { class: "sw-steer-summary", "data-testid": "summary" });
  const root = h("div", { class: "scopewidgets sw-steering", "data-testid": "steering" }, view.banner.el, controls, summary,
    h("div", { class: "sw-steer-output" }, columns.default.el, columns.steered.el),
    h("details", { class: "sw-steer-codebox" }, h("summary", {}, "copy as code"), code, copy));
  view.mount(el, root);

  let rows = [];
  let streaming = null; // id of the generation whose tokens are arriving
  const onSettle = () => { if (model.get("live") || model.get("running")) generate(); };
  const drawControls = view.guard(() => {
    controls.hidden = !model.get("interactive");
    if (document.activeElement !== promptBox) promptBox.value = model.get("prompt");
    settings.sync();
    rows = (model.get("controls") ?? []).map((c) => featureRow(model, c, onSettle));
    replaceChildren(features, rows.map((r) => r.el));
  });
  const drawStrengths = view.guard(() => rows.forEach((r) => r.sync()));
  const drawSummary = view.guard(() => { summary.textContent = model.get("summary") ?? ""; });
  const drawCode = view.guard(() => { code.textContent = model.get("code"); copy.textContent = "copy"; });
  const drawStatus = view.guard(() => {
    const result = model.get("result") ?? {};
    status.textContent = model.get("running") ? "generating…"
      : result.seconds != null ? `${countOf(result.default_tokens.length, "token")} in ${result.seconds.toFixed(1)} s` : "";
  });
  const onResult = view.guard(() => {
    const result = model.get("result") ?? {};
    if (result.id != null && result.id === model.get("generation")) {
      streaming = null;
      drawResult(columns, result);
    }
    drawStatus();
  });
  const onMessage = view.guard((msg) => {
    if (msg.id !== model.get("generation")) return; // a superseded generation: never drawn
    if (msg.kind === "start") {
      streaming = msg.id;
      for (const col of Object.values(columns)) {
        col.hint.hidden = true;
        col.prompt.textContent = model.get("prompt");
        replaceChildren(col.generated);
      }
    } else if (msg.kind === "token" && streaming === msg.id) {
      for (const name of ["default", "steered"]) {
        const col = columns[name];
        if (msg[name] != null) col.generated.append(h("span", { class: "sw-steer-tok" }, shownText(msg[name], fontOf(col.generated))));
      }
    }
  });
  // One redraw of the controls per action: a new method changes controls, method and strengths together.
  const redrawControls = view.coalesce(drawControls);
  for (const name of ["controls", "method", "interactive", "prompt"]) view.on(`change:${name}`, () => redrawControls());
  for (const name of ["max_new_tokens", "temperature", "seed", "positions", "live"]) view.on(`change:${name}`, settings.sync);
  view.on("change:strengths", drawStrengths);
  view.on("change:code", drawCode);
  view.on("change:summary", drawSummary);
  view.on("change:result", onResult);
  view.on("change:running", drawStatus);
  view.on("msg:custom", onMessage);
  drawControls();
  drawCode();
  drawSummary();
  onResult();
  return view.cleanup;
}

export default { render, sliderValue, sliderPosition, roundStrength, formatStrength };
