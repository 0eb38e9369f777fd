// Fake-model tests of js/steering.js (run by tests/browser/test_js.py).
// Each test gets { widget, el, fakeModel, array, assert, assertEqual, ... } (tests/js/harness.js).
// The slider arithmetic is reached through the module's default export (the test file cannot import).

function state(extra = {}) {
  return {
    prompt: "The Eiffel Tower is in",
    method: "add",
    positions: "all",
    max_new_tokens: 8,
    temperature: 0,
    seed: 0,
    live: false,
    features: [12, 7],
    strengths: { 12: 0, 7: 30 },
    controls: [
      { feature: 12, caption: "<b>Paris</b> & co", limit: 300, density: 0.0042 },
      { feature: 7, caption: "↑ ' the'", limit: 300, density: null },
    ],
    power: 2,
    interactive: true,
    generation: 0,
    running: false,
    result: {},
    code: "scope.steer('The Eiffel Tower is in', {12: 0.0, 7: 30.0}, method='add')",
    error: "",
    ...extra,
  };
}

const generated = (el, name) =>
  [...el.querySelectorAll(`[data-testid=${name}] .sw-steer-generated .sw-steer-tok`)].map((t) => t.textContent);

function moveSlider(el, feature, position) {
  const slider = el.querySelector(`[data-testid=slider-${feature}]`);
  slider.value = String(Math.round(position * 1000));
  slider.dispatchEvent(new Event("input"));
  slider.dispatchEvent(new Event("change"));
}

export async function test_slider_mapping_matches_python({ widget, assert, assertEqual }) {
  const { sliderValue, sliderPosition } = widget;
  // Python: slider_value(-0.5, 600) = -150.0, slider_value(1, 600) = 600
  assertEqual(sliderValue(-0.5, 600, 2), -150, "value at -0.5");
  assertEqual(sliderValue(1, 600, 2), 600, "value at the end");
  assertEqual(sliderValue(0, 600, 2), 0, "zero in the middle");
  for (const p of [-1, -0.37, 0.01, 0.5, 0.99]) {
    assert(Math.abs(sliderPosition(sliderValue(p, 2, 2), 2, 2) - p) < 1e-9, `round trip at ${p}`);
  }
  // the strengths that steer the demo (100-300 with add) span a good part of the track, not its last 15%
  const travel = sliderPosition(300, 600, 2) - sliderPosition(100, 600, 2);
  assert(travel > 0.25 && sliderPosition(100, 600, 2) < 0.5, `100..300 covers ${travel} of a half track`);
}

export async function test_strength_formatters_over_magnitudes({ widget, assertEqual }) {
  const values = [1e-4, -1.23456e-4, 0.0123456, 0.5, -1, 2.5, 24, 89.97226134018706, -240, 300, 599.9, 12345.6, 1e6, -0];
  assertEqual(values.map(widget.roundStrength), [1e-4, -0.000123, 0.0123, 0.5, -1, 2.5, 24, 90, -240, 300, 600, 12300,
    1e6, 0], "3 significant digits, whole digits kept");
  assertEqual(values.map(widget.formatStrength), ["0.0001", "-0.000123", "0.0123", "0.5", "-1", "2.5", "24", "90", "-240",
    "300", "600", "12300", "1000000", "0"], "text a number box reads back");
}

export async function test_renders_one_slider_per_feature_with_captions_as_text(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state()), el });
  const rows = [...el.querySelectorAll(".sw-steer-feature")];
  assertEqual(rows.map((r) => r.dataset.feature), ["12", "7"], "rows in order");
  assertEqual(rows[0].querySelector(".sw-steer-caption").textContent, "<b>Paris</b> & co", "caption text");
  assert(el.querySelector(".sw-steer-caption b") === null, "a caption is text, not HTML");
  assertEqual(el.querySelector("[data-testid=value-7]").value, "30", "strength shown");
  const position = Number(el.querySelector("[data-testid=slider-7]").value) / 1000;
  assert(Math.abs(widget.sliderValue(position, 300, 2) - 30) < 0.5, "slider placed at the strength");
  assertEqual([...el.querySelectorAll("[data-testid=ticks-7] span")].map((s) => s.textContent), ["-300", "0", "300"],
    "tick labels at the limits");
  const hint = el.querySelector("[data-testid=steered] [data-testid=hint]");
  assert(!hint.hidden && hint.textContent.startsWith("Press Generate"), "an empty completion box shows a hint");
  assertEqual(el.querySelector("[data-testid=code]").textContent, state().code, "code shown");
}

export async function test_each_feature_shows_its_density_beside_its_caption(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state());
  widget.render({ model, el });
  const density = (f) => el.querySelector(`[data-testid=density-${f}]`);
  assertEqual([density(12).textContent, density(7).textContent], ["0.42%", "–"], "density, '–' when unknown");
  assertEqual([density(12).title, density(7).title], ["density: fires on 0.42% of corpus tokens", "density unknown"],
    "titles");
  const row = el.querySelector(".sw-steer-feature[data-feature='12']");
  assertEqual([...row.children].slice(0, 3).map((c) => c.textContent), ["#12", "<b>Paris</b> & co", "0.42%"],
    "id, label, density");
  assert(!el.querySelector("[data-testid=features]").textContent.includes("NaN"), "never NaN");
  await model.kernelSet("controls", [{ feature: 12, caption: "Paris", limit: 300, density: 0.5 }]);
  assertEqual(density(12).textContent, "50%", "redrawn from Python's controls");
}

