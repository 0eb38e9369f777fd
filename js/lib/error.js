// The error banner: shows the widget's `error` trait (set by Python when an observer fails) and any
// error the view itself hits, inside the widget, without stopping it.
import { h } from "./dom.js";

/** Create the banner bound to `model`'s `error` trait. Returns {el, show(err, source), clear(source), cleanup}. */
export function errorBanner(model) {
  const el = h("div", { class: "sw-error", role: "alert", "data-testid": "error", hidden: true });
  let local = "";
  let localSource = null;
  const update = () => {
    const message = [model.get("error") || "", local].filter(Boolean).join("\n");
    el.textContent = message;
    el.hidden = !message;
  };
  const show = (err, source = null) => {
    local = String(err?.message ?? err);
    localSource = source;
    console.error("scopewidgets:", err);
    update();
  };
  const clear = (source) => {
    if (local && localSource === source) {
      local = "";
      update();
    }
  };
  model.on("change:error", update);
  update();
  return { el, show, clear, cleanup: () => model.off("change:error", update) };
}

/** Wrap a handler so a thrown error lands in the banner; its next successful call clears that message. */
export function guarded(banner, fn) {
  const source = {};
  return (...args) => {
    try {
      const result = fn(...args);
      banner.clear(source);
      return result;
    } catch (err) {
      banner.show(err, source);
    }
  };
}
