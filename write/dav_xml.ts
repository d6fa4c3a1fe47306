/**
 * The XML of WebDAV requests and replies (RFC 4918 sec. 14). Request bodies
 * are parsed with the `fast-xml-parser` package, with entity processing off,
 * a size cap, and any DOCTYPE refused before parsing (so no entity, internal
 * or external, is ever expanded: no "billion laughs", no file disclosure);
 * namespaces are resolved here (the parser keeps prefixes as written).
 * Replies are written as strings with every name and value escaped.
 *
 * @module
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";

/** Largest request body we parse, bytes (a PROPFIND of every DAV property is ~1 KiB). */
export const MAX_XML_BYTES = 65536;

/** The DAV: namespace. */
export const DAV = "DAV:";

/** A property name: namespace URI and local name. */
export interface PropName {
  /** The namespace URI (`DAV:` for the standard ones, "" for none). */
  ns: string;
  /** The local name. */
  name: string;
}

/** What a PROPFIND asks for (RFC 4918 sec. 9.1). */
export type PropfindRequest =
  | { kind: "allprop" }
  | { kind: "propname" }
  | { kind: "prop"; props: PropName[] };

/** A body that is not the XML we expect; `status` is what the client gets. */
export class XmlError extends Error {
  /** 400 (malformed), 413 (too large), 415 (not XML). */
  readonly status: number;
  /**
   * @param status the status to answer
   * @param message why
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "XmlError";
    this.status = status;
  }
}

/** One element: resolved name and children, in order. */
interface Element {
  ns: string;
  name: string;
  children: Element[];
}

type Node = Record<string, unknown> & { ":@"?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  trimValues: true,
});

/**
 * Parses an XML body into its root element with resolved namespaces.
 *
 * @param bytes the body
 * @returns the root element
 * @throws {XmlError} too large, not UTF-8, a DOCTYPE, malformed, an unbound prefix
 */
function parseXml(bytes: Uint8Array): Element {
  if (bytes.length > MAX_XML_BYTES) throw new XmlError(413, "XML body too large");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new XmlError(400, "XML body is not UTF-8");
  }
  // Entities are never expanded: refuse any document type declaration outright.
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new XmlError(400, "DOCTYPE not allowed");
  if (XMLValidator.validate(text) !== true) throw new XmlError(400, "malformed XML");
  const nodes = parser.parse(text) as Node[];
  const roots = nodes.filter((n) => elementKey(n) !== undefined);
  if (roots.length !== 1) throw new XmlError(400, "XML body needs one root element");
  return resolve(roots[0], new Map([["xml", "http://www.w3.org/XML/1998/namespace"]]));
}

function elementKey(n: Node): string | undefined {
  for (const k of Object.keys(n)) if (k !== ":@" && k !== "#text" && k !== "#comment") return k;
  return undefined;
}

function resolve(n: Node, scope: Map<string, string>): Element {
  const key = elementKey(n)!;
  const attrs = n[":@"] ?? {};
  let inner = scope;
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "xmlns" || k.startsWith("xmlns:")) {
      if (inner === scope) inner = new Map(scope);
      inner.set(k === "xmlns" ? "" : k.slice(6), String(v));
    }
  }
  const colon = key.indexOf(":");
  const prefix = colon < 0 ? "" : key.slice(0, colon);
  const ns = inner.get(prefix);
  if (ns === undefined && prefix !== "") throw new XmlError(400, `unbound prefix ${prefix}`);
  const children: Element[] = [];
  for (const c of (n[key] as Node[]) ?? []) {
    if (elementKey(c) !== undefined) children.push(resolve(c, inner));
  }
  return { ns: ns ?? "", name: colon < 0 ? key : key.slice(colon + 1), children };
}

function isDav(e: Element, name: string): boolean {
  return e.ns === DAV && e.name === name;
}

/**
 * Reads a PROPFIND body: empty means `allprop` (RFC 4918 sec. 9.1).
 *
 * @param body the body bytes (empty: none sent)
 * @returns what is asked for
 * @throws {XmlError} for a body that is not a propfind
 * @example
 * ```ts
 * import { parsePropfind } from "./dav_xml.ts";
 * import assert from "node:assert/strict";
 *
 * const body = new TextEncoder().encode(
 *   '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>',
 * );
 * assert.deepEqual(parsePropfind(body), { kind: "prop", props: [{ ns: "DAV:", name: "getetag" }] });
 * assert.deepEqual(parsePropfind(new Uint8Array()), { kind: "allprop" });
 * ```
 */
export function parsePropfind(body: Uint8Array): PropfindRequest {
  if (body.length === 0) return { kind: "allprop" };
  const root = parseXml(body);
  if (!isDav(root, "propfind")) throw new XmlError(400, "not a DAV:propfind");
  for (const c of root.children) {
    if (isDav(c, "allprop")) return { kind: "allprop" };
    if (isDav(c, "propname")) return { kind: "propname" };
    if (isDav(c, "prop")) {
      return { kind: "prop", props: c.children.map((p) => ({ ns: p.ns, name: p.name })) };
    }
  }
  throw new XmlError(400, "propfind without prop, allprop or propname");
}

/**
 * Reads a PROPPATCH body: the properties it would set or remove.
 *
 * @param body the body bytes
 * @returns every property named, in order
 * @throws {XmlError} for a body that is not a propertyupdate
 */
export function parseProppatch(body: Uint8Array): PropName[] {
  if (body.length === 0) throw new XmlError(400, "PROPPATCH needs a body");
  const root = parseXml(body);
  if (!isDav(root, "propertyupdate")) throw new XmlError(400, "not a DAV:propertyupdate");
  const out: PropName[] = [];
  for (const op of root.children) {
    if (!isDav(op, "set") && !isDav(op, "remove")) continue;
    for (const prop of op.children) {
      if (!isDav(prop, "prop")) continue;
      for (const p of prop.children) out.push({ ns: p.ns, name: p.name });
    }
  }
  return out;
}

/**
 * Escapes text for XML content and attribute values.
 *
 * @param s the text
 * @returns the escaped text
 */
export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) =>
      c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === "&"
        ? "&amp;"
        : c === '"'
        ? "&quot;"
        : "&apos;",
  );
}

/**
 * An empty element for a property of any namespace (`D:` for DAV:, else a
 * local declaration), as a 404 or 403 propstat lists it.
 *
 * @param p the property name
 * @returns the element's XML
 */
export function emptyProp(p: PropName): string {
  if (p.ns === DAV) return `<D:${p.name}/>`;
  if (p.ns === "") return `<${p.name} xmlns=""/>`;
  // Names came through the parser as XML names: safe as written; the URI is escaped.
  return `<x:${p.name} xmlns:x="${escapeXml(p.ns)}"/>`;
}
