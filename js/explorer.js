// The explorer's controls (scopewidgets/widgets/explorer.py, ExplorerControls): a text box whose text is shown
// as tokens by the token view below it, a search box, and a status line. The other parts of the explorer
// (search results, tokens, dashboard, steering panel) are widgets of their own, wired together in Python.
//
// Traits:
//   text       string   two-way: submitted with Enter (Shift+Enter: new line) or the "show tokens" button
//   query      string   two-way: submitted with Enter or the "search" button
//   search_by  "text" | "logit"   two-way: features firing on the query, or promoting the query token
//   status     string   from Python: what it is doing, or what to do next
//   error      string   shown in the banner
// A box being edited is never overwritten by the kernel.
import "./lib/style.css";
import "./explorer.css";
import { h } from "./lib/dom.js";
import { widgetView } from "./lib/widget.js";

const MODES = [["text", "features firing on a text"], ["logit", "features promoting a token"]];

function commit(model, changes) {
  for (const [name, value] of Object.entries(changes)) model.set(name, value);
  model.save_changes();
}

function render({ model, el }) {
  const view = widgetView(model);
  const textBox = h("textarea", { class: "sw-ex-text", rows: 2, "data-testid": "text-input",
    placeholder: "Type a text, then Enter (Shift+Enter: new line)" });
  const showButton = h("button", { type: "button", "data-testid": "show" }, "show tokens");
  const queryBox = h("input", { type: "text", class: "sw-ex-query", "data-testid": "search-input",
    placeholder: "Search features" });
  const mode = h("select", { "data-testid": "search-by" }, MODES.map(([value, label]) => h("option", { value }, label)));
  const searchButton = h("button", { type: "button", "data-testid": "search" }, "search");
  const status = h("div", { class: "sw-ex-status", "data-testid": "explorer-status", role: "status" });
  const root = h("div", { class: "scopewidgets sw-explorer", "data-testid": "explorer" }, view.banner.el,
    h("div", { class: "sw-ex-row" }, textBox, showButton),
    h("div", { class: "sw-ex-row" }, queryBox, mode, searchButton), status);
  view.mount(el, root);

  const submitText = () => commit(model, { text: textBox.value });
  const submitQuery = () => commit(model, { query: queryBox.value, search_by: mode.value });
  const onTextKey = (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitText();
    }
  };
  const onQueryKey = (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      submitQuery();
    }
  };
  const sync = () => {
    if (document.activeElement !== textBox) textBox.value = model.get("text") ?? "";
    if (document.activeElement !== queryBox) queryBox.value = model.get("query") ?? "";
    mode.value = model.get("search_by") ?? "text";
    status.textContent = model.get("status") ?? "";
  };
  view.listen(textBox, "keydown", onTextKey);
  view.listen(queryBox, "keydown", onQueryKey);
  view.listen(showButton, "click", submitText);
  view.listen(searchButton, "click", submitQuery);
  for (const name of ["text", "query", "search_by", "status"]) view.on(`change:${name}`, sync);
  view.guard(sync)();
  return view.cleanup;
}

export default { render };
