/**
 * The config file (`--config ringhttpd.jsonc`): JSON with comments and
 * trailing commas, parsed by `jsonc-parser`. Its keys are the flags' keys of
 * {@linkcode FLAGS} (camelCase: `"headerTimeout": 2.5` is
 * `--header-timeout 2.5`), plus `rules`, a list of per-path rules:
 *
 * ```jsonc
 * {
 *   "root": "public",            // relative to this file
 *   "port": 8080,
 *   "headers": { "X-Frame-Options": "DENY" },
 *   "rules": [
 *     { "path": "/assets/**", "headers": { "Cache-Control": "max-age=31536000, immutable" } }
 *   ]
 * }
 * ```
 *
 * Every mistake (syntax, unknown key, wrong type, bad value) is a
 * {@linkcode ConfigError} naming the file, the key path and the value.
 * File names in the file (`root`, `cert`, `key`, `accessLog`) are relative to
 * the file's own folder.
 *
 * @module
 */
import { parse, type ParseError, printParseErrorCode } from "jsonc-parser";
import { BOOL, BY_KEY, type PathRule, type Settings } from "./flags.ts";
import { headerProblem, OptionError, show } from "./resolve.ts";
import { dirname, resolve } from "node:path";
import { checkRedirects } from "./redirects.ts";

