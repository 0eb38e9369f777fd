// Tests of js/lib/axis.js (run by tests/browser/test_js.py; `widget` holds the module's exports).

export async function test_nice_ticks_are_round_and_cover_the_range_over_magnitudes(ctx) {
  const { widget, assert, assertEqual } = ctx;
  assertEqual(widget.niceTicks(0, 395, 4), [0, 100, 200, 300], "a maximum of 395 (not '0 ... 4')");
  assertEqual(widget.niceTicks(0, 4.5, 4), [0, 1, 2, 3, 4], "small range");
  assertEqual(widget.niceTicks(0, 0.9, 3), [0, 0.2, 0.4, 0.6, 0.8], "fractions");
  assertEqual(widget.niceTicks(-250, 250, 4), [-200, -100, 0, 100, 200], "negative values");
  assertEqual(widget.niceTicks(0, 0, 4), [], "empty span");
  assertEqual(widget.niceTicks(0, Number.NaN, 4), [], "unknown span");
  for (let exponent = -4; exponent <= 6; exponent += 0.25) {
    const hi = 10 ** exponent;
    const ticks = widget.niceTicks(0, hi, 4);
    assert(ticks.length >= 3 && ticks.length <= 8, `${ticks.length} ticks up to ${hi}`);
    assert(ticks[0] === 0 && ticks.every((t) => t <= hi * (1 + 1e-9)), `ticks within [0, ${hi}]: ${ticks}`);
    const step = ticks[1] - ticks[0];
    const mantissa = Number((step / 10 ** Math.floor(Math.log10(step))).toPrecision(6));
    assert([1, 2, 5].includes(mantissa), `round step ${step} up to ${hi}`);
    assert(hi - ticks[ticks.length - 1] <= step * (1 + 1e-9), `the last tick is within a step of ${hi}`);
  }
}

export async function test_count_of_says_one_token_and_groups_thousands({ widget, assertEqual }) {
  assertEqual([0, 1, 2, 12345].map((n) => widget.countOf(n, "token")), ["0 tokens", "1 token", "2 tokens", "12,345 tokens"], "counts");
}
