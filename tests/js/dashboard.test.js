// Fake-model tests of js/dashboard.js (run by tests/browser/test_js.py).
// Each test gets { widget, el, fakeModel, array, assert, assertEqual, cssColour, hover, leave }.

// Feature 7: two top examples (3 and 2 tokens), one quantile group with one example (2 tokens, one value
// unknown), similar features 9 (covered, density 0.42%), 4 (not in the pass, density 1.5e-6) and 12
// (covered, density unknown).
function state({ array }, extra = {}) {
  return {
    feature: 7,
    header: { feature: 7, label: "cats & <b>dogs</b>", density: 0.0123, max_activation: 4, mean_activation: null,
      n_tokens: 12345, source: "corpus pass" },
    histogram: { counts: array([3, 0, 1], "float64"), edges: array([0, 1.5, 3, 4.5], "float64") },
    logits: { top: [{ token: " cat", value: 1.5 }, { token: "<img src=x onerror=alert(1)>", value: 1.2 }],
      bottom: [{ token: " dog", value: -0.7 }] },
    examples: {
      tokens: ["<bos>", "The", " cat", " sat", "·", "on", "↵"],
      special: array([1, 0, 0, 0, 0, 0, 0], "uint8"),
      values: array([0, 0, 4, 2, 0, 1, Number.NaN], "float32"),
      lengths: array([3, 2, 2], "int32"),
      focus: array([2, 0, 0], "int32"),
      max_values: array([4, 2, 1], "float32"),
      seq_index: array([10, 3, 8], "float64"),
      position: array([2, 5, 40], "int32"),
      groups: [{ kind: "top", first: 0, count: 2 },
        { kind: "quantile", first: 2, count: 1, lower: 0, upper: 2, tokens: 30, fraction: 0.75 }],
      limits: [0, 4],
    },
    similar: [{ feature: 9, cosine: 0.5, density: 0.0042, label: "", covered: true },
      { feature: 4, cosine: 0.4, density: 1.5e-6, label: "<i>four</i>", covered: false },
      { feature: 12, cosine: 0.3, density: null, label: "", covered: true }],
    offline_features: [],
    error: "",
    ...extra,
  };
}

const q = (el, selector) => [...el.querySelectorAll(selector)];
const alpha = (level) => (0.12 + (0.78 * level) / 64).toFixed(3);
const orange = (level, { cssColour }) => cssColour(`rgba(234, 88, 12, ${alpha(level)})`);


/** Wait for the redraw a trait change queued (views draw once per action, after the change events). */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

export async function test_renders_every_part_as_text(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  const title = el.querySelector("[data-testid=dash-title]").textContent;
  assertEqual(title, "Feature #7cats & <b>dogs</b>", "header title");
  const stats = el.querySelector("[data-testid=dash-stats]").textContent;
  assert(stats.includes("1.23% density") && stats.includes("4 max") && stats.includes("unknown mean") && stats.includes("12,345 tokens"), stats);
  assertEqual(q(el, "[data-testid=histogram] .sw-bar-bin").map((b) => b.style.height), ["100%", "0%", "33.3333%"], "bar heights");
  assertEqual(q(el, "[data-testid=histogram] .sw-bar-bin")[2].title, "[3, 4.5): 1 token", "bin title");
  assertEqual(q(el, "[data-testid=top-logits] .sw-logit-token").map((t) => t.textContent), [" cat", "<img src=x onerror=alert(1)>"], "top logits");
  assertEqual(q(el, "[data-testid=bottom-logits] .sw-fval").map((t) => t.textContent), ["-0.7"], "bottom logits");
  assert(el.querySelector("img, b") === null, "text never becomes HTML");
  assertEqual(q(el, "[data-testid=top-examples] .sw-strip").length, 2, "top strips");
  assertEqual(q(el, "[data-testid=top-examples] .sw-tok").map((t) => t.textContent), ["<bos>", "The", " cat", " sat", "·"], "strip tokens");
  assert(el.querySelector("[data-testid=error]").hidden, "no error");
}

