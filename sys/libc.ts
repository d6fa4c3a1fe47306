/**
 * The one libc binding of ringhttpd: one symbol table, one
 * `Deno.dlopen("libc.so.6")` per thread, typed symbols. Every module that
 * calls libc (sockets and epoll in `workers/_libc.ts`, TLS socket fixes in
 * `workers/_tls_fd.ts`, raw file names in `http/_rawfs.ts`, process groups in
 * `cli/lifecycle.ts`, `madvise` in `workers/_slab.ts`) takes its symbols from
 * here. Linux x86_64/aarch64 only; needs `--allow-ffi`.
 *
 * Two ways in: {@linkcode libc} throws Deno's own error when FFI is not
 * allowed (callers that checked first, e.g. the acceptor), and
 * {@linkcode tryLibc} answers null where libc cannot be had (not Linux, no
 * FFI permission, no `libc.so.6`), for callers with a fallback.
 *
 * Every call is a synchronous FFI call, so it runs on the calling thread and
 * `errno` (thread-local, read through `__errno_location`) belongs to it.
 *
 * @module
 */

/** Every libc function ringhttpd calls, with its C signature. */
const SYMBOLS = {
  // Sockets (acceptor, workers, TLS fixes, access log).
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  // The epoll worker loop.
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_wait_async: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  sendfile: { parameters: ["i32", "i32", "buffer", "usize"], result: "isize" },
  // Raw (non-UTF-8) file names.
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  realpath: { parameters: ["buffer", "buffer"], result: "pointer" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir64: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  dirfd: { parameters: ["pointer"], result: "i32" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // Exported by glibc >= 2.30 / 2.33; without them rawEachEntry() reports "unavailable".
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize", optional: true },
  fstatat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32", optional: true },
  // Process groups (the CLI's wrapper watch).
  getpgrp: { parameters: [], result: "i32" },
  getpgid: { parameters: ["i32"], result: "i32" },
  // Memory (the slab gives freed chunks' pages back).
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  // Listeners (net: unix sockets, socket activation).
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
} as const;

/** The typed libc symbols. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | undefined;
/** tryLibc's answer: undefined until asked, null when libc cannot be had. */
let tried: Libc | null | undefined;

/**
 * libc's symbols, opened on first use in this thread.
 *
 * @returns The symbols.
 * @throws Deno's error when FFI is not permitted or `libc.so.6` is missing.
 * @example
 * ```ts ignore
 * import { libc } from "./libc.ts";
 * libc().close(-1);
 * ```
 */
export function libc(): Libc {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

/**
 * libc's symbols, or null where they cannot be had (not Linux, no
 * `--allow-ffi`, no `libc.so.6`, e.g. musl); asks once per thread.
 *
 * @returns The symbols, or null.
 * @example
 * ```ts ignore
 * import { tryLibc } from "./libc.ts";
 * const pgrp = tryLibc()?.getpgrp();
 * ```
 */
export function tryLibc(): Libc | null {
  if (tried !== undefined) return tried;
  tried = null;
  if (Deno.build.os !== "linux") return tried;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return tried;
  try {
    tried = libc();
  } catch {
    // No libc.so.6 here: the caller's fallback applies.
  }
  return tried;
}

/**
 * The calling thread's errno.
 *
 * @returns The errno of the last failed call on this thread.
 */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/**
 * What an errno means (libc's `strerror`).
 *
 * @param code The errno.
 * @returns The message, e.g. "Address already in use".
 */
export function strerror(code: number): string {
  const p = libc().strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}
