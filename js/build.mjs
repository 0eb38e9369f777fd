// Bundles every widget module js/<name>.js (plus its imported CSS) into scopewidgets/static/<name>.{js,css}.
// Usage: `npm run build` (once, minified) or `npm run dev` (rebuild on change, with source maps).
// A new widget needs no change here: add js/<name>.js and it is picked up.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const watch = process.argv.includes("--watch");
const entryPoints = readdirSync(here)
  .filter((name) => name.endsWith(".js"))
  .map((name) => join(here, name));

const options = {
  entryPoints,
  outdir: join(here, "..", "scopewidgets", "static"),
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  legalComments: "none",
  logLevel: "info",
};

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
