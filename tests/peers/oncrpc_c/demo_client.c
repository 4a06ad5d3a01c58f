/*
 * A demo.x client built on rpcgen's client stubs (rpcgen -N -l) and libtirpc,
 * written for xdrgen's tests and benchmarks.
 *
 *   demo_client all HOST tcp|udp [PORT]
 *       Call every procedure of both versions with fixed arguments and print
 *       one line per call: the canonical text of the result (demo_print.c).
 *       Without PORT the server is found through rpcbind (clnt_create).
 *   demo_client bench HOST tcp|udp PORT null|add N
 *       Make N sequential calls of version 2's NULL or ADD; print
 *       "calls N ns NANOSECONDS".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <rpc/rpc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "demo.h"
#include "demo_print.h"

static int failures;

static CLIENT *connect_to(const char *host, const char *transport, int port, unsigned long vers)
{
    CLIENT *c;
    struct sockaddr_in sin;
    int sock = RPC_ANYSOCK;
    struct timeval wait = {15, 0};

    if (port <= 0) {
        c = clnt_create(host, DEMO_RPC_PROGRAM, vers, transport);
    } else {
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
            fprintf(stderr, "bad address %s\n", host);
            exit(2);
        }
        if (strcmp(transport, "udp") == 0)
            c = clntudp_create(&sin, DEMO_RPC_PROGRAM, vers, wait, &sock);
        else
            c = clnttcp_create(&sin, DEMO_RPC_PROGRAM, vers, &sock, 0, 0);
    }
    if (c == NULL) {
        clnt_pcreateerror(host);
        exit(2);
    }
    return c;
}

static int failed(CLIENT *c, const char *what)
{
    printf("%s error: %s\n", what, clnt_sperror(c, ""));
    failures++;
    return 1;
}

static void version1(CLIENT *c)
{
    int *sum;
    demo_lookup_result *r;
    const char *names[] = {"widget", "nothing"};
    int i;

    if (demo_null_1(c) == NULL) failed(c, "v1 null"); else printf("v1 null ok\n");
    if ((sum = demo_add_1(20, 22, c)) == NULL) failed(c, "v1 add");
    else printf("v1 add 20 22 = %d\n", *sum);
    for (i = 0; i < 2; i++) {
        if ((r = demo_lookup_1((char *)names[i], c)) == NULL) { failed(c, "v1 lookup"); continue; }
        printf("v1 lookup %s = ", names[i]);
        print_lookup(stdout, r);
        printf("\n");
    }
}

static void version2(CLIENT *c)
{
    quad_t *sum;
    demo_lookup_result *r;
    demo_item_ptr *found;
    demo_maybe_name *m;
    demo_option opt;
    demo_limit lim;
    const char *names[] = {"widget", "nothing"};
    int i;

    if (demo_null_2(c) == NULL) failed(c, "v2 null"); else printf("v2 null ok\n");
    if ((sum = demo_add_2((quad_t)1 << 40, -5, c)) == NULL) failed(c, "v2 add");
    else printf("v2 add 1099511627776 -5 = %lld\n", (long long)*sum);
    for (i = 0; i < 2; i++) {
        if ((r = demo_lookup_2((char *)names[i], c)) == NULL) { failed(c, "v2 lookup"); continue; }
        printf("v2 lookup %s = ", names[i]);
        print_lookup(stdout, r);
        printf("\n");
    }
    if ((found = demo_find_2("widget", DEMO_KIND_TOOL, TRUE, c)) == NULL) failed(c, "v2 find");
    else {
        printf("v2 find widget 1 1 = ");
        if (*found) print_item(stdout, *found); else printf("none");
        printf("\n");
    }
    if ((found = demo_find_2("nothing", DEMO_KIND_PART, FALSE, c)) == NULL) failed(c, "v2 find");
    else {
        printf("v2 find nothing 0 0 = ");
        if (*found) print_item(stdout, *found); else printf("none");
        printf("\n");
    }
    memset(&opt, 0, sizeof opt);
    memset(&lim, 0, sizeof lim);
    opt.key = "speed";
    opt.value.type = 2;
    opt.value.demo_setting_u.h = -7;
    lim.revision = 2;
    lim.demo_limit_u.limit64 = 9;
    if (demo_configure_2(opt, lim, c) == NULL) failed(c, "v2 configure");
    else { printf("v2 configure "); print_option(stdout, &opt); printf(" limit="); print_limit(stdout, &lim); printf(" ok\n"); }
    opt.key = "label";
    opt.value.type = 4;
    opt.value.demo_setting_u.s = "fast";
    lim.revision = 7;
    if (demo_configure_2(opt, lim, c) == NULL) failed(c, "v2 configure");
    else { printf("v2 configure "); print_option(stdout, &opt); printf(" limit="); print_limit(stdout, &lim); printf(" ok\n"); }
    if ((m = demo_first_name_2(c)) == NULL) failed(c, "v2 first_name");
    else { printf("v2 first_name = "); print_maybe_name(stdout, m); printf("\n"); }
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    CLIENT *c;
    if (argc >= 4 && strcmp(argv[1], "all") == 0) {
        int port = argc > 4 ? atoi(argv[4]) : 0;
        c = connect_to(argv[2], argv[3], port, DEMO_RPC_V1);
        version1(c);
        clnt_destroy(c);
        c = connect_to(argv[2], argv[3], port, DEMO_RPC_V2);
        version2(c);
        clnt_destroy(c);
        fflush(stdout);
        return failures ? 1 : 0;
    }
    if (argc == 7 && strcmp(argv[1], "bench") == 0) {
        long n = atol(argv[6]), i;
        int add = strcmp(argv[5], "add") == 0;
        long long t0;
        c = connect_to(argv[2], argv[3], atoi(argv[4]), DEMO_RPC_V2);
        /* One call first: connection set-up is not what is measured. */
        if (demo_null_2(c) == NULL) return failed(c, "bench warm-up");
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            if (add ? (void *)demo_add_2(i, 1, c) == NULL : demo_null_2(c) == NULL)
                return failed(c, "bench");
        }
        printf("calls %ld ns %lld\n", n, now_ns() - t0);
        clnt_destroy(c);
        return 0;
    }
    fprintf(stderr, "usage: demo_client all HOST tcp|udp [PORT] | bench HOST tcp|udp PORT null|add N\n");
    return 2;
}
