// Characters that no installed font can draw (emoji or CJK on a machine without those fonts) would show as
// empty boxes: `shownText` writes them as their code point instead ("⟨U+1F600⟩"). Whether a character can
// be drawn is measured once per font and character: drawn on a canvas, it must differ from a character
// that no font has (U+10FFFD, private use), which every browser draws as the same missing-glyph box.
// No imports, so tests/js/glyphs.test.js can load this module on its own.

const NO_GLYPH = "\u{10FFFD}";
const WIDTH = 48;
const HEIGHT = 24;
const known = new Map(); // font -> Map(character -> drawable)
let context = null;

function pixels(ctx, text) {
  ctx.clearRect(0, 0, WIDTH, HEIGHT);
  ctx.fillText(text, 2, HEIGHT - 6);
  return ctx.getImageData(0, 0, WIDTH, HEIGHT).data;
}

function same(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function canvasContext() {
  if (context === null && typeof document !== "undefined") {
    const canvas = document.createElement("canvas");
    canvas.width = WIDTH;
    canvas.height = HEIGHT;
    context = canvas.getContext("2d", { willReadFrequently: true }) ?? false;
  }
  return context || null;
}

/** Can `font` (a CSS font shorthand, e.g. "13px monospace") draw `character`? True when it cannot be told. */
export function canDraw(character, font) {
  const ctx = canvasContext();
  if (!ctx) return true;
  let table = known.get(font);
  if (!table) {
    ctx.font = font;
    known.set(font, (table = new Map([[NO_GLYPH, false]])));
    table.box = pixels(ctx, NO_GLYPH);
  }
  let drawable = table.get(character);
  if (drawable === undefined) {
    ctx.font = font;
    drawable = !same(pixels(ctx, character), table.box);
    table.set(character, drawable);
  }
  return drawable;
}

/** `text` with each character that `font` cannot draw written as its code point, e.g. "⟨U+1F600⟩". */
export function shownText(text, font) {
  let out = "";
  for (const character of text) {
    const code = character.codePointAt(0);
    out += code < 0x250 || canDraw(character, font) ? character : `⟨U+${code.toString(16).toUpperCase().padStart(4, "0")}⟩`;
  }
  return out;
}

/** The CSS font an element's text is drawn with (for `shownText`); "13px monospace" when unknown. */
export function fontOf(element) {
  const style = element && typeof getComputedStyle === "function" ? getComputedStyle(element) : null;
  return style && style.fontFamily ? `${style.fontSize || "13px"} ${style.fontFamily}` : "13px monospace";
}
