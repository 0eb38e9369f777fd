// Runtime of an exported HTML file (scopewidgets/widgets/_export.py): a local stand-in for the anywidget
// model, so a widget module renders and stays interactive from file:// with no kernel. Not a widget.
//
// The page's JSON holds {module, css, state, responses}; binary buffers appear as {__sw_buffer__: base64}.
// `responses[trait][JSON.stringify(value)]` holds the trait values Python would have sent back after
// save_changes() with that value (precomputed at export time), which is how selection works offline.

/** Replace every {__sw_buffer__: base64} in a parsed JSON tree by a DataView. */
export function revive(node) {
  if (Array.isArray(node)) return node.map(revive);
  if (node === null || typeof node !== "object") return node;
  if (typeof node.__sw_buffer__ === "string") {
    const binary = atob(node.__sw_buffer__);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new DataView(bytes.buffer);
  }
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, revive(value)]));
}

/** A model with anywidget's surface (get, set, on, off, save_changes, send) over a plain state object. */
export function createModel(state, responses = {}) {
  const values = { ...state };
  const listeners = new Map();
  const dirty = new Set();
  const emit = (event) => {
    for (const callback of [...(listeners.get(event) ?? [])]) callback();
  };
  const assign = (name, value) => {
    values[name] = value;
    emit(`change:${name}`);
  };
  return {
    get: (name) => values[name],
    set(name, value) {
      dirty.add(name);
      assign(name, value);
    },
    save_changes() {
      const changed = [...dirty];
      dirty.clear();
      for (const name of changed) {
        const reply = responses[name]?.[JSON.stringify(values[name] ?? null)];
        for (const [other, value] of Object.entries(reply ?? {})) assign(other, value);
      }
    },
    on(event, callback) {
      for (const name of event.split(" ")) {
        if (!listeners.has(name)) listeners.set(name, new Set());
        listeners.get(name).add(callback);
      }
    },
    off(event, callback) {
      for (const name of event ? event.split(" ") : [...listeners.keys()]) {
        if (callback) listeners.get(name)?.delete(callback);
        else listeners.delete(name);
      }
    },
    send() {},
    listenerCount: () => [...listeners.values()].reduce((n, set) => n + set.size, 0),
  };
}

/** Import a module's source text through a Blob URL (there is no server to fetch it from). */
export async function importSource(source) {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  try {
    return await import(url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Render the exported widget into `el`. Returns the widget's cleanup. */
export async function mount(data, el) {
  const { module, css, state, responses } = revive(data);
  const style = document.createElement("style");
  style.textContent = css ?? "";
  document.head.appendChild(style);
  const model = createModel(state, responses);
  const exported = (await importSource(module)).default;
  const widget = typeof exported === "function" ? await exported() : exported;
  await widget.initialize?.({ model });
  return await widget.render({ model, el });
}
