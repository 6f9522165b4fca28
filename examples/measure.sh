#!/bin/sh
# Trains every example config on MNIST with the same budget, one at a time, and prints the README's table.
#   sh examples/measure.sh [OUT_DIR]      (default runs/examples; a config whose run exists is skipped)
# Budget: the default recipe's 2,000 iterations of 64 images, one worker thread, seed 1.
set -e
out=${1:-runs/examples}
mkdir -p "$out"
for config in examples/*.json; do
  name=$(basename "$config" .json)
  [ -f "$out/$name/metrics.json" ] && continue
  rm -rf "$out/$name"
  node bin/convlab.js train --config "$config" --iterations 2000 --workers 1 --no-report --out "$out/$name" > "$out/$name.log" 2>&1 || echo "$name failed: see $out/$name.log"
done
node --input-type=module -e '
import { readFileSync, readdirSync, existsSync } from "node:fs";
const out = process.argv[1];
console.log("| config | parameters | test accuracy | train seconds | images/s |");
console.log("|---|---:|---:|---:|---:|");
for (const name of readdirSync(out).sort()) {
  const file = `${out}/${name}/metrics.json`;
  if (!existsSync(file)) continue;
  const m = JSON.parse(readFileSync(file, "utf8"));
  const specs = JSON.parse(readFileSync(`${out}/${name}/model.json`, "utf8")).weightsManifest[0].weights;
  const params = specs.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
  console.log(`| [${name}](examples/${name}.json) | ${params.toLocaleString("en-US")} | ${(100 * m.testAccuracy).toFixed(2)}% | ${Math.round(m.trainSeconds).toLocaleString("en-US")} | ${Math.round(m.trainImagesPerSecond).toLocaleString("en-US")} |`);
}' "$out"
