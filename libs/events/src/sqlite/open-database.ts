import Database from 'better-sqlite3';

let addon: string | undefined | null = null;
/**
 * better-sqlite3's native addon by its path in the package, resolved once: without it the package
 * finds the addon with the `bindings` package, which stats a dozen candidate paths on every first
 * open and looks for them from its caller's file (so a bundle of the CLI could not use it).
 * Undefined when the package has no Release build there: then `bindings` searches as usual.
 */
function nativeBinding(): string | undefined {
  if (addon === null) {
    try {
      addon = require.resolve('better-sqlite3/build/Release/better_sqlite3.node');
    } catch {
      addon = undefined;
    }
  }
  return addon;
}

/** Opens a SQLite database with better-sqlite3 (every open in this repository goes through here). */
export function openDatabase(path: string, opts: Database.Options = {}): Database.Database {
  const b = nativeBinding();
  return new Database(path, b ? { ...opts, nativeBinding: b } : opts);
}
