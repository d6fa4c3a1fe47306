/**
 * Every size limit of the HTTP/1.1 engine, in one place. Exactly N bytes is
 * accepted; N + 1 is rejected with the status named beside each constant.
 *
 * @module
 */

/** Request line (method SP target SP version), without its CRLF. Longer -> 414. */
export const MAX_REQUEST_LINE = 8192;

/**
 * Header field lines, each counted with its CRLF, without the request line and
 * without the empty line that ends the head. Larger -> 431.
 */
export const MAX_HEADER_BLOCK = 16384;

/** Number of header field lines. More -> 431. */
export const MAX_HEADERS = 100;

/** Method token length. Longer -> 501 (RFC 9112 sec. 3: longer than any we implement). */
export const MAX_METHOD = 16;

/**
 * A request body (we take none) of at most this many bytes is read and thrown
 * away so the connection can be kept; a larger Content-Length -> 413 and close.
 */
export const MAX_DISCARD_BODY = 65536;

/**
 * A Content-Length with more significant digits than this is refused as too
 * large (413) without arithmetic (RFC 9112 sec. 6.2: anticipate large numerals).
 */
export const MAX_CONTENT_LENGTH_DIGITS = 15;

/**
 * A chunk-size line of a chunked request body (size, extensions, without the
 * CRLF). Longer -> 413 (RFC 9112 sec. 7.1.1: limit chunk extensions).
 */
export const MAX_CHUNK_LINE = 4096;

/**
 * Bytes of a chunked request body as sent (framing, extensions and trailer
 * included); its decoded data is bounded by MAX_DISCARD_BODY. Larger -> 413.
 */
export const MAX_CHUNKED_BODY = 2 * MAX_DISCARD_BODY;