export async function test_tokens_are_shaded_by_the_feature_with_python_limits(ctx) {
  const { widget, el, fakeModel, assert, assertEqual, cssColour } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  const spans = q(el, ".sw-tok");
  assertEqual(spans.map((s) => s.style.backgroundColor),
    ["transparent", "transparent", orange(64, ctx), orange(32, ctx), "transparent", orange(16, ctx), "transparent"].map(cssColour), "colours");
  assert(spans[0].classList.contains("sw-special"), "BOS drawn as special");
  assert(spans[2].classList.contains("sw-focus") && spans[3].classList.contains("sw-focus") && spans[5].classList.contains("sw-focus") && !spans[4].classList.contains("sw-focus"), "focus tokens");
  assertEqual(spans[6].title, "value unknown", "NaN is unknown, not zero");
}

export async function test_hovering_a_token_shows_its_value_and_place(ctx) {
  const { widget, el, fakeModel, assert, assertEqual, hover, leave } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  const spans = q(el, ".sw-tok");
  hover(spans[3]);
  assertEqual(el.querySelector("[data-testid=status]").textContent, "“ sat” 2 · seq 3, position 5", "status on hover");
  hover(spans[1]);
  assertEqual(el.querySelector("[data-testid=status]").textContent, "“The” 0 · seq 10, position 1", "a token before the focus");
  hover(spans[6]);
  assert(el.querySelector("[data-testid=status]").textContent.includes("value unknown"), "unknown value");
  leave(el.querySelector("[data-testid=examples]"));
  assertEqual(el.querySelector("[data-testid=status]").textContent, "Hover a token for its activation", "status after leaving");
}

export async function test_quantile_groups_are_collapsible(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  const groups = q(el, "[data-testid=quantile-group]");
  assertEqual(groups.length, 1, "one group");
  assert(!groups[0].open, "closed at first");
  assertEqual(groups[0].querySelector("summary").textContent, "[0, 2) · 30 tokens (75%)", "group summary");
  groups[0].querySelector("summary").click();
  assert(groups[0].open, "opens on click");
  assertEqual(q(groups[0], ".sw-tok").map((t) => t.textContent), ["on", "↵"], "group strip");
}

export async function test_clicking_a_similar_feature_opens_it_and_back_returns(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  const buttons = q(el, "[data-testid=similar] .sw-feat");
  assertEqual(buttons.map((b) => [b.dataset.feature, b.disabled]), [["9", false], ["4", true], ["12", false]], "buttons");
  assertEqual(buttons[1].title, "not in this pass", "why 4 is disabled");
  buttons[1].click();
  assertEqual(model.saves, 0, "a disabled feature does nothing");
  buttons[0].click();
  assertEqual(model.get("feature"), 9, "feature set");
  assertEqual(model.saves, 1, "saved");
  assertEqual(el.querySelector("[data-testid=status]").textContent, "Opening feature #9…", "waiting for the kernel");
  const next = state(ctx).header;
  await model.kernelSet("header", { ...next, feature: 9, label: "nine" });
  assert(el.querySelector("[data-testid=dash-title]").textContent.includes("#9"), "shows feature 9");
  assert(!el.querySelector("[data-testid=back]").hidden, "back is offered");
  el.querySelector("[data-testid=back]").click();
  assertEqual(model.get("feature"), 7, "back to 7");
  assertEqual(model.saves, 2, "saved again");
}

export async function test_similar_features_show_label_cosine_and_density(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  const rows = q(el, "[data-testid=similar] .sw-feat");
  const cells = rows.map((row) => [...row.children].map((c) => c.textContent));
  assertEqual(cells, [["#9", "", "0.5", "0.42%"], ["#4", "<i>four</i>", "0.4", "1.5e-4%"], ["#12", "", "0.3", "–"]],
    "id, label, cosine, density");
  assert(el.querySelector("[data-testid=similar] i") === null, "a label is text, not HTML");
  const density = q(el, "[data-testid=similar] [data-testid=density]");
  assertEqual(density.map((d) => d.title), ["fires on 0.42% of corpus tokens", "fires on 1.5e-4% of corpus tokens",
    "density unknown"], "density titles");
  assert(!el.querySelector("[data-testid=similar]").textContent.includes("NaN"), "never NaN");
  const row = rows[0].getBoundingClientRect();
  assert(density.every((d) => d.getBoundingClientRect().top < row.bottom && d.scrollWidth <= d.clientWidth + 1),
    "the density fits on the row's line");
}