export async function test_a_settled_slider_sets_the_strength_and_generates_only_when_live_or_running(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state());
  widget.render({ model, el });
  moveSlider(el, 12, 1);
  assertEqual(model.get("strengths")["12"], 300, "strength at the end of the slider");
  assert(model.saves >= 1, "saved");
  assertEqual(model.sent, [], "not live, nothing running: no generation");
  await model.kernelSet("running", true);
  moveSlider(el, 12, -1);
  assertEqual(model.get("strengths")["12"], -300, "negative end");
  assertEqual(model.sent, [{ type: "generate" }], "a slider moved during a generation supersedes it");
  await model.kernelSet("running", false);
  await model.kernelSet("live", true);
  moveSlider(el, 7, 0);
  assertEqual(model.sent.length, 2, "live mode regenerates when a slider settles");
  assertEqual(model.get("strengths")["7"], 0, "zero in the middle");
  moveSlider(el, 7, 0.3871);
  assertEqual(model.get("strengths")["7"], 44.9, "a slider strength keeps 3 significant digits (300 * 0.387^2 = 44.93)");
}

export async function test_streamed_tokens_of_the_newest_generation_only(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const model = fakeModel(state({ generation: 3, running: true }));
  widget.render({ model, el });
  await model.kernelSend({ kind: "start", id: 3 });
  await model.kernelSend({ kind: "token", id: 3, step: 0, default: " Paris", steered: " the" });
  await model.kernelSend({ kind: "token", id: 2, step: 1, default: " stale", steered: " stale" });
  await model.kernelSend({ kind: "token", id: 3, step: 1, default: ",", steered: null });
  assertEqual(generated(el, "default"), [" Paris", ","], "default column");
  assertEqual(generated(el, "steered"), [" the"], "steered column (ended: null)");
  assertEqual(el.querySelector("[data-testid=steered] .sw-steer-prompt").textContent, state().prompt, "prompt");
}

export async function test_the_result_marks_differing_tokens_and_stale_results_are_ignored(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state({ generation: 3, running: true }));
  widget.render({ model, el });
  const result = (id) => ({ id, prompt_tokens: ["The", " cat"], default_tokens: [" sat", " down"],
    steered_tokens: [" sat", " <i>up</i>"], differs: [false, true], default_text: " sat down",
    steered_text: " sat <i>up</i>", seconds: 1.24 });
  await model.kernelSet("result", result(2));
  assertEqual(generated(el, "steered"), [], "a result of a superseded generation is not drawn");
  await model.kernelSet("result", result(3));
  await model.kernelSet("running", false);
  assertEqual(generated(el, "steered"), [" sat", " <i>up</i>"], "steered tokens");
  assert(el.querySelector("[data-testid=steered] i") === null, "tokens are text");
  const marks = [...el.querySelectorAll("[data-testid=default] .sw-steer-tok")].map((t) => t.classList.contains("sw-steer-diff"));
  assertEqual(marks, [false, true], "differing tokens marked");
  assertEqual(el.querySelector("[data-testid=status]").textContent, "2 tokens in 1.2 s", "status");
  await model.kernelSet("result", { ...result(3), default_tokens: [" sat"], steered_tokens: [" up"], differs: [true] });
  assertEqual(el.querySelector("[data-testid=status]").textContent, "1 token in 1.2 s", "one token");
  assert(el.querySelector("[data-testid=steered] [data-testid=hint]").hidden, "no hint beside a completion");
}

export async function test_generate_add_remove_and_settings(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const model = fakeModel(state());
  widget.render({ model, el });
  el.querySelector("[data-testid=generate]").click();
  assertEqual(model.sent, [{ type: "generate" }], "Generate sends one request");
  el.querySelector("[data-testid=add-input]").value = "99";
  el.querySelector("[data-testid=add]").click();
  assertEqual(model.get("features"), [12, 7, 99], "feature added");
  el.querySelector("[data-testid=remove-12]").click();
  assertEqual(model.get("features"), [7, 99], "feature removed");
  const method = el.querySelector("[data-testid=method]");
  method.value = "clamp";
  method.dispatchEvent(new Event("change"));
  assertEqual(model.get("method"), "clamp", "method set");
  const tokens = el.querySelector("[data-testid=max_new_tokens]");
  tokens.value = "16";
  tokens.dispatchEvent(new Event("change"));
  assertEqual(model.get("max_new_tokens"), 16, "max tokens set as a number");
}

export async function test_ablate_disables_the_sliders(ctx) {
  const { widget, el, fakeModel, assert } = ctx;
  widget.render({ model: fakeModel(state({ method: "ablate" })), el });
  assert(el.querySelector("[data-testid=slider-12]").disabled, "slider disabled");
}

export async function test_read_only_view_and_cleanup(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const result = { id: 0, prompt_tokens: ["Hi"], default_tokens: ["!"], steered_tokens: ["?"], differs: [true] };
  const summary = "Steering: add {12: 90.0} (resid_post@6) at all positions, greedy";
  const model = fakeModel(state({ interactive: false, result, summary }));
  const cleanup = widget.render({ model, el });
  assert(el.querySelector(".sw-steer-controls").hidden, "controls hidden");
  assertEqual(el.querySelector("[data-testid=summary]").textContent, summary, "says what produced the result");
  assertEqual(generated(el, "steered"), ["?"], "result drawn without a kernel");
  cleanup();
  assertEqual(model.listenerCount(), 0, "every subscription removed");
  assertEqual(el.children.length, 0, "view removed");
}
