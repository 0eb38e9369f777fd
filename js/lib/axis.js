// Axis helpers for small charts (the dashboard's histogram): "nice" tick values and English counts.
// No imports, so tests/js/axis.test.js can load this module on its own.

/**
 * About `count` + 1 round tick values (1, 2 or 5 x 10^k apart) from `lo` to `hi`, both limits included
 * when they are round; [] when the span is empty or not finite.
 * niceTicks(0, 395, 4) -> [0, 100, 200, 300]; niceTicks(0, 0.9, 3) -> [0, 0.2, 0.4, 0.6, 0.8].
 */
export function niceTicks(lo, hi, count = 4) {
  if (!(Number.isFinite(lo) && Number.isFinite(hi)) || !(hi > lo) || !(count >= 1)) return [];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const error = raw / magnitude; // in [1, 10): take the round step nearest to it (as d3 does)
  const step = magnitude * (error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1);
  const ticks = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) {
    ticks.push(Number((i * step).toPrecision(12))); // 0.30000000000000004 -> 0.3
  }
  return ticks;
}

/** "1 token", "0 tokens", "12,345 tokens". */
export function countOf(n, noun) {
  return `${Number(n).toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`;
}
