// Fake-model tests of js/activations.js (run by tests/browser/test_js.py).
// Each test gets { widget, el, fakeModel, array, assert, assertEqual, cssColour, hover, leave }.

// Five tokens; per-token top-k (strongest first): t1 = #7 4.0, #3 1.0; t2 = #3 2.0; t3 = #7 1.0, #5 0.5.
function state({ array }, extra = {}) {
  return {
    tokens: ["<bos>", "The", "·", "cat", "↵\n"],
    row_lengths: [5],
    special: [0],
    topk_features: array([7, 3, 3, 7, 5], "int32"),
    topk_values: array([4, 1, 2, 1, 0.5], "float32"),
    topk_counts: array([0, 2, 1, 2, 0], "uint8"),
    top_features: [
      { feature: 7, max: 4, count: 2 },
      { feature: 3, max: 2, count: 2 },
      { feature: 5, max: 0.5, count: 1 },
    ],
    labels: { 7: "cats & <b>dogs</b>" },
    color_limits: [0, 4],
    selected_feature: null,
    selected_column: {},
    error: "",
    k: 16,
    ...extra,
  };
}

const tokens = (el) => [...el.querySelectorAll(".sw-tok")];
const colours = (el) => tokens(el).map((span) => span.style.backgroundColor);
const alpha = (level) => (0.12 + (0.78 * level) / 64).toFixed(3);
const orange = (level, { cssColour }) => cssColour(`rgba(234, 88, 12, ${alpha(level)})`);


/** Wait for the redraw a trait change queued (views draw once per action, after the change events). */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

export async function test_renders_tokens_and_feature_list(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  assertEqual(tokens(el).map((t) => t.textContent), ["<bos>", "The", "·", "cat", "↵\n"], "token text in order");
  assert(tokens(el)[0].classList.contains("sw-special"), "BOS is drawn as special");
  assert(!tokens(el)[1].classList.contains("sw-special"), "ordinary token is not special");
  const items = [...el.querySelectorAll("[data-testid=feature-list] .sw-feat")];
  assertEqual(items.map((b) => b.dataset.feature), ["7", "3", "5"], "side list order");
  assertEqual([...items[0].children].slice(0, 5).map((c) => c.textContent), ["#7", "cats & <b>dogs</b>", "4", "", "2×"], "feature row (no density known)");
  assert(el.querySelector("b") === null, "a label is text, not HTML");
  assert(el.querySelector("[data-testid=error]").hidden, "no error banner");
}

export async function test_colours_by_strongest_feature_with_python_limits(ctx) {
  const { widget, el, fakeModel, assertEqual, cssColour } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  // limits [0, 4]: 4 -> top level, 2 -> level 32 of 64, 1 -> level 16, nothing -> transparent
  assertEqual(colours(el), ["transparent", orange(64, ctx), orange(32, ctx), orange(16, ctx), "transparent"].map(cssColour), "colours");
}

export async function test_clicking_a_feature_sets_the_trait_and_saves(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  el.querySelector("[data-testid=feature-list] [data-feature='3']").click();
  await settled();
  assertEqual(model.get("selected_feature"), 3, "selected_feature after click");
  assertEqual(model.saves, 1, "save_changes calls");
  assert(el.querySelector("[data-testid=feature-list] [data-feature='3']").getAttribute("aria-pressed") === "true", "pressed");
  el.querySelector("[data-testid=feature-list] [data-feature='3']").click();
  assertEqual(model.get("selected_feature"), null, "second click clears the selection");
  assertEqual(model.saves, 2, "save_changes calls after the second click");
}

export async function test_kernel_column_recolours_exactly(ctx) {
  const { widget, el, fakeModel, array, assert, assertEqual, cssColour } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  // feature 5 is in token 3's top-k only, but Python's exact column also has it on token 1 (outside its top-k)
  await model.kernelSet("selected_column", { feature: 5, limits: [0, 2], ...array([0, 2, 0, 0.5, 0], "float32") });
  await model.kernelSet("selected_feature", 5);
  assertEqual(colours(el), ["transparent", orange(64, ctx), "transparent", orange(16, ctx), "transparent"].map(cssColour), "colours");
  const status = el.querySelector("[data-testid=status]").textContent;
  assert(status.includes("#5") && !status.includes("top-k"), `status names the feature, exact: ${status}`);
  await model.kernelSet("selected_feature", null);
  assertEqual(colours(el)[1], cssColour(orange(64, ctx)), "back to the strongest colouring");
}

