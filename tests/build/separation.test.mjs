// The two builds carry only their own code: no private-key path in the browser package,
// no browser tracker in the worker. Reads the built dist/ (npm run build, build:edge).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function text(dir) {
  return files(path.join(ROOT, dir)).map((f) => [path.relative(ROOT, f), readFileSync(f, "latin1")]);
}

test("the browser package has no edge code and no private-key path", () => {
  for (const [name, body] of text("dist/web")) {
    for (const marker of ["Klaviyo-API-Key", "KLAVIYO_PRIVATE_KEY", "x-klaviyo-edge-signature", "/api/events", "klaviyo-signature"]) {
      assert.ok(!body.toLowerCase().includes(marker.toLowerCase()), `${name} contains ${marker}`);
    }
  }
});

test("the worker has no browser tracker code", () => {
  // dist/edge/script/ holds the script-tag files the worker serves: data, not its code.
  for (const [name, body] of text("dist/edge").filter(([n]) => !n.startsWith(path.join("dist", "edge", "script")))) {
    for (const marker of ["Tracker", "localStorage", "navigator.locks", "klaviyo:"]) {
      assert.ok(!body.includes(marker), `${name} contains ${marker}`);
    }
  }
});

test("the worker serves exactly the script-tag files that were built", () => {
  for (const [built, served] of [
    ["klaviyo-wasm.js", "klaviyo-wasm.js.txt"],
    ["klaviyo_wasm_bg.wasm", "klaviyo_wasm_bg.wasm.bin"],
    ["snippet.min.js", "snippet.min.js.txt"],
  ]) {
    assert.ok(readFileSync(path.join(ROOT, "dist/script", built)).equals(readFileSync(path.join(ROOT, "dist/edge/script", served))), served);
  }
});

test("each build has its entry points", () => {
  const web = readFileSync(path.join(ROOT, "dist/web/index.js"), "utf8");
  assert.match(web, /Klaviyo/);
  const worker = readFileSync(path.join(ROOT, "dist/edge/worker.mjs"), "utf8");
  assert.match(worker, /export default/);
});
