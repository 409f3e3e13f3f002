// Imported first by a test page (tests/consent/, tests/parity/): records, from the page's
// own point of view, what the library does to its facilities, so a test can say "nothing
// was written / sent":
//   window.writes: every localStorage setItem / removeItem / clear, as [op, key];
//   window.sent: the URL of every fetch() to Klaviyo's /client endpoints;
//   window.reports: left for the page's onError.
window.reports = [];
window.writes = [];
window.sent = [];

const proto = Storage.prototype;
const setItem = proto.setItem, removeItem = proto.removeItem, clear = proto.clear;
proto.setItem = function (k, v) { window.writes.push(['set', String(k)]); return setItem.call(this, k, v); };
proto.removeItem = function (k) { window.writes.push(['remove', String(k)]); return removeItem.call(this, k); };
proto.clear = function () { window.writes.push(['clear', null]); return clear.call(this); };
const realFetch = window.fetch;
window.fetch = function (input, init) {
  const url = String(input?.url ?? input);
  if (url.includes('/client/')) window.sent.push(url);
  return realFetch.call(this, input, init);
};
