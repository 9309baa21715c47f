/* baseurl.c: the one parser of a base_url: libcurl's (curl_url), then the
 * library's rules on its parts. mediquo.validate (through
 * core.check_base_url) and the engine (mq_engine_new) both ask it. */
#include "baseurl.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one part of u into out (cap bytes); 0 when absent, -1 when too long */
static int part(CURLU *u, CURLUPart what, char *out, size_t cap)
{
    char *v = NULL;
    size_t n;

    if (curl_url_get(u, what, &v, 0) != CURLUE_OK || v == NULL)
        return 0;
    n = strlen(v);
    if (n >= cap) {
        curl_free(v);
        return -1;
    }
    memcpy(out, v, n + 1);
    curl_free(v);
    return 1;
}

/* [A-Za-z0-9.-]+, or an IPv6 address in brackets */
static int host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0)
        return 0;
    if (h[0] == '[')
        return n > 2 && h[n - 1] == ']' && strspn(h + 1, "0123456789abcdefABCDEF:.") == n - 2;
    return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

/* "d+" at *p: past it, or NULL */
static const char *digits(const char *p)
{
    size_t n = strspn(p, "0123456789");
    return n > 0 ? p + n : NULL;
}

/* localhost, [::1] or 127.d+.d+.d+ */
static int loopback(const char *h)
{
    const char *p;
    if (strcmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0)
        return 1;
    if (strncmp(h, "127.", 4) != 0)
        return 0;
    p = h + 4;
    for (int i = 0; i < 3; i++) {
        if ((p = digits(p)) == NULL)
            return 0;
        if (i < 2 && *p++ != '.')
            return 0;
    }
    return *p == '\0';
}

static const char *check(CURLU *u, const char *s, size_t len, int insecure, mq_base_url *out)
{
    char tmp[MQ_BASE_URL_MAX + 1], port[8], path[MQ_BASE_URL_MAX + 1];
    const char *sep;
    CURLUcode rc;
    int has_port;
    size_t plen;
    long p;

    if (len > MQ_BASE_URL_MAX)
        return "must be at most " MQ_BASE_URL_MAX_S " bytes";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 32 || s[i] == 127)
            return "must be a URL without spaces or control characters";
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if ((sep = strstr(tmp, "://")) == NULL || sep == tmp || strchr(tmp, '?') != NULL
        || strchr(tmp, '#') != NULL)
        return "must be an http(s) URL with no query or fragment";
    if (sep[3] == '\0' || sep[3] == '/')
        return "must name a host (and no user info)";
    rc = curl_url_set(u, CURLUPART_URL, tmp, CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS);
    if (rc == CURLUE_BAD_PORT_NUMBER)
        return "has an invalid port";
    if (rc == CURLUE_NO_HOST || rc == CURLUE_BAD_LOGIN || rc == CURLUE_BAD_USER
        || rc == CURLUE_BAD_PASSWORD || rc == CURLUE_USER_NOT_ALLOWED)
        return "must name a host (and no user info)";
    if (rc == CURLUE_BAD_HOSTNAME || rc == CURLUE_BAD_IPV6)
        return "has an invalid host";
    if (rc == CURLUE_OUT_OF_MEMORY)
        return "could not be read (out of memory)";
    if (rc != CURLUE_OK)
        return "must be an http(s) URL with no query or fragment";
    if (part(u, CURLUPART_SCHEME, out->scheme, sizeof out->scheme) != 1
        || (strcmp(out->scheme, "http") != 0 && strcmp(out->scheme, "https") != 0))
        return "scheme must be https (or http for loopback)";
    if (part(u, CURLUPART_USER, tmp, sizeof tmp) != 0
        || part(u, CURLUPART_PASSWORD, tmp, sizeof tmp) != 0
        || part(u, CURLUPART_OPTIONS, tmp, sizeof tmp) != 0
        || part(u, CURLUPART_HOST, out->host, sizeof out->host) != 1)
        return "must name a host (and no user info)";
    if (!host_ok(out->host))
        return "has an invalid host";
    for (char *h = out->host; *h; h++)
        if (*h >= 'A' && *h <= 'Z')
            *h = (char)(*h - 'A' + 'a');
    has_port = part(u, CURLUPART_PORT, port, sizeof port);
    if (has_port < 0)
        return "has an invalid port";
    p = has_port ? strtol(port, NULL, 10) : strcmp(out->scheme, "https") == 0 ? 443 : 80;
    if (p < 1 || p > 65535)
        return "has an invalid port";
    out->port = (int)p;
    if (strcmp(out->scheme, "http") == 0 && !insecure && !loopback(out->host))
        return "http:// is only allowed for loopback hosts (or with insecure = true)";
    if (part(u, CURLUPART_PATH, path, sizeof path) < 0)
        return "must be a URL without spaces or control characters";
    plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    path[plen] = '\0';
    {
        int n = has_port ? snprintf(out->url, sizeof out->url, "%s://%s:%ld", out->scheme,
                                    out->host, p)
                         : snprintf(out->url, sizeof out->url, "%s://%s", out->scheme, out->host);
        if (n < 0 || (size_t)n + plen >= sizeof out->url)
            return "must be a URL without spaces or control characters";
        out->origin_len = (size_t)n;
        memcpy(out->url + n, path, plen + 1);
        out->url_len = (size_t)n + plen;
    }
    return NULL;
}

const char *mq_base_url_parse(const char *s, size_t len, int insecure, mq_base_url *out)
{
    CURLU *u;
    const char *why;

    memset(out, 0, sizeof *out);
    if (s == NULL)
        return "must be an http(s) URL with no query or fragment";
    u = curl_url();
    if (u == NULL)
        return "could not be read (out of memory)";
    why = check(u, s, len, insecure, out);
    curl_url_cleanup(u);
    return why;
}