/** A config file mistake; the message starts with the file name. */
export class ConfigError extends Error {
  /** @param message `FILE: what was wrong, with the value` */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
/** `a.b`, `a["X-Y"]`, `a[0]`. */
function keyPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  if (!IDENT.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function checkHeaders(value: unknown, at: string): Record<string, string> {
  if (!isObject(value)) throw new OptionError(at, 'an object of "Name": "value"', value);
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    const problem = headerProblem(name, v);
    if (problem !== undefined) {
      throw new RangeError(`${keyPath(at, name)} ${problem}, got ${show(v)}`);
    }
    out[name] = v as string;
  }
  return out;
}

/** The keys a path rule may have. */
const RULE_KEYS = ["path", "access", "list", "headers", "cacheControl", "hidden"];

/** A rule's headers: `"Name": "value"` adds, `"Name": null` removes (not one the server owns). */
function checkRuleHeaders(value: unknown, at: string): Record<string, string | null> {
  if (!isObject(value)) throw new OptionError(at, 'an object of "Name": "value" or null', value);
  const out: Record<string, string | null> = {};
  for (const [name, v] of Object.entries(value)) {
    const problem = headerProblem(name, v === null ? "" : v);
    if (problem !== undefined) {
      throw new RangeError(`${keyPath(at, name)} ${problem}, got ${show(v)}`);
    }
    out[name] = v as string | null;
  }
  return out;
}

/** A URL path pattern: absolute; "**" only as a whole segment; no ".", "..", query or fragment. */
function isPattern(path: unknown): boolean {
  return typeof path === "string" && path.startsWith("/") && !/[\s?#\\]/.test(path) &&
    path.split("/").every((seg) =>
      seg !== ".." && seg !== "." && (seg === "**" || !seg.includes("**"))
    );
}

function checkRules(value: unknown): PathRule[] {
  if (!Array.isArray(value)) throw new OptionError("rules", "an array of path rules", value);
  return value.map((rule, i) => {
    const at = keyPath("rules", i);
    if (!isObject(rule)) throw new OptionError(at, 'an object like { "path": "/docs/**" }', rule);
    for (const k of Object.keys(rule)) {
      if (!RULE_KEYS.includes(k)) {
        throw new RangeError(
          `${keyPath(at, k)} is not a rule key (known: ${RULE_KEYS.join(", ")}), got ${
            show(rule[k])
          }`,
        );
      }
    }
    const path = rule.path;
    if (!isPattern(path)) {
      throw new OptionError(
        keyPath(at, "path"),
        'a URL path pattern starting with "/" ("*" within a name, "**" for any depth)',
        path,
      );
    }
    const out: PathRule = { path: path as string };
    if (rule.headers !== undefined) {
      out.headers = checkRuleHeaders(rule.headers, keyPath(at, "headers"));
    }
    // access (#13): who may read, listings, Cache-Control, hidden.
    if (rule.access !== undefined) {
      const a = rule.access;
      const names = Array.isArray(a) && a.length > 0 &&
        a.every((n) => typeof n === "string" && n !== "" && !n.includes(":"));
      if (a !== "public" && a !== "deny" && !names) {
        throw new OptionError(
          keyPath(at, "access"),
          '"public", "deny" or a non-empty list of user and token names',
          a,
        );
      }
      out.access = a as PathRule["access"];
    }
    for (const k of ["list", "hidden"] as const) {
      if (rule[k] !== undefined) {
        if (typeof rule[k] !== "boolean") {
          throw new OptionError(keyPath(at, k), "true or false", rule[k]);
        }
        out[k] = rule[k] as boolean;
      }
    }
    if (rule.cacheControl !== undefined) {
      const problem = headerProblem("Cache-Control", rule.cacheControl);
      if (problem !== undefined) {
        throw new RangeError(
          `${keyPath(at, "cacheControl")} ${problem}, got ${show(rule.cacheControl)}`,
        );
      }
      out.cacheControl = rule.cacheControl as string;
    }
    return out;
  });
}

/**
 * Checks a parsed config object: every key known, every value of the right
 * type and range.
 *
 * @param value the parsed JSON
 * @param baseDir the folder relative file names are taken from
 * @returns the settings (file names made absolute)
 * @throws {RangeError} ({@linkcode OptionError}) naming the key path and the value
 *
 * @example
 * ```ts
 * import { checkConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(checkConfig({ port: 8080, cors: true }, "/"), { port: 8080, cors: true });
 * assert.throws(() => checkConfig({ prot: 1 }, "/"), /unknown key "prot"/);
 * ```
 */
export function checkConfig(value: unknown, baseDir: string): Settings {
  if (!isObject(value)) throw new OptionError("the top level", "an object { ... }", value);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === "$schema") continue;
    if (key === "rules") {
      out.rules = checkRules(v);
      continue;
    }
    if (key === "redirects") {
      // site rules (#13)
      out.redirects = checkRedirects(v);
      continue;
    }
    if (key === "root") {
      if (typeof v !== "string" || v === "") throw new OptionError("root", "a directory path", v);
      out.root = resolve(baseDir, v);
      continue;
    }
    const flag = BY_KEY.get(key);
    if (flag === undefined) {
      throw new RangeError(
        `unknown key ${JSON.stringify(key)} (value ${show(v)}); known keys: root, ${
          [...BY_KEY.keys()].join(", ")
        }, rules, redirects`,
      );
    }
    if (key === "headers") {
      out.headers = checkHeaders(v, "headers");
      continue;
    }
    const rule = flag.rule ?? BOOL;
    if (!rule.ok(v)) throw new OptionError(key, rule.what, v);
    out[key] = flag.isPath ? resolve(baseDir, v as string) : v;
  }
  return out as Settings;
}

/** 1-based line and column of `offset` in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

/**
 * Reads and checks a config file.
 *
 * @param file its path (relative to the current directory)
 * @returns the settings it holds
 * @throws {ConfigError} when it cannot be read, is not JSONC, or holds a bad key or value
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/r.jsonc`, '{ "port": 1, /* comment *\/ }');
 * console.assert((await loadConfig(`${dir}/r.jsonc`)).port === 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadConfig(file: string): Promise<Settings> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.NotCapable
      ? "run with --allow-read"
      : (e as Error).message;
    throw new ConfigError(`cannot read config file ${JSON.stringify(file)}: ${why}`);
  }
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const e = errors[0];
    throw new ConfigError(
      `${file}:${lineColumn(text, e.offset)}: not valid JSONC: ${printParseErrorCode(e.error)}`,
    );
  }
  try {
    return checkConfig(value, dirname(resolve(file)));
  } catch (e) {
    if (e instanceof RangeError) throw new ConfigError(`${file}: ${e.message}`);
    throw e;
  }
}
