// Helpers for fake-model tests of widget modules (run by tests/browser/test_js.py in Chromium).
// Every export here is passed to each test function, with `widget` (the module under test) and `el`.

const TYPES = { int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array,
  uint32: Uint32Array, float32: Float32Array, float64: Float64Array };

/** A binary trait value as Python's to_binary sends it: {buffer: DataView, dtype, shape}. */
export function array(values, dtype, shape) {
  const typed = TYPES[dtype].from(values);
  return { buffer: new DataView(typed.buffer), dtype, shape: shape ?? [typed.length] };
}

/**
 * A stand-in for the anywidget model that records what the view does.
 * `set` fires change events like Backbone; `kernelSet` is a change coming from Python; both (and
 * `kernelSend`) return a promise to await before looking at the DOM: views coalesce redraws into a microtask;
 * `saves` counts save_changes(); `sent` holds model.send() contents; `kernelSend` is a custom message from
 * Python; `listenerCount()` counts live on() subscriptions.
 */
export function fakeModel(state) {
  const values = { ...state };
  const listeners = new Map();
  const model = {
    saves: 0,
    sets: [],
    sent: [],
    get: (name) => values[name],
    set(name, value) {
      model.sets.push([name, value]);
      values[name] = value;
      emit(name);
      return settled();
    },
    kernelSet(name, value) {
      values[name] = value;
      emit(name);
      return settled();
    },
    save_changes() {
      model.saves += 1;
    },
    on(event, callback) {
      if (!listeners.has(event)) listeners.set(event, []);
      listeners.get(event).push(callback);
    },
    off(event, callback) {
      listeners.set(event, (listeners.get(event) ?? []).filter((cb) => cb !== callback));
    },
    send(content) {
      model.sent.push(content);
    },
    kernelSend(content) {
      for (const callback of [...(listeners.get("msg:custom") ?? [])]) callback(content, []);
      return settled();
    },
    listenerCount: () => [...listeners.values()].reduce((n, list) => n + list.length, 0),
  };
  const emit = (name) => {
    for (const callback of [...(listeners.get(`change:${name}`) ?? [])]) callback();
  };
  return model;
}

/** Resolves once the redraws views queued (microtasks) have run. */
export function settled() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`${message}: expected ${b}, got ${a}`);
}

/** A CSS colour as the browser reports it back (to compare with element.style values). */
export function cssColour(colour) {
  const probe = document.createElement("span");
  probe.style.backgroundColor = colour;
  return probe.style.backgroundColor;
}

export function hover(element) {
  element.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
}

export function leave(element) {
  element.dispatchEvent(new MouseEvent("mouseleave"));
}
