// Runs a command with the Klaviyo emulator listening, its URL in KLAVIYO_EMULATOR.
// The wasm browser tests read that URL at compile time, so the port is fixed
// (KLAVIYO_EMULATOR_PORT, default 18787) to keep their build cached between runs.
import { spawn } from "node:child_process";
import { startEmulator } from "./emulator/server.mjs";

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error("usage: node tests/with-emulator.mjs COMMAND [ARGS...]");
  process.exit(2);
}
const port = Number(process.env.KLAVIYO_EMULATOR_PORT ?? 18787);
const emu = await startEmulator({ port });
const child = spawn(cmd, args, {
  stdio: "inherit",
  env: { ...process.env, KLAVIYO_EMULATOR: emu.url },
});
const code = await new Promise((resolve) => child.on("exit", (c, sig) => resolve(c ?? (sig ? 1 : 0))));
await emu.close();
process.exit(code);
