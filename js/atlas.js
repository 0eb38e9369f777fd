// The feature atlas (scopewidgets/widgets/_atlas.py): a page opened from disk, no kernel, no network. Not a
// widget: the page's loader imports this module and calls mount(el, index).
//
// index (data/index.js, a classic script setting window.SW_ATLAS_INDEX):
//   {title, features: number[], label: string[], density: number[], max: number[], top: string[],
//    top_title?: string (the top column's header, naming its measure), chunk: number,
//    vocab: string[] (token strings by local id)}
// Each feature's dashboard state lives in data/features/<chunk>.js (chunk = position in `features` / chunk),
// a classic script calling window.SW_ATLAS_CHUNK(chunk, {feature: state}); it is loaded when first needed.
// The dashboard is the widget's own module (js/dashboard.js) over a local model (standalone.js).
import "./atlas.css";
import dashboard from "./dashboard.js";
import { format } from "./lib/color.js";
import { h, replaceChildren } from "./lib/dom.js";
import { createModel, revive } from "./standalone.js";

const ROW = 26; // px per list row
const COLUMNS = [["feature", "#"], ["label", "label"], ["density", "density"], ["max", "max"], ["top", "top promoted token"]];

/** Row order for `query` sorted by `key`: "#123" is that feature alone; other text a case-insensitive
 * substring of the id, label or top token. */
export function visibleRows(index, haystack, query, key, descending) {
  const q = query.trim().toLowerCase();
  const exact = /^#\d+$/.test(q) ? Number(q.slice(1)) : null;
  const rows = [];
  for (let i = 0; i < index.features.length; i++) {
    if (exact !== null ? index.features[i] === exact : !q || haystack[i].includes(q)) rows.push(i);
  }
  const values = key === "feature" ? index.features : index[key];
  const sign = descending ? -1 : 1;
  const compare = typeof values[0] === "string"
    ? (a, b) => sign * values[a].localeCompare(values[b]) || a - b
    : (a, b) => sign * ((values[a] ?? -Infinity) - (values[b] ?? -Infinity)) || a - b;
  return rows.sort(compare);
}

/** Load the chunk holding position `i` of the index (once); resolves to {feature: state}. */
function chunkLoader(index) {
  const pending = new Map();
  const chunks = new Map();
  window.SW_ATLAS_CHUNK = (chunk, states) => {
    chunks.set(chunk, states);
    pending.get(chunk)?.resolve(states);
  };
  return (i) => {
    const chunk = Math.floor(i / index.chunk);
    if (chunks.has(chunk)) return Promise.resolve(chunks.get(chunk));
    if (!pending.has(chunk)) {
      let resolve, reject;
      const promise = new Promise((yes, no) => { resolve = yes; reject = no; });
      pending.set(chunk, { promise, resolve });
      const script = document.createElement("script");
      script.src = `data/features/${chunk}.js`;
      script.onerror = () => reject(new Error(`Could not read data/features/${chunk}.js next to index.html`));
      document.head.appendChild(script);
    }
    return pending.get(chunk).promise;
  };
}

/** A feature's dashboard traits: binary revived, tokens from the shared vocabulary. */
function traits(index, state) {
  const out = revive(state);
  out.examples = { ...out.examples, tokens: out.examples.tokens.map((t) => index.vocab[t]) };
  return out;
}

export function mount(el, index) {
  const position = new Map(index.features.map((f, i) => [f, i]));
  const haystack = index.features.map((f, i) => `#${f} ${f} ${index.label[i]} ${index.top[i]}`.toLowerCase());
  const load = chunkLoader(index);
  const stateOf = async (feature) => {
    const i = position.get(feature);
    if (i === undefined) throw new Error(`Feature ${feature} is not in this atlas`);
    return traits(index, (await load(i))[feature]);
  };
  const search = h("input", { type: "search", placeholder: "Search id, label or token", "data-testid": "atlas-search" });
  const count = h("span", { class: "sw-atlas-count", "data-testid": "atlas-count" });
  const head = h("div", { class: "sw-atlas-row sw-atlas-head" }, COLUMNS.map(([key, name]) =>
    h("button", { type: "button", dataset: { sort: key }, "data-testid": `sort-${key}` },
      key === "top" && index.top_title ? index.top_title : name)));
  const spacer = h("div", { class: "sw-atlas-spacer" });
  const list = h("div", { class: "sw-atlas-list", "data-testid": "atlas-list" }, spacer);
  const status = h("div", { class: "sw-atlas-status", "data-testid": "atlas-status" }, "Click a feature to open its dashboard");
  const pane = h("div", { class: "sw-atlas-dashboard", "data-testid": "atlas-dashboard" });
  replaceChildren(el, h("div", { class: "scopewidgets sw-atlas" },
    h("h2", {}, index.title), h("div", { class: "sw-atlas-bar" }, search, count), head, list, status, pane));

  let rows = [];
  let sort = { key: "density", descending: true };
  const drawRows = () => {
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5);
    const last = Math.min(rows.length, first + Math.ceil(list.clientHeight / ROW) + 10);
    const shown = [];
    for (let r = first; r < last; r++) {
      const i = rows[r];
      const density = index.density[i] == null ? "–" : `${format(100 * index.density[i])}%`;
      const cells = [`#${index.features[i]}`, index.label[i], density, index.max[i] == null ? "–" : format(index.max[i]), index.top[i]];
      shown.push(h("div", { class: "sw-atlas-row", style: { top: `${r * ROW}px` }, dataset: { feature: index.features[i] }, "data-testid": "atlas-row" },
        cells.map((text) => h("span", {}, text))));
    }
    replaceChildren(spacer, shown);
  };
  const refresh = () => {
    rows = visibleRows(index, haystack, search.value, sort.key, sort.descending);
    spacer.style.height = `${rows.length * ROW}px`;
    count.textContent = `${rows.length.toLocaleString()} of ${index.features.length.toLocaleString()} features`;
    drawRows();
  };

  let model = null;
  const open = async (feature) => {
    status.textContent = `Opening feature #${feature}…`;
    const state = await stateOf(feature);
    if (model === null) {
      model = createModel({ ...state, context: 5, offline_features: index.features, actions: [] });
      const save = model.save_changes;
      model.save_changes = () => {
        save();
        const wanted = model.get("feature");
        if (wanted !== model.get("header")?.feature) open(wanted).catch(fail);
      };
      await dashboard.render({ model, el: pane });
    } else {
      for (const [name, value] of Object.entries(state)) model.set(name, value);
    }
    status.textContent = `Feature #${feature}`;
  };
  const fail = (err) => { status.textContent = String(err?.message ?? err); };

  const onClick = (event) => {
    const sorter = event.target.closest("[data-sort]");
    if (sorter) {
      const key = sorter.dataset.sort;
      sort = { key, descending: sort.key === key ? !sort.descending : key !== "feature" && key !== "label" && key !== "top" };
      refresh();
      return;
    }
    const row = event.target.closest("[data-testid=atlas-row]");
    if (row) open(Number(row.dataset.feature)).catch(fail);
  };
  el.addEventListener("click", onClick);
  search.addEventListener("input", refresh);
  list.addEventListener("scroll", drawRows);
  refresh();
  el.dataset.renderedMs = String(Math.round(performance.now())); // since navigation: the list's first draw
  return { open, refresh };
}

export default { mount };
