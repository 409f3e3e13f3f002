//! The browser adapter in real headless Chromium: real localStorage, real fetch to the
//! Klaviyo emulator (its URL comes from `KLAVIYO_EMULATOR` at build time).
