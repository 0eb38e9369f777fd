// Tests of js/lib/glyphs.js (run by tests/browser/test_js.py; `widget` holds the module's exports).

export async function test_characters_no_font_can_draw_show_their_code_point(ctx) {
  const { widget, assert, assertEqual } = ctx;
  const font = "13px monospace";
  assertEqual(widget.shownText(" the·cat↵", font), " the·cat↵", "ordinary text and our whitespace glyphs stay");
  assertEqual(widget.shownText("café Ωμέγα", font), "café Ωμέγα", "accents and Greek are drawn");
  assertEqual(widget.shownText("a\u{10FFFD}b", font), "a⟨U+10FFFD⟩b", "a private-use character has no glyph");
  assert(!widget.canDraw("\u{10FFFD}", font) && widget.canDraw("A", font), "canDraw");
  // emoji and CJK: drawn where a font has them, else shown as code points, never as an empty box
  for (const [text, code] of [["😀", "⟨U+1F600⟩"], ["日", "⟨U+65E5⟩"]]) {
    const shown = widget.shownText(text, font);
    assert(shown === text || shown === code, `${text} shown as ${shown}`);
    assertEqual(shown === text, widget.canDraw(text, font), `${text} follows canDraw`);
  }
}
