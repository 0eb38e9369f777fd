// The error banner: shows the widget's `error` trait (set by Python when an observer fails) and any
// error the view itself hits, inside the widget, without stopping it.
import { h } from "./dom.js";

/** Create the banner bound to `model`'s `error` trait. Returns {el, show(err), cleanup}. */
export function errorBanner(model) {
  const el = h("div", { class: "sw-error", role: "alert", "data-testid": "error", hidden: true });
  let local = "";
  const update = () => {
    const message = [model.get("error") || "", local].filter(Boolean).join("\n");
    el.textContent = message;
    el.hidden = !message;
  };
  const show = (err) => {
    local = err ? String(err.message ?? err) : "";
    if (err) console.error("scopewidgets:", err);
    update();
  };
  model.on("change:error", update);
  update();
  return { el, show, cleanup: () => model.off("change:error", update) };
}

/** Wrap an event handler so a thrown error lands in the banner instead of the console only. */
export function guarded(banner, fn) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      banner.show(err);
    }
  };
}
