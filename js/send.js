// The one network call of the browser package. Always answers `done` exactly once:
// (status, retryAfter, body) for an HTTP answer, (0, null, "") when there was none.
// The error body is read only for failures, where the queue reports it.
export function send(url, revision, body, keepalive, done) {
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/vnd.api+json", revision },
    body,
    keepalive,
  }).then(
    (r) =>
      r.status < 300
        ? done(r.status, r.headers.get("retry-after"), "")
        : r.text().then(
            (t) => done(r.status, r.headers.get("retry-after"), t),
            () => done(r.status, r.headers.get("retry-after"), ""),
          ),
    () => done(0, null, ""),
  );
}
