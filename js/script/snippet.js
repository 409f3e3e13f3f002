// The paste-in snippet (minified by .ci/build.sh into dist/script/snippet.min.js, under
// 1 KB). Put it in the page's <head>, with the script's URL as the third argument:
//
//   <script>…snippet.min.js…</script>
//   <script>klaviyoWasm.push(["init", { companyId: "AbC123" }]);</script>
//
// It makes `window.klaviyoWasm` a command queue that records when each command was
// pushed, starts the .wasm download at once (a preload the script's fetch then uses),
// and loads klaviyo-wasm.js async: at most two files. If the script never loads, the
// queue stays an array whose push keeps working. An optional fourth argument is the
// .wasm's URL when it is not beside the script. Never touches window.klaviyo/_learnq.
(function (w, d, src, wasm) {
  var q = (w.klaviyoWasm = w.klaviyoWasm || []),
    push = [].push,
    now = Date.now,
    t = [],
    i,
    l,
    s;
  // Already there (a second snippet, or the script ran first): nothing to do.
  if (q.push !== push) return;
  // Commands a page pushed to a plain array before this ran: timed now.
  for (i = 0; i < q.length; i++) t[i] = now();
  q.t = t;
  q.push = function () {
    for (var j = 0; j < arguments.length; j++) {
      push.call(q, arguments[j]);
      t.push(now());
    }
    return q.length;
  };
  // The .wasm beside the script: its URL without file name, query or fragment.
  wasm = wasm || src.replace(/[^/?#]*([?#].*)?$/, "klaviyo_wasm_bg.wasm");
  l = d.createElement("link");
  l.rel = "preload";
  l.as = "fetch";
  l.crossOrigin = "anonymous"; // what fetch() asks for, so the script's fetch uses it
  l.href = wasm;
  s = d.createElement("script");
  s.async = true;
  s.src = src;
  // The snippet's nonce, for a Content-Security-Policy that allows scripts by nonce.
  i = d.currentScript;
  s.nonce = (i && i.nonce) || "";
  // Absolute (the preload's): a route change before the script runs must not move it.
  s.setAttribute("data-wasm-url", l.href);
  d.head.appendChild(l);
  d.head.appendChild(s);
})(window, document, "/klaviyo-wasm/klaviyo-wasm.js");
