// Fake-model tests of js/explorer.js, the explorer's controls (run by tests/browser/test_js.py).

function state(extra = {}) {
  return { text: "The cat", query: "", search_by: "text", status: "Click a feature", error: "", ...extra };
}

const key = (target, name, extra = {}) =>
  target.dispatchEvent(new KeyboardEvent("keydown", { key: name, bubbles: true, cancelable: true, ...extra }));

export async function test_the_boxes_show_the_traits(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  widget.render({ model: fakeModel(state({ status: "<b>ready</b>", query: "cat", search_by: "logit" })), el });
  assertEqual(el.querySelector("[data-testid=text-input]").value, "The cat", "text box");
  assertEqual(el.querySelector("[data-testid=search-input]").value, "cat", "search box");
  assertEqual(el.querySelector("[data-testid=search-by]").value, "logit", "mode");
  assertEqual(el.querySelector("[data-testid=explorer-status]").textContent, "<b>ready</b>", "status is text");
  assert(el.querySelector("b") === null, "no HTML from data");
  assert(el.querySelector("[data-testid=error]").hidden, "no error");
}

export async function test_enter_or_the_button_submits_the_text(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const model = fakeModel(state());
  widget.render({ model, el });
  const box = el.querySelector("[data-testid=text-input]");
  box.value = "A dog";
  key(box, "Enter", { shiftKey: true }); // a new line, not a submit
  assertEqual(model.sets, [], "shift+enter does not submit");
  key(box, "Enter");
  assertEqual(model.sets, [["text", "A dog"]], "enter submits");
  assertEqual(model.saves, 1, "saved");
  box.value = "A bird";
  el.querySelector("[data-testid=show]").click();
  assertEqual(model.get("text"), "A bird", "the button submits");
  assertEqual(model.saves, 2, "saved again");
}

export async function test_search_submits_the_query_and_mode(ctx) {
  const { widget, el, fakeModel, assertEqual } = ctx;
  const model = fakeModel(state());
  widget.render({ model, el });
  const box = el.querySelector("[data-testid=search-input]");
  box.value = "Paris";
  el.querySelector("[data-testid=search-by]").value = "logit";
  key(box, "Enter");
  assertEqual(model.sets, [["query", "Paris"], ["search_by", "logit"]], "query and mode");
  assertEqual(model.saves, 1, "one save for both");
  box.value = "tower";
  el.querySelector("[data-testid=search]").click();
  assertEqual(model.get("query"), "tower", "the button searches");
}

export async function test_the_kernel_never_overwrites_a_box_being_edited(ctx) {
  const { widget, el, fakeModel, assert, assertEqual } = ctx;
  const model = fakeModel(state());
  const cleanup = widget.render({ model, el });
  const box = el.querySelector("[data-testid=text-input]");
  box.focus();
  box.value = "half typ";
  await model.kernelSet("text", "From Python");
  assertEqual(box.value, "half typ", "focused box kept");
  box.blur();
  await model.kernelSet("text", "From Python again");
  assertEqual(box.value, "From Python again", "unfocused box follows the kernel");
  await model.kernelSet("status", "Building dashboards…");
  assertEqual(el.querySelector("[data-testid=explorer-status]").textContent, "Building dashboards…", "status");
  await model.kernelSet("error", "The text is empty; give at least one character");
  const banner = el.querySelector("[data-testid=error]");
  assert(!banner.hidden && banner.textContent.startsWith("The text is empty"), "error shown");
  cleanup();
  assertEqual(model.listenerCount(), 0, "listeners removed");
  assert(!el.querySelector("[data-testid=explorer]"), "view removed");
}