export async function test_until_the_column_arrives_colours_come_from_top_k(ctx) {
  const { widget, el, fakeModel, assert, assertEqual, cssColour } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  el.querySelector("[data-feature='7']").click();
  await settled();
  // from top-k: token 1 = 4, token 3 = 1, limits [0, 4]
  assertEqual(colours(el), ["transparent", orange(64, ctx), "transparent", orange(16, ctx), "transparent"].map(cssColour), "colours");
  assert(el.querySelector("[data-testid=status]").textContent.includes("top-k"), "status says the colours are approximate");
}

export async function test_hover_shows_token_features_and_click_pins(ctx) {
  const { widget, el, fakeModel, hover, leave, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx)), el });
  const detail = () => [...el.querySelectorAll("[data-testid=token-detail] .sw-feat")].map((b) => [b.dataset.feature, b.children[2].textContent]);
  hover(tokens(el)[1]);
  assertEqual(detail(), [["7", "4"], ["3", "1"]], "hovered token's features");
  assert(el.querySelector("[data-testid=token-title]").textContent.includes("The"), "title names the token");
  tokens(el)[3].click();
  assert(tokens(el)[3].classList.contains("sw-pinned"), "pinned token is marked");
  hover(tokens(el)[2]);
  assertEqual(detail(), [["7", "1"], ["5", "0.5"]], "pinned token stays shown while hovering another");
  leave(el.querySelector("[data-testid=tokens]"));
  assertEqual(detail(), [["7", "1"], ["5", "0.5"]], "pinned token shown after leaving");
  tokens(el)[3].click();
  hover(tokens(el)[2]);
  assertEqual(detail(), [["3", "2"]], "unpinned: hover works again");
}

export async function test_cleanup_unsubscribes(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  const cleanup = widget.render({ model, el });
  assert(model.listenerCount() > 0, "subscribed while shown");
  cleanup();
  assertEqual(model.listenerCount(), 0, "listeners after cleanup");
  assertEqual(el.children.length, 0, "view removed");
  await model.kernelSet("selected_feature", 3); // must not throw or touch the detached view
}

export async function test_error_is_shown_and_the_view_keeps_working(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  await model.kernelSet("selected_feature", 99);
  await model.kernelSet("error", "Feature 99 is out of range: this SAE has features [0, 8)");
  const banner = el.querySelector("[data-testid=error]");
  assert(!banner.hidden && banner.textContent.includes("Feature 99 is out of range"), "banner shows the message");
  el.querySelector("[data-feature='7']").click();
  assertEqual(model.get("selected_feature"), 7, "clicks still select");
  await model.kernelSet("error", "");
  assert(banner.hidden, "banner hides when the error clears");
}

export async function test_bad_payload_shows_an_error_until_fixed(ctx) {
  const { widget, el, fakeModel, array, assert, assertEqual } = ctx;
  const model = fakeModel(state(ctx, { topk_counts: array([1, 2], "uint8") }));
  widget.render({ model, el });
  const banner = el.querySelector("[data-testid=error]");
  assert(!banner.hidden && banner.textContent.includes("topk_counts"), `banner explains: ${banner.textContent}`);
  await model.kernelSet("selected_feature", 7); // nothing to colour yet: the first message stays
  assert(banner.textContent.includes("topk_counts has 2 entries for 5 tokens"), `same message: ${banner.textContent}`);
  await model.kernelSet("topk_counts", array([0, 2, 1, 2, 0], "uint8"));
  assert(banner.hidden, "fixed data clears the message");
  assertEqual(tokens(el).length, 5, "tokens drawn");
}

export async function test_text_is_inserted_as_text(ctx) {
  const { widget, el, fakeModel, hover, assert, assertEqual } = ctx;
  const evil = ["<img src=x onerror=window.__pwned=1>", "</script>", "<b>bold</b>", "&amp;", "x"];
  widget.render({ model: fakeModel(state(ctx, { tokens: evil })), el });
  assertEqual(tokens(el).map((t) => t.textContent), evil, "literal text");
  assert(!el.querySelector("img, b, script"), "no element created from token text");
  hover(tokens(el)[0]);
  assert(el.querySelector("[data-testid=token-title]").textContent.includes("<img src=x"), "title shows literal text");
  assert(!el.querySelector("img"), "still no img after hover");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert(window.__pwned === undefined, "no handler ran");
}

