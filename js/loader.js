// The earlier script-tag loader (dist/web/klaviyo.js), kept working for pages that have
// it. New pages use the script-tag install in dist/script/ (js/script/, docs/script-tag.md):
// two files fetched side by side instead of three in a row (klaviyo.js, index.js, the
// .wasm), and `window.klaviyoWasm` instead of `window.klaviyo`, which belongs to
// Klaviyo's own onsite script (with both on a page, every command ran twice). Paste on
// any page:
//
//   <script>window.klaviyo = window.klaviyo || []; klaviyo.push(["viewedProduct", {...}]);</script>
//   <script async src="https://cdn.example/klaviyo-wasm/klaviyo.js" data-company-id="AbC123"></script>
//
// Commands pushed before the script loads run in order once the tracker is ready;
// later `klaviyo.push([...])` calls run at once. Settings come from data- attributes:
// data-company-id, data-api-base, data-revision, data-debug. A failing command never
// throws into the page: it is reported with console.warn.
(function () {
  var script = document.currentScript;
  if (!script) return;
  var data = script.dataset;
  var queued = window.klaviyo;
  if (!Array.isArray(queued)) queued = [];
  var warn = function (e) { console.warn("klaviyo:", e && e.message ? e.message : e); };
  import(new URL("./index.js", script.src).href).then(function (m) {
    return m.Klaviyo.init({
      companyId: data.companyId,
      apiBase: data.apiBase || undefined,
      revision: data.revision || undefined,
      debug: data.debug === "true",
      onError: function (e) { if (data.debug === "true") warn(e); },
    });
  }).then(function (kl) {
    var run = function (cmd) {
      try {
        var name = cmd && cmd[0];
        if (typeof kl[name] !== "function") throw new Error("unknown command " + name);
        var out = kl[name].apply(kl, Array.prototype.slice.call(cmd, 1));
        if (out && typeof out.catch === "function") out.catch(warn);
        return out;
      } catch (e) {
        warn(e);
      }
    };
    queued.forEach(run);
    window.klaviyo = { push: run, tracker: kl };
  }).catch(warn);
})();
