// An empty module in index.js's place (tests/queue/startup-floor.html).
export {};