export async function test_offline_pages_only_open_saved_features(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx, { offline_features: [7, 9] })), el });
  const buttons = q(el, "[data-testid=similar] .sw-feat");
  assertEqual(buttons.map((b) => b.disabled), [false, true, true], "only 9 can be opened");
  assertEqual(buttons[2].title, "not saved in this file", "why 12 is disabled");
}

export async function test_errors_show_inline_and_cleanup_unsubscribes(ctx) {
  const { widget, el, fakeModel, assert, assertEqual, array } = ctx;
  const model = fakeModel(state(ctx));
  const before = model.listenerCount();
  const cleanup = widget.render({ model, el });
  await model.kernelSet("error", "Feature 99 is out of range: this SAE has features [0, 16)");
  const banner = el.querySelector("[data-testid=error]");
  assert(!banner.hidden && banner.textContent.includes("out of range"), "kernel error shown");
  await model.kernelSet("examples", { ...state(ctx).examples, lengths: array([1], "int32") });
  assert(banner.textContent.includes("lengths cover 1 token,"), `a malformed payload is reported: ${banner.textContent}`);
  await model.kernelSet("error", "");
  await model.kernelSet("examples", state(ctx).examples);
  assertEqual(q(el, ".sw-tok").length, 7, "recovers with good data");
  cleanup();
  assertEqual(model.listenerCount(), before, "listeners removed");
  assertEqual(el.children.length, 0, "DOM removed");
}

export async function test_action_buttons_send_the_shown_feature(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  const cleanup = widget.render({ model, el });
  assertEqual(q(el, "[data-command]").length, 0, "no action buttons by default");
  await model.kernelSet("actions", [{ name: "steer", label: "steer <b>it</b>" }]);
  const button = el.querySelector("[data-testid=action-steer]");
  assertEqual(button.textContent, "steer <b>it</b>", "label is text");
  button.click();
  assertEqual(model.sent, [{ kind: "action", name: "steer", feature: 7 }], "custom message");
  assertEqual(model.sets, [], "an action sets no trait");
  await model.kernelSet("header", { ...model.get("header"), feature: 9 });
  await model.kernelSet("feature", 9);
  el.querySelector("[data-testid=action-steer]").click();
  assertEqual(model.sent[1], { kind: "action", name: "steer", feature: 9 }, "the feature shown now");
  cleanup();
  assertEqual(model.listenerCount(), 0, "cleanup unsubscribes");
  assert(!el.querySelector("[data-testid=dashboard]"), "cleanup removes the view");
}

const ticks = (el, axis) => q(el, `.sw-hist-${axis} .sw-tick`).map((t) => [t.textContent, t.style.left || t.style.bottom]);

