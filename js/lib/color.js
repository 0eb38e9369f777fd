// Sequential colour scale: one hue whose opacity grows with the value, laid over the theme background,
// so the theme's own text colour stays readable in light and dark themes. Python picks the limits.

export const HUE = [234, 88, 12]; // orange
const LEVELS = 64;
const MIN_ALPHA = 0.12;
const MAX_ALPHA = 0.9;

/** The colour of a position t in [0, 1]; t <= 0 (no activation) is transparent. */
export function sequential(t) {
  if (!(t > 0)) return "transparent";
  const level = Math.max(1, Math.round(Math.min(t, 1) * LEVELS));
  const alpha = MIN_ALPHA + ((MAX_ALPHA - MIN_ALPHA) * level) / LEVELS;
  return `rgba(${HUE[0]}, ${HUE[1]}, ${HUE[2]}, ${alpha.toFixed(3)})`;
}

/** A function value -> colour for the limits [lo, hi]; colours are quantized and cached. */
export function scale([lo, hi]) {
  const span = hi > lo ? hi - lo : 1;
  const cache = new Map();
  return (value) => {
    const level = value <= lo ? 0 : Math.min(LEVELS, Math.max(1, Math.round(((value - lo) / span) * LEVELS)));
    const t = level / LEVELS;
    let colour = cache.get(t);
    if (colour === undefined) cache.set(t, (colour = sequential(t)));
    return colour;
  };
}

/** A number for display: 3 significant digits, no exponent for ordinary activations. */
export function format(value) {
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1000 || abs < 0.001) return value.toExponential(2);
  return value.toPrecision(3).replace(/\.?0+$/, "");
}
