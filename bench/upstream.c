/* Fixed-response HTTP/1.1 upstream for `make bench`: one thread, epoll, keep-alive, pipelining.
 *
 * Cheaper per request than an Envoy direct_response, so on a 2-core machine the core it shares
 * with wrk is not the bottleneck of the bare-Envoy runs. Answers every request with a canned MCP
 * tools/call result and echoes the Mcp-Method / Mcp-Name it received as x-upstream-mcp-method /
 * x-upstream-mcp-name (empty when absent), which is how bench/run.py checks that the filter
 * derived them. The result also carries a `tools` list naming the bench's tool, so a tools/list
 * through the filter (callgrind_envoy.py --learn-tools) teaches it a baseline, and the tools/call
 * that follow take the "known tool" path of the call-time check.
 *
 * A request with an `x-bench-result: 10k` header is answered with a 10 KB result instead: clean,
 * realistic text (log lines with request ids, timestamps, hashes and prose, JSON-escaped
 * newlines included), the "10 KB tool result" workload of the content scan (payload `result10k`).
 * With `x-bench-result: sse` the answer is an SSE stream (text/event-stream): three
 * notifications/progress for token "bench-1" and then the small result (payload `sse`).
 *
 *   cc -O2 -o target/bench/upstream bench/upstream.c && target/bench/upstream <port>
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF (256 * 1024)
#define MAXFD 4096

static const char SMALL_BODY[] =
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"text\":\"echo: hello\",\"type\":\"text\"}],"
    "\"isError\":false,\"resultType\":\"complete\",\"structuredContent\":{\"result\":\"echo: hello\"},"
    "\"tools\":[{\"name\":\"search_documents\",\"description\":\"Searches documents.\",\"inputSchema\":{\"type\":\"object\"}}],"
    "\"_meta\":{\"io.modelcontextprotocol/serverInfo\":{\"name\":\"bench-upstream\",\"version\":\"0.1.0\"}}}}";

#define PROGRESS(i) \
    "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":" \
    "{\"progressToken\":\"bench-1\",\"progress\":" #i ",\"total\":3,\"message\":\"step " #i "\"}}\n\n"
static const char SSE_BODY[] = PROGRESS(1) PROGRESS(2) PROGRESS(3) "event: message\ndata: ";

/* The 10 KB answer, built at start-up. */
static char *BIG_BODY;
static size_t BIG_LEN;

/* One line of clean tool output, as JSON string content (newline escaped). */
static const char LINE[] =
    "2026-12-01T17:47:37.512Z INFO request 7c9e6679-7425-40de-944b-e07fc1f90ae7 GET /api/v1/documents?page=3 "
    "200 in 12 ms; commit 9fceb02d0ae598e95dc970b74767f19372d61af8, user ann, region eu-west-1.\\n"
    "The search found twelve documents about quarterly planning; the newest was updated by the finance team "
    "and links the budget sheet, the roadmap and two meeting notes.\\n";

static void build_body(int kb) {
    size_t want = (size_t)kb * 1024, line = sizeof LINE - 1;
    size_t cap = want + line + 1024;
    char *b = malloc(cap);
    if (!b) return;
    size_t n = (size_t)snprintf(b, cap, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"");
    while (n + line < want) {
        memcpy(b + n, LINE, line);
        n += line;
    }
    n += (size_t)snprintf(b + n, cap - n, "\"}],\"isError\":false,\"resultType\":\"complete\"}}");
    BIG_BODY = b;
    BIG_LEN = n;
}

struct conn {
    char *in, *out;
    size_t in_len, out_len;
};
static struct conn conns[MAXFD];

/* Value of header `name` (lowercase, with ':') inside [hdr, hdr+len), or NULL; *vlen set. */
static const char *header(const char *hdr, size_t len, const char *name, size_t *vlen) {
    size_t n = strlen(name);
    for (const char *p = hdr; p + n < hdr + len;) {
        const char *eol = memmem(p, hdr + len - p, "\r\n", 2);
        if (!eol) eol = hdr + len;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0) {
            const char *v = p + n;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

static void closeconn(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    conns[fd].in_len = conns[fd].out_len = 0;
}

static int flush(int ep, int fd) {
    struct conn *c = &conns[fd];
    while (c->out_len) {
        ssize_t w = write(fd, c->out, c->out_len);
        if (w < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
                return 0;
            }
            return -1;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    return 0;
}

/* Answers every complete request in the input buffer. */
static void serve(struct conn *c) {
    size_t off = 0;
    for (;;) {
        char *start = c->in + off;
        size_t avail = c->in_len - off;
        char *end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end) break;
        size_t hlen = (size_t)(end - start) + 4, vlen = 0, total;
        const char *v;
        if ((v = header(start, hlen, "content-length:", &vlen))) {
            total = hlen + strtoul(v, NULL, 10);
        } else if ((v = header(start, hlen, "transfer-encoding:", &vlen)) && vlen >= 7) {
            char *z = memmem(start + hlen - 2, avail - hlen + 2, "\r\n0\r\n\r\n", 7);
            if (!z) break;
            total = (size_t)(z - start) + 7;
        } else {
            total = hlen;
        }
        if (avail < total) break;
        size_t ml = 0, nl = 0;
        const char *m = header(start, hlen, "mcp-method:", &ml);
        const char *n = header(start, hlen, "mcp-name:", &nl);
        size_t bl = 0;
        const char *kind = header(start, hlen, "x-bench-result:", &bl);
        int sse = kind && bl == 3 && strncasecmp(kind, "sse", 3) == 0;
        int big = !sse && kind && BIG_BODY;
        const char *BODY = big ? BIG_BODY : SMALL_BODY;
        size_t BODY_LEN = big ? BIG_LEN : sizeof SMALL_BODY - 1;
        /* SSE: the progress events, then the result as the last event. */
        const char *pre = sse ? SSE_BODY : "", *post = sse ? "\n\n" : "";
        size_t len = (sse ? sizeof SSE_BODY - 1 + 2 : 0) + BODY_LEN;
        if (c->out_len + 1024 + len < BUF) {
            c->out_len += (size_t)snprintf(c->out + c->out_len, BUF - c->out_len,
                "HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                "x-upstream-mcp-method: %.*s\r\nx-upstream-mcp-name: %.*s\r\n\r\n%s%s%s",
                sse ? "text/event-stream" : "application/json", len,
                (int)(m ? ml : 0), m ? m : "", (int)(n ? nl : 0), n ? n : "", pre, BODY, post);
        }
        off += total;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    build_body(10);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    fprintf(stderr, "upstream listening on 127.0.0.1:%d\n", port);
    for (;;) {
        int k = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAXFD) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (!conns[c].in) { conns[c].in = malloc(BUF); conns[c].out = malloc(BUF); }
                    conns[c].in_len = conns[c].out_len = 0;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            struct conn *c = &conns[fd];
            if (evs[i].events & EPOLLIN) {
                ssize_t r = read(fd, c->in + c->in_len, BUF - c->in_len);
                if (r == 0 || (r < 0 && errno != EAGAIN) || (c->in_len == BUF)) { closeconn(ep, fd); continue; }
                if (r > 0) { c->in_len += (size_t)r; serve(c); }
            }
            if (c->out_len && flush(ep, fd) < 0) closeconn(ep, fd);
            else if (!c->out_len && (evs[i].events & EPOLLOUT)) flush(ep, fd);
            if (evs[i].events & (EPOLLHUP | EPOLLERR)) closeconn(ep, fd);
        }
    }
}
