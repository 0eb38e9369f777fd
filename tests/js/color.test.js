// Tests of js/lib/color.js, chiefly `format`, the one number formatter of the widgets (run by
// tests/browser/test_js.py; `widget` holds the module's exports).

// [value, shown]: magnitudes 1e-4 .. 1e6, both signs, whole numbers with trailing zeros among them.
const CASES = [
  [0, "0"], [-0, "0"], [1e-4, "1e-4"], [-1e-4, "-1e-4"], [1.5e-4, "1.5e-4"], [0.000999, "9.99e-4"],
  [0.001, "0.001"], [-0.00123, "-0.00123"], [0.01, "0.01"], [0.0105, "0.0105"], [0.1, "0.1"],
  [0.25, "0.25"], [-0.5, "-0.5"], [1, "1"], [-1, "-1"], [1.5, "1.5"], [2.999, "3"], [10, "10"],
  [-10, "-10"], [20, "20"], [24, "24"], [99.96, "100"], [100, "100"], [-100, "-100"], [120, "120"],
  [240, "240"], [-240, "-240"], [360, "360"], [395, "395"], [400, "400"], [123.456, "123"],
  [999.7, "1,000"], [1000, "1,000"], [-1000, "-1,000"], [1500, "1,500"], [12345.6, "12,346"],
  [100000, "100,000"], [-250000, "-250,000"], [999999.6, "1e+6"], [1e6, "1e+6"], [-1e6, "-1e+6"],
  [2.5e6, "2.5e+6"], [1e-9, "1e-9"], [NaN, "–"], [Infinity, "∞"], [-Infinity, "-∞"],
];

export async function test_format_keeps_every_whole_digit_from_1e_4_to_1e6(ctx) {
  const { widget, assertEqual } = ctx;
  const shown = CASES.map(([value]) => widget.format(value));
  assertEqual(shown, CASES.map(([, text]) => text), "format over magnitudes and signs");
}

export async function test_format_reads_back_within_half_a_unit_of_its_last_digit(ctx) {
  const { widget, assert } = ctx;
  for (let exponent = -4; exponent <= 6; exponent += 0.05) {
    for (const sign of [1, -1]) {
      const value = sign * 10 ** exponent;
      const text = widget.format(value);
      const back = Number(text.replaceAll(",", ""));
      // 3 significant digits: the relative error is at most half a unit of the third digit
      assert(Math.abs(back - value) <= 0.005 * Math.abs(value) + 1e-12, `${value} shown as ${text}`);
      assert(!/^-?0$/.test(text) && !text.includes("NaN"), `${value} shown as ${text}`);
    }
  }
}

export async function test_scale_colours_by_value_within_the_limits(ctx) {
  const { widget, assert, assertEqual } = ctx;
  const colour = widget.scale([0, 10]);
  assertEqual(colour(0), "transparent", "no activation");
  assertEqual(colour(-3), "transparent", "below the lower limit");
  assert(colour(10) === colour(50), "clipped at the upper limit");
  assert(colour(1) !== colour(9), "different values, different colours");
}