export async function test_the_histogram_has_axes_with_round_ticks_and_counts(ctx) {
  const { widget, el, fakeModel, array, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  assertEqual(ticks(el, "x"), [["0", "0%"], ["1", "22.2222%"], ["2", "44.4444%"], ["3", "66.6667%"], ["4", "88.8889%"]],
    "activation ticks");
  assertEqual(ticks(el, "y"), [["0", "0%"], ["2", "66.6667%"]], "count ticks");
  // a maximum of 395 reads "0 100 200 300", not "0 ... 4"; counts are grouped
  const edges = Array.from({ length: 41 }, (_, i) => (395 * i) / 40);
  const counts = Array.from({ length: 40 }, (_, i) => (i === 0 ? 12000 : 10));
  await model.kernelSet("histogram", { counts: array(counts, "float64"), edges: array(edges, "float64") });
  assertEqual(ticks(el, "x").map(([text]) => text), ["0", "100", "200", "300"], "activation ticks up to 395");
  assertEqual(ticks(el, "y").map(([text]) => text), ["0", "5,000", "10,000"], "count ticks");
}

export async function test_empty_quantile_groups_are_merged_into_one_line(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const examples = { ...state(ctx).examples, groups: [{ kind: "top", first: 0, count: 2 },
    { kind: "quantile", first: 2, count: 0, lower: 0, upper: 20, tokens: 0, fraction: 0 },
    { kind: "quantile", first: 2, count: 0, lower: 20, upper: 40, tokens: 0, fraction: 0 },
    { kind: "quantile", first: 2, count: 1, lower: 40, upper: 60, tokens: 1, fraction: 1 }] };
  widget.render({ model: fakeModel(state(ctx, { examples })), el });
  assertEqual(q(el, "[data-testid=empty-groups]").map((g) => g.textContent), ["[0, 40) · no token in this range"], "merged");
  assertEqual(q(el, "[data-testid=quantile-group] summary").map((g) => g.textContent), ["[40, 60) · 1 token (100%)"], "kept");
}

export async function test_examples_are_one_line_centred_on_the_peak_and_the_context_widens(ctx) {
  const { widget, el, fakeModel, array, assertEqual } = ctx;
  const n = 41; // +-20 around the focus, as a pass keeps for top examples
  const examples = { tokens: Array.from({ length: n }, (_, i) => `t${i}`), special: array(new Array(n).fill(0), "uint8"),
    values: array(Array.from({ length: n }, (_, i) => (i === 20 ? 4 : 1)), "float32"), lengths: array([n], "int32"),
    focus: array([20], "int32"), max_values: array([4], "float32"), seq_index: array([0], "float64"),
    position: array([30], "int32"), groups: [{ kind: "top", first: 0, count: 1 }], limits: [0, 4], max_context: 20 };
  const model = fakeModel(state(ctx, { examples, context: 5 }));
  widget.render({ model, el });
  const part = (name) => q(el, `.sw-strip-${name} .sw-tok`).map((t) => t.textContent);
  assertEqual(part("before"), ["t15", "t16", "t17", "t18", "t19"], "5 tokens before the peak");
  assertEqual(part("at"), ["t20"], "the peak in the middle");
  assertEqual(part("after"), ["t21", "t22", "t23", "t24", "t25"], "5 after");
  const select = el.querySelector("[data-testid=context]");
  assertEqual([...select.options].map((o) => o.value), ["5", "10", "20"], "choices up to what was kept");
  select.value = "20";
  select.dispatchEvent(new Event("change", { bubbles: true }));
  await settled();
  assertEqual(model.get("context"), 20, "context set");
  assertEqual(q(el, ".sw-tok").length, 41, "every kept token shown");
  assertEqual(el.querySelector("[data-testid=context]").value, "20", "the select shows it");
}

export async function test_a_token_no_font_can_draw_shows_its_code_point(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const base = state(ctx);
  const examples = { ...base.examples, tokens: base.examples.tokens.map((t, i) => (i === 2 ? "\u{10FFFD}" : t)) };
  const logits = { ...base.logits, top: [{ token: "x\u{10FFFD}", value: 1 }] };
  widget.render({ model: fakeModel(state(ctx, { examples, logits })), el });
  assertEqual(q(el, "[data-testid=top-examples] .sw-tok")[2].textContent, "⟨U+10FFFD⟩", "an example token");
  assertEqual(el.querySelector("[data-testid=top-logits] .sw-logit-token").textContent, "x⟨U+10FFFD⟩", "a logit token");
}

export async function test_a_new_feature_draws_once(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  const header = el.querySelector("[data-testid=dash-header]");
  const examples = el.querySelector("[data-testid=examples]");
  const records = [];
  const observer = new MutationObserver((list) => records.push(...list));
  observer.observe(header, { childList: true });
  observer.observe(examples, { childList: true });
  const next = state(ctx, { header: { ...state(ctx).header, feature: 9, label: "nine" } });
  for (const name of ["header", "histogram", "logits", "examples", "similar", "offline_features"]) {
    model.kernelSet(name, next[name]); // Python sends a new feature's six traits in one message
  }
  await model.kernelSet("context", 3);
  records.push(...observer.takeRecords());
  observer.disconnect();
  const count = (target) => records.filter((r) => r.target === target && r.removedNodes.length).length;
  assertEqual([count(header), count(examples)], [1, 1], "header and examples drawn once for seven changed traits");
  assertEqual(el.querySelector("[data-testid=dash-title]").textContent, "Feature #9nine", "the new feature is shown");
}
