// Fake-model tests of js/search.js (run by tests/browser/test_js.py).

function state(extra = {}) {
  return {
    query: "The <i>cat</i>",
    columns: [{ name: "feature", kind: "int" }, { name: "score", kind: "number" }, { name: "token", kind: "text" },
      { name: "label", kind: "text" }],
    rows: [[7, 2.5, "·", "<b>seven</b>"], [3, 1.23456, " cat", null]],
    selected_feature: null,
    error: "",
    ...extra,
  };
}

const q = (el, selector) => [...el.querySelectorAll(selector)];

export async function test_rows_show_the_table_as_text(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state()), el });
  assertEqual(q(el, "th").map((th) => th.textContent), ["feature", "score", "token", "label"], "header");
  assertEqual(q(el, "[data-testid=search-row]").map((tr) => [...tr.cells].map((td) => td.textContent)),
    [["7", "2.5", "·", "<b>seven</b>"], ["3", "1.23", " cat", ""]], "cells");
  assert(el.querySelector("b, i") === null, "text never becomes HTML");
  assert(el.querySelector("[data-testid=search-caption]").textContent.startsWith("2 features for The <i>cat</i>"), "caption");
}

export async function test_clicking_a_row_selects_its_feature(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const model = fakeModel(state());
  widget.render({ model, el });
  q(el, "[data-testid=search-row]")[1].click();
  assertEqual(model.sets, [["selected_feature", 3]], "trait set");
  assertEqual(model.saves, 1, "saved");
  assertEqual(q(el, "[data-testid=search-row]").map((tr) => tr.getAttribute("aria-selected")), ["false", "true"], "marked");
  q(el, "[data-testid=search-row]")[0].dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  assertEqual(model.get("selected_feature"), 7, "keyboard selects too");
  await model.kernelSet("selected_feature", 99); // a feature not listed: nothing marked
  assertEqual(q(el, "[aria-selected=true]").length, 0, "no row marked");
}

export async function test_new_rows_keep_the_selection_and_cleanup_unsubscribes(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state({ selected_feature: 5 }));
  const cleanup = widget.render({ model, el });
  await model.kernelSet("rows", [[5, 1, "a", "five"]]);
  assertEqual(q(el, "[aria-selected=true]").map((tr) => tr.dataset.feature), ["5"], "selected row of the new rows");
  await model.kernelSet("rows", []);
  assertEqual(el.querySelector(".sw-empty").textContent, "No feature found", "empty");
  await model.kernelSet("error", "search needs a text query");
  assert(!el.querySelector("[data-testid=error]").hidden, "error shown");
  cleanup();
  assertEqual(model.listenerCount(), 0, "listeners removed");
  assert(!el.querySelector("[data-testid=search-results]"), "view removed");
}

export async function test_density_shows_as_a_percentage_in_python_order(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const columns = [{ name: "feature", kind: "int" }, { name: "score", kind: "number" }, { name: "density", kind: "number" },
    { name: "label", kind: "text" }];
  widget.render({ model: fakeModel(state({ columns, rows: [[3246, 12.5, 0.0058, ""], [6811, 0.4, 0.74, ""]] })), el });
  const cells = q(el, "[data-testid=search-row]").map((tr) => [...tr.cells].map((td) => td.textContent));
  assertEqual(cells, [["3246", "12.5", "0.58%", ""], ["6811", "0.4", "74%", ""]], "density as a % of corpus tokens, rows as sent");
}

export async function test_a_token_no_font_can_draw_shows_its_code_point(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  widget.render({ model: fakeModel(state({ rows: [[7, 2.5, "\u{10FFFD}", "ok"]] })), el });
  assertEqual([...el.querySelector("[data-testid=search-row]").cells].map((td) => td.textContent), ["7", "2.5", "⟨U+10FFFD⟩", "ok"], "cells");
}
