/* json.h: the small strict JSON reader behind safetensors.c (internal to runtime/).
 *
 * Why not cJSON: the runtime is linked into every compiled model (`migc compile`), and a
 * shared object may need only libc, libm, zlib and OpenBLAS at run time; Debian ships cJSON
 * as a shared library only, so the runtime cannot carry it. A safetensors header needs
 * little of JSON, and a reader made for untrusted files is easier to keep strict here:
 * RFC 8259 grammar only (no comments, no trailing commas, no leading zeros or '+'),
 * strings valid UTF-8 with escapes decoded (a "\u0000" or a lone surrogate is refused,
 * since names are C strings), nesting at most JSON_MAX_DEPTH deep, and every count
 * bounded by the text's length, so a hostile header cannot make it loop, recurse or
 * allocate without bound. Duplicate keys are kept; the caller decides. */
#ifndef MIGC_RUNTIME_JSON_H
#define MIGC_RUNTIME_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
               JSON_OBJECT } json_type;

typedef struct json_value {
  json_type type;
  char *key;              /* the member's name inside an object, else NULL */
  char *str;              /* JSON_STRING: decoded, NUL-terminated */
  double num;             /* JSON_NUMBER: its value (strtod) */
  struct json_value *child, *next; /* arrays and objects: first element, then siblings */
  int count;              /* arrays and objects: number of elements */
} json_value;

/* Parses text[0..len) as one JSON value followed by nothing but whitespace (' ', \t,
 * \n, \r). Returns the tree (free with json_free) or NULL with *err_at the byte offset
 * of the first character that does not fit (len - 1 when the text ends early) and
 * *trailing true when the value itself was fine but text follows it; *depth_exceeded
 * true when nesting passed JSON_MAX_DEPTH. */
json_value *json_parse(const char *text, size_t len, size_t *err_at, bool *trailing,
                       bool *depth_exceeded);
void json_free(json_value *v);

/* Appends s as a JSON string literal (quotes, escapes for '"', '\\' and control
 * characters; other bytes as they are) to buf[*len..cap), growing buf with realloc.
 * Returns false when out of memory. */
bool json_put_string(char **buf, size_t *len, size_t *cap, const char *s);
/* Appends raw text. */
bool json_put(char **buf, size_t *len, size_t *cap, const char *text);

#endif