export async function test_several_rows_share_one_scale(ctx) {
  const { widget, el, fakeModel, assertEqual, cssColour } = ctx;
  widget.render({ model: fakeModel(state(ctx, { row_lengths: [3, 2] })), el });
  const rows = [...el.querySelectorAll(".sw-row")];
  assertEqual(rows.map((r) => r.querySelectorAll(".sw-tok").length), [3, 2], "tokens per row");
  assertEqual(rows.map((r) => r.querySelector(".sw-rowlabel").textContent), ["1", "2"], "row labels");
  assertEqual(colours(el)[3], cssColour(orange(16, ctx)), "second row uses the same limits");
}

export async function test_misaligned_binary_buffers_decode(ctx) {
  const { widget, el, fakeModel, array, assertEqual } = ctx;
  const shifted = (payload) => {
    const bytes = new Uint8Array(payload.buffer.byteLength + 1);
    bytes.set(new Uint8Array(payload.buffer.buffer), 1);
    return { ...payload, buffer: new DataView(bytes.buffer, 1, payload.buffer.byteLength) };
  };
  const base = state(ctx);
  widget.render({ model: fakeModel({ ...base, topk_values: shifted(base.topk_values), topk_features: shifted(base.topk_features) }), el });
  ctx.hover(tokens(el)[1]);
  assertEqual([...el.querySelectorAll("[data-testid=token-detail] .sw-feat")].map((b) => b.dataset.feature), ["7", "3"], "features");
}

export async function test_labels_of_a_hovered_token_are_asked_for_once(ctx) {
  const { widget, el, fakeModel, hover, assertEqual } = ctx;
  const model = fakeModel(state(ctx));
  widget.render({ model, el });
  hover(tokens(el)[1]); // features 7 (labelled with the side list) and 3 (not yet)
  assertEqual(model.sent, [{ kind: "labels", features: [3] }], "asks only for the missing label");
  await model.kernelSend({ kind: "labels", labels: { 3: "the word <the>" } });
  const labels = () => [...el.querySelectorAll("[data-testid=token-detail] .sw-flabel")].map((s) => s.textContent);
  assertEqual(labels(), ["cats & <b>dogs</b>", "the word <the>"], "labels after the reply");
  hover(tokens(el)[2]);
  hover(tokens(el)[1]);
  assertEqual(model.sent.length, 1, "no second request for the same features");
  assertEqual(el.querySelector("[data-feature='3'] .sw-flabel").textContent, "the word <the>", "side list label too");
}

export async function test_compact_entries_decode_to_values(ctx) {
  // The packed wire form: uint16 slots into a feature table, uint8 fractions of each token's exact strongest.
  const { widget, el, fakeModel, array, assertEqual, hover } = ctx;
  const packed = state(ctx, {
    feature_table: array([3, 5, 70000], "int32"),
    topk_features: array([2, 0, 0, 2, 1], "uint16"),
    topk_values: array([255, 64, 255, 255, 128], "uint8"),
    topk_scale: array([0, 4, 2, 1, 0], "float32"),
  });
  widget.render({ model: fakeModel(packed), el });
  hover(el.querySelectorAll(".sw-tok")[1]);
  const listed = [...el.querySelectorAll("[data-testid=token-detail] .sw-feat")].map((b) => b.dataset.feature);
  assertEqual(listed, ["70000", "3"], "features of a hovered token come from the table");
  hover(el.querySelectorAll(".sw-tok")[3]);
  const values = [...el.querySelectorAll("[data-testid=token-detail] .sw-feat")].map((b) => b.children[2].textContent);
  assertEqual(values, ["1", "0.502"], "the strongest is exact, the rest are fractions of it");
}

