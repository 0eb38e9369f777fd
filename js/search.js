// Search results (scope.search): a table whose rows select their feature. Keyboard: Tab to a row, Enter or
// Space selects it.
//
// Traits (set by scopewidgets/widgets/search.py):
//   query             string     what was searched for (caption)
//   columns           [{name, kind}]   kind "int" | "number" | "text"; "feature" first; "density" shows as a %
//   rows              any[][]    cell values in column order (null: missing)
//   selected_feature  number | null    two-way: the feature of the clicked row
//   error             string     shown in the banner
import "./lib/style.css";
import "./search.css";
import { format } from "./lib/color.js";
import { h, replaceChildren } from "./lib/dom.js";
import { fontOf, shownText } from "./lib/glyphs.js";
import { widgetView } from "./lib/widget.js";

function cellText(value, kind, name, font) {
  if (value == null) return "";
  if (name === "density") return `${format(100 * value)}%`; // fraction of corpus tokens where it fires
  if (kind === "number") return format(value);
  return shownText(String(value), font); // a glyph no font has: its code point
}

function tableView(columns, rows, font) {
  const head = h("tr", {}, columns.map(({ name, kind }) => h("th", { class: `sw-search-${kind}` }, name)));
  const body = rows.map((row) => h("tr", { class: "sw-search-row", tabindex: 0, "data-testid": "search-row",
    dataset: { feature: row[0] }, "aria-selected": "false" },
  row.map((value, c) => h("td", { class: `sw-search-${columns[c].kind}` }, cellText(value, columns[c].kind, columns[c].name, font)))));
  return h("table", { class: "sw-search-table" }, h("thead", {}, head), h("tbody", {}, body));
}

function render({ model, el }) {
  const view = widgetView(model);
  const caption = h("div", { class: "sw-bar", "data-testid": "search-caption" });
  const body = h("div", { class: "sw-search-body" });
  const root = h("div", { class: "scopewidgets sw-search", "data-testid": "search-results" }, view.banner.el, caption, body);
  view.mount(el, root);

  const mark = () => {
    const selected = model.get("selected_feature");
    for (const row of body.querySelectorAll(".sw-search-row")) {
      row.setAttribute("aria-selected", String(Number(row.dataset.feature) === selected));
    }
  };
  const draw = () => {
    const columns = model.get("columns") ?? [];
    const rows = model.get("rows") ?? [];
    if (rows.length && columns[0]?.name !== "feature") throw new Error("search results need the feature column first");
    const query = model.get("query");
    caption.textContent = `${rows.length} feature${rows.length === 1 ? "" : "s"}${query ? ` for ${query}` : ""}` +
      (rows.length ? " · click a row to select it" : "");
    replaceChildren(body, rows.length ? tableView(columns, rows, fontOf(body)) : h("div", { class: "sw-empty" }, "No feature found"));
    mark();
  };
  const redraw = view.coalesce(draw); // new results change columns, rows and query together: one draw
  const select = (row) => {
    model.set("selected_feature", Number(row.dataset.feature));
    model.save_changes();
  };
  view.listen(body, "click", (event) => {
    const row = event.target.closest(".sw-search-row");
    if (row) select(row);
  });
  view.listen(body, "keydown", (event) => {
    const row = event.target.closest(".sw-search-row");
    if (row && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(row);
    }
  });
  for (const name of ["columns", "rows", "query"]) view.on(`change:${name}`, () => redraw());
  view.on("change:selected_feature", mark);
  view.guard(draw)();
  return view.cleanup;
}

export default { render };
