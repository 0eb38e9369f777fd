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

/**
 * A number for display: 3 significant digits; whole digits are never dropped (240 stays "240"), trailing
 * zeros after the point are ("1.50" -> "1.5"); thousands are grouped ("12,346", rounded to a whole number);
 * below 0.001 and from 1e6 up an exponent ("1.5e-4", "2e+6"). -0 and values that round to 0 show "0";
 * NaN and null show "–" (unknown).
 */
export function format(value) {
  if (Number.isNaN(value) || value == null) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  const rounded = Number(value.toPrecision(3));
  if (rounded === 0) return "0";
  const abs = Math.abs(rounded);
  if (abs >= 1e6 || abs < 0.001) return trimMantissa(rounded.toExponential(2));
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  return trimFraction(rounded.toPrecision(3));
}

/** "1.50" -> "1.5", "2.00" -> "2", "240" stays (zeros are only dropped after a decimal point). */
function trimFraction(text) {
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/** "1.50e-4" -> "1.5e-4", "2.00e+6" -> "2e+6". */
function trimMantissa(text) {
  const [mantissa, exponent] = text.split("e");
  return `${trimFraction(mantissa)}e${exponent}`;
}