// Python ranks: the side list and each token's list come in its order (specific first), each with a density;
// the default colouring is each token's strongest non-reserved feature (color_values / color_features).
function ranked(ctx, extra = {}) {
  const { array } = ctx;
  return state(ctx, {
    // t1 lists #3 (1.0, rarer) before #7 (4.0): the order is Python's, not by value
    topk_features: array([3, 7, 3, 5, 7], "uint16"),
    topk_values: array([64, 255, 255, 128, 255], "uint8"),
    topk_scale: array([0, 4, 2, 1, 0], "float32"),
    topk_counts: array([0, 2, 1, 1, 0], "uint8"),
    top_features: [
      { feature: 5, max: 0.5, count: 1, density: 0.0004, score: 9 },
      { feature: 3, max: 2, count: 2, density: 0.0123, score: 5 },
      { feature: 7, max: 4, count: 2, density: 0.42, score: 1 },
    ],
    densities: { 3: 0.0123, 5: 0.0004, 7: 0.42 },
    color_values: array([0, 4, 2, 1, 0], "float32"),
    color_features: array([-1, 7, 3, 5, -1], "int32"),
    reserved: [0, 1],
    include_reserved: false,
    rank: "specific",
    ...extra,
  });
}

export async function test_side_list_keeps_python_order_and_shows_density(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  widget.render({ model: fakeModel(ranked(ctx)), el });
  const items = [...el.querySelectorAll("[data-testid=feature-list] .sw-feat")];
  assertEqual(items.map((b) => b.dataset.feature), ["5", "3", "7"], "Python's (specific) order, not by max");
  assertEqual(items.map((b) => b.querySelector("[data-testid=density]").textContent), ["0.04%", "1.23%", "42%"], "densities");
  assertEqual(el.querySelector("[data-testid=feature-list-title]").textContent, "Features specific to this text", "title");
}

export async function test_hover_list_keeps_python_order_with_exact_values_and_density(ctx) {
  const { widget, el, fakeModel, assertEqual, hover } = ctx;
  widget.render({ model: fakeModel(ranked(ctx)), el });
  hover(el.querySelectorAll(".sw-tok")[1]);
  const rows = [...el.querySelectorAll("[data-testid=token-detail] .sw-feat")];
  assertEqual(rows.map((b) => b.dataset.feature), ["3", "7"], "token features in Python's order");
  assertEqual(rows.map((b) => b.children[2].textContent), ["1", "4"], "the largest (not the first) is the exact scale");
  assertEqual(rows.map((b) => b.querySelector("[data-testid=density]").textContent), ["1.23%", "42%"], "densities");
  const title = el.querySelector("[data-testid=token-title]").textContent;
  assertEqual(title.includes("colour: #7 = 4"), true, `the title says which feature colours the token: ${title}`);
}

export async function test_default_colour_names_the_reserved_features_left_out(ctx) {
  const { widget, el, fakeModel, assert, assertEqual, cssColour } = ctx;
  widget.render({ model: fakeModel(ranked(ctx)), el });
  const status = el.querySelector("[data-testid=status]").textContent;
  assert(status.includes("strongest feature, reserved #0 #1 left out"), `status: ${status}`);
  assertEqual(colours(el), ["transparent", orange(64, ctx), orange(32, ctx), orange(16, ctx), "transparent"].map(cssColour), "colours from color_values");
}

export async function test_reserved_toggle_sets_the_trait_and_follows_python(ctx) {
  const { widget, el, fakeModel, assert, assertEqual, array } = ctx;
  const model = fakeModel(ranked(ctx));
  widget.render({ model, el });
  const box = el.querySelector("[data-testid=include-reserved]");
  assert(!box.closest("label").hidden && !box.checked, "toggle shown, off");
  box.click();
  assertEqual(model.get("include_reserved"), true, "include_reserved after a click");
  assertEqual(model.saves, 1, "saved once");
  // Python answers with lists that include reserved feature 0
  await model.kernelSet("top_features", [{ feature: 0, max: 90, count: 4, density: 0.99, score: 0.01 }]);
  const items = [...el.querySelectorAll("[data-testid=feature-list] .sw-feat")].map((b) => b.dataset.feature);
  assertEqual(items, ["0"], "the side list follows Python");
  assert(!el.querySelector("[data-testid=status]").textContent.includes("left out"), "status no longer says left out");
  await model.kernelSet("reserved", []);
  assert(box.closest("label").hidden, "no toggle for an SAE without reserved features");
}

export async function test_a_token_no_font_can_draw_shows_its_code_point(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  widget.render({ model: fakeModel(state(ctx, { tokens: ["<bos>", "The", "\u{10FFFD}", "cat", "↵\n"] })), el });
  assertEqual(tokens(el).map((t) => t.textContent), ["<bos>", "The", "⟨U+10FFFD⟩", "cat", "↵\n"], "code point, not a box");
}
