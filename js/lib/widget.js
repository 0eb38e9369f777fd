// The base of every widget view: the error banner, model subscriptions and DOM listeners with their cleanup,
// and redraws coalesced to one per task. Python changes several traits at once (a new feature: header,
// histogram, logits, examples, similar features...), and the front end hears one change event per trait;
// a redraw scheduled by each of them runs once, after the last (a microtask), so a view draws once per action.
import { errorBanner, guarded } from "./error.js";

/**
 * Start a view of `model`: `{banner, guard, on, listen, coalesce, mount, cleanup}`.
 * - `guard(fn)`: `fn` with its errors shown in the banner (cleared by its next success);
 * - `on(event, fn)`: a guarded model subscription ("change:x", "msg:custom"), removed by `cleanup`;
 * - `listen(target, type, fn)`: a guarded DOM listener, removed by `cleanup`;
 * - `coalesce(draw)`: `schedule(reason)`; every reason given within one task reaches ONE `draw(reasons)` call;
 * - `mount(el, root)`: put `root` (which should hold `banner.el`) in `el`; `cleanup()` undoes everything.
 */
export function widgetView(model) {
  const banner = errorBanner(model);
  const undo = [];
  let alive = true;
  const view = {
    banner,
    guard: (fn) => guarded(banner, fn),
    on(event, fn) {
      const handler = guarded(banner, fn);
      model.on(event, handler);
      undo.push(() => model.off(event, handler));
      return handler;
    },
    listen(target, type, fn) {
      const handler = guarded(banner, fn);
      target.addEventListener(type, handler);
      undo.push(() => target.removeEventListener(type, handler));
      return handler;
    },
    coalesce(draw) {
      const run = guarded(banner, draw);
      let reasons = null;
      return (reason = "draw") => {
        if (reasons) return void reasons.add(reason);
        reasons = new Set([reason]);
        queueMicrotask(() => {
          const due = reasons;
          reasons = null;
          if (alive) run(due);
        });
      };
    },
    mount(el, root) {
      el.appendChild(root);
      undo.push(() => root.remove());
    },
    cleanup() {
      alive = false;
      for (const step of undo.splice(0).reverse()) step();
      banner.cleanup();
    },
  };
  return view;
}
