/* baseurl.h: the client's base_url, parsed once by libcurl's URL parser
 * (curl_url) and held to the library's rules (baseurl.c). */
#ifndef MQ_BASEURL_H
#define MQ_BASEURL_H

#include <stddef.h>

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define MQ_BASE_URL_MAX 1024    /* bytes of a base_url as given */
#define MQ_BASE_URL_MAX_S "1024"

typedef struct {
    char scheme[8];             /* "http" or "https" */
    char host[256];             /* lower case; an IPv6 address in brackets */
    int port;                   /* the given one, or the scheme's */
    char url[MQ_BASE_URL_MAX + 8];  /* scheme://authority/path, no trailing '/' */
    size_t origin_len;          /* bytes of url before the path */
    size_t url_len;
} mq_base_url;

/* NULL when s (len bytes) is a base URL the library takes, with out
 * filled; else why not (a static string, never quoting s). The rules:
 * http or https, a host and no user info, no query or fragment, a port
 * 1..65535, http only for loopback hosts unless insecure; trailing
 * slashes of the path dropped. */
const char *mq_base_url_parse(const char *s, size_t len, int insecure, mq_base_url *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
