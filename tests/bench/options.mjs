// The edge benches' command line: `--name N` options and bare `--name` flags.
const args = process.argv.slice(2);

/** The number after `--name`, or `fallback`. */
export function numberOption(name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
}

/** The text after `--name`, or `fallback`. */
export function stringOption(name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

/** Whether `--name` was given. */
export const flag = (name) => args.includes(`--${name}`);
