/* json.c: the strict JSON reader and the string writer of json.h. A recursive-descent
 * parser over a length-delimited buffer; recursion depth is capped at JSON_MAX_DEPTH. */
#include "runtime/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *s;
  size_t len, at;
  bool deep;
} parser;

static void skip_ws(parser *p) {
  while (p->at < p->len &&
         (p->s[p->at] == ' ' || p->s[p->at] == '\t' || p->s[p->at] == '\n' || p->s[p->at] == '\r'))
    p->at++;
}

static bool lit(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->at < n || memcmp(p->s + p->at, word, n)) return false;
  p->at += n;
  return true;
}

static int hex4(parser *p) {
  if (p->len - p->at < 4) return -1;
  int v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p->s[p->at + (size_t)k];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  p->at += 4;
  return v;
}

/* A string at p->at (which is '"'); the decoded text is never longer than the source. */
static char *parse_string(parser *p) {
  size_t start = ++p->at, n = 0;
  char *out = malloc(p->len - start + 1);
  if (!out) return NULL;
  while (p->at < p->len) {
    unsigned char c = (unsigned char)p->s[p->at];
    if (c == '"') {
      p->at++;
      out[n] = '\0';
      return out;
    }
    if (c < 0x20) break; /* control characters must be escaped */
    if (c != '\\') {
      out[n++] = (char)c;
      p->at++;
      continue;
    }
    if (++p->at >= p->len) break;
    char e = p->s[p->at++];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      out[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      continue;
    }
    if (e != 'u') {
      p->at--;
      break;
    }
    int cp = hex4(p);
    if (cp < 0 || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff)) break;
    if (cp >= 0xd800 && cp <= 0xdbff) { /* a surrogate pair */
      if (p->len - p->at < 2 || p->s[p->at] != '\\' || p->s[p->at + 1] != 'u') break;
      p->at += 2;
      int lo = hex4(p);
      if (lo < 0xdc00 || lo > 0xdfff) break;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    /* UTF-8: an escape of 6 (or 12) source bytes becomes at most 4 */
    if (cp < 0x80) {
      out[n++] = (char)cp;
    } else if (cp < 0x800) {
      out[n++] = (char)(0xc0 | cp >> 6);
      out[n++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out[n++] = (char)(0xe0 | cp >> 12);
      out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
      out[n++] = (char)(0x80 | (cp & 0x3f));
    } else {
      out[n++] = (char)(0xf0 | cp >> 18);
      out[n++] = (char)(0x80 | (cp >> 12 & 0x3f));
      out[n++] = (char)(0x80 | (cp >> 6 & 0x3f));
      out[n++] = (char)(0x80 | (cp & 0x3f));
    }
  }
  free(out);
  return NULL;
}

static bool digits(parser *p) {
  size_t start = p->at;
  while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') p->at++;
  return p->at > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool parse_number(parser *p, double *v) {
  size_t start = p->at;
  if (p->s[p->at] == '-') p->at++;
  if (p->at < p->len && p->s[p->at] == '0') {
    p->at++;
  } else if (!digits(p)) {
    return false;
  }
  if (p->at < p->len && p->s[p->at] == '.') {
    p->at++;
    if (!digits(p)) return false;
  }
  if (p->at < p->len && (p->s[p->at] == 'e' || p->s[p->at] == 'E')) {
    p->at++;
    if (p->at < p->len && (p->s[p->at] == '+' || p->s[p->at] == '-')) p->at++;
    if (!digits(p)) return false;
  }
  size_t n = p->at - start;
  char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
  if (!buf) return false;
  memcpy(buf, p->s + start, n);
  buf[n] = '\0';
  *v = strtod(buf, NULL);
  if (buf != small) free(buf);
  return true;
}

static json_value *parse_value(parser *p, int depth);

/* The elements of an array or the members of an object, after its opening bracket. */
static bool parse_items(parser *p, json_value *v, int depth, char close) {
  json_value **tail = &v->child;
  skip_ws(p);
  if (p->at < p->len && p->s[p->at] == close) {
    p->at++;
    return true;
  }
  for (;;) {
    char *key = NULL;
    if (close == '}') {
      skip_ws(p);
      if (p->at >= p->len || p->s[p->at] != '"' || !(key = parse_string(p))) return false;
      skip_ws(p);
      if (p->at >= p->len || p->s[p->at] != ':') {
        free(key);
        return false;
      }
      p->at++;
    }
    json_value *item = parse_value(p, depth + 1);
    if (!item) {
      free(key);
      return false;
    }
    item->key = key;
    *tail = item;
    tail = &item->next;
    v->count++;
    skip_ws(p);
    if (p->at >= p->len) return false;
    char c = p->s[p->at];
    if (c == close) {
      p->at++;
      return true;
    }
    if (c != ',') return false;
    p->at++;
  }
}

static json_value *parse_value(parser *p, int depth) {
  if (depth > JSON_MAX_DEPTH) {
    p->deep = true;
    return NULL;
  }
  skip_ws(p);
  if (p->at >= p->len) return NULL;
  json_value *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  char c = p->s[p->at];
  bool ok;
  if (c == '{' || c == '[') {
    v->type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
    p->at++;
    ok = parse_items(p, v, depth, c == '{' ? '}' : ']');
  } else if (c == '"') {
    v->type = JSON_STRING;
    ok = (v->str = parse_string(p)) != NULL;
  } else if (c == '-' || (c >= '0' && c <= '9')) {
    v->type = JSON_NUMBER;
    ok = parse_number(p, &v->num);
  } else if (c == 't') {
    v->type = JSON_TRUE;
    ok = lit(p, "true");
  } else if (c == 'f') {
    v->type = JSON_FALSE;
    ok = lit(p, "false");
  } else {
    v->type = JSON_NULL;
    ok = lit(p, "null");
  }
  if (!ok) {
    json_free(v);
    return NULL;
  }
  return v;
}

json_value *json_parse(const char *text, size_t len, size_t *err_at, bool *trailing,
                       bool *depth_exceeded) {
  parser p = {text, len, 0, false};
  *trailing = false;
  *depth_exceeded = false;
  json_value *v = parse_value(&p, 1);
  if (v) {
    skip_ws(&p);
    if (p.at == len) return v;
    *trailing = true;
    json_free(v);
  }
  *depth_exceeded = p.deep;
  *err_at = p.at < len ? p.at : len ? len - 1 : 0;
  return NULL;
}

void json_free(json_value *v) {
  /* siblings iteratively, children recursively: depth is bounded by the parser */
  while (v) {
    json_value *next = v->next;
    json_free(v->child);
    free(v->key);
    free(v->str);
    free(v);
    v = next;
  }
}

bool json_put(char **buf, size_t *len, size_t *cap, const char *text) {
  size_t n = strlen(text);
  if (*len + n + 1 > *cap) {
    size_t nc = (*len + n + 1) * 2;
    char *nb = realloc(*buf, nc);
    if (!nb) return false;
    *buf = nb, *cap = nc;
  }
  memcpy(*buf + *len, text, n + 1);
  *len += n;
  return true;
}

bool json_put_string(char **buf, size_t *len, size_t *cap, const char *s) {
  if (!json_put(buf, len, cap, "\"")) return false;
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char esc[8] = {(char)*c, 0};
    switch (*c) {
    case '"': strcpy(esc, "\\\""); break;
    case '\\': strcpy(esc, "\\\\"); break;
    case '\b': strcpy(esc, "\\b"); break;
    case '\f': strcpy(esc, "\\f"); break;
    case '\n': strcpy(esc, "\\n"); break;
    case '\r': strcpy(esc, "\\r"); break;
    case '\t': strcpy(esc, "\\t"); break;
    default:
      if (*c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", *c);
    }
    if (!json_put(buf, len, cap, esc)) return false;
  }
  return json_put(buf, len, cap, "\"");
}
