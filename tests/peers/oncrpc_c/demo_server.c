/*
 * A demo.x server built on rpcgen's dispatch code (rpcgen -N -m) and libtirpc,
 * written for xdrgen's tests and benchmarks. It serves both versions of
 * DEMO_RPC_PROGRAM on 127.0.0.1 (TCP and UDP, ports given or chosen by the
 * system) without registering with rpcbind, prints "tcp PORT", "udp PORT" and
 * "ready", then one line per call that carries AUTH_SYS credentials (exactly as
 * received) and one per DEMO_CONFIGURE (its arguments).
 *
 * Answers are fixed, so tests know them: ADD adds, LOOKUP and FIND know one
 * item named "widget", FIRST_NAME says "widget".
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <netinet/in.h>
#include <rpc/rpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "demo.h"
#include "demo_print.h"

void demo_rpc_program_1(struct svc_req *rqstp, SVCXPRT *transp);
void demo_rpc_program_2(struct svc_req *rqstp, SVCXPRT *transp);

static demo_dimensions widget_dims = {1.5f, 0.25f, 3.0};
static char *widget_tags[] = {"red", "small"};
static demo_kind widget_also[] = {DEMO_KIND_PART};
static char widget_thumb[] = {0x01, 0x02, 0x03};
static demo_item widget;

static void make_widget(void)
{
    int i;
    for (i = 0; i < DEMO_UUID_LEN; i++)
        widget.uuid[i] = (char)(i + 1);
    widget.name = "widget";
    widget.kind = DEMO_KIND_TOOL;
    widget.quantity = 7;
    widget.created = -5;
    widget.size_bytes = (u_quad_t)1 << 40;
    widget.mode = 0644;
    widget.active = TRUE;
    widget.dimensions = &widget_dims;
    widget.tags.demo_tags_len = 2;
    widget.tags.demo_tags_val = widget_tags;
    widget.description = "a widget";
    widget.ratings[0] = 1;
    widget.ratings[1] = 2;
    widget.ratings[2] = 3;
    widget.also_kinds.also_kinds_len = 1;
    widget.also_kinds.also_kinds_val = widget_also;
    for (i = 0; i < 4; i++)
        widget.counters[i] = (u_quad_t)(i + 1);
    widget.vendor = "acme";
    widget.thumbnail.thumbnail_len = 3;
    widget.thumbnail.thumbnail_val = widget_thumb;
    memset(widget.sha256, 0xab, 32);
}

static void note_credentials(struct svc_req *rq)
{
    struct authunix_parms *p;
    u_int i;
    if (rq->rq_cred.oa_flavor != AUTH_SYS)
        return;
    p = (struct authunix_parms *)rq->rq_clntcred;
    /* aup_time is a u_long that libtirpc fills from a signed word: print the 32 wire bits. */
    printf("auth_sys vers=%u proc=%u stamp=%u machine=%s uid=%u gid=%u gids=", (unsigned)rq->rq_vers,
           (unsigned)rq->rq_proc, (unsigned)(uint32_t)p->aup_time, p->aup_machname, (unsigned)p->aup_uid,
           (unsigned)p->aup_gid);
    for (i = 0; i < p->aup_len; i++)
        printf("%s%u", i ? "," : "", (unsigned)p->aup_gids[i]);
    printf("\n");
    fflush(stdout);
}

static demo_lookup_result *lookup(demo_name name)
{
    static demo_lookup_result r;
    memset(&r, 0, sizeof r);
    if (strcmp(name, "widget") == 0) {
        r.status = DEMO_OK;
        r.demo_lookup_result_u.item = widget;
    } else {
        r.status = DEMO_ERR_NOT_FOUND;
    }
    return &r;
}

void *demo_null_1_svc(struct svc_req *rq)
{
    static char dummy;
    note_credentials(rq);
    return &dummy;
}

int *demo_add_1_svc(int a, int b, struct svc_req *rq)
{
    static int r;
    note_credentials(rq);
    r = (int)((unsigned)a + (unsigned)b);
    return &r;
}

demo_lookup_result *demo_lookup_1_svc(demo_name name, struct svc_req *rq)
{
    note_credentials(rq);
    return lookup(name);
}

void *demo_null_2_svc(struct svc_req *rq)
{
    static char dummy;
    note_credentials(rq);
    return &dummy;
}

quad_t *demo_add_2_svc(quad_t a, quad_t b, struct svc_req *rq)
{
    static quad_t r;
    note_credentials(rq);
    r = (quad_t)((u_quad_t)a + (u_quad_t)b);
    return &r;
}

demo_lookup_result *demo_lookup_2_svc(demo_name name, struct svc_req *rq)
{
    note_credentials(rq);
    return lookup(name);
}

demo_item_ptr *demo_find_2_svc(demo_name name, demo_kind kind, bool_t active, struct svc_req *rq)
{
    static demo_item_ptr r;
    note_credentials(rq);
    r = (strcmp(name, "widget") == 0 && kind == widget.kind && (active != 0) == (widget.active != 0)) ? &widget : NULL;
    return &r;
}

void *demo_configure_2_svc(demo_option option, demo_limit limit, struct svc_req *rq)
{
    static char dummy;
    note_credentials(rq);
    printf("configure ");
    print_option(stdout, &option);
    printf(" limit=");
    print_limit(stdout, &limit);
    printf("\n");
    fflush(stdout);
    return &dummy;
}

demo_maybe_name *demo_first_name_2_svc(struct svc_req *rq)
{
    static demo_maybe_name r;
    note_credentials(rq);
    r.present = TRUE;
    r.demo_maybe_name_u.name = "widget";
    return &r;
}

int demo_rpc_program_1_freeresult(SVCXPRT *t, xdrproc_t x, caddr_t r) { return 1; }
int demo_rpc_program_2_freeresult(SVCXPRT *t, xdrproc_t x, caddr_t r) { return 1; }

static int bound_socket(int type, int port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, type, 0);
    int one = 1;
    if (fd < 0) { perror("socket"); exit(1); }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) { perror("bind"); exit(1); }
    if (type == SOCK_STREAM && listen(fd, 128) < 0) { perror("listen"); exit(1); }
    getsockname(fd, (struct sockaddr *)&sin, &len);
    printf("%s %d\n", type == SOCK_STREAM ? "tcp" : "udp", ntohs(sin.sin_port));
    return fd;
}

int main(int argc, char **argv)
{
    int tcp_port = argc > 1 ? atoi(argv[1]) : 0;
    int udp_port = argc > 2 ? atoi(argv[2]) : 0;
    SVCXPRT *tcp, *udp;

    make_widget();
    tcp = svctcp_create(bound_socket(SOCK_STREAM, tcp_port), 0, 0);
    udp = svcudp_create(bound_socket(SOCK_DGRAM, udp_port));
    if (!tcp || !udp) { fprintf(stderr, "cannot create transports\n"); return 1; }
    /* Protocol 0: serve without registering with rpcbind. */
    if (!svc_register(tcp, DEMO_RPC_PROGRAM, DEMO_RPC_V1, demo_rpc_program_1, 0) ||
        !svc_register(tcp, DEMO_RPC_PROGRAM, DEMO_RPC_V2, demo_rpc_program_2, 0) ||
        !svc_register(udp, DEMO_RPC_PROGRAM, DEMO_RPC_V1, demo_rpc_program_1, 0) ||
        !svc_register(udp, DEMO_RPC_PROGRAM, DEMO_RPC_V2, demo_rpc_program_2, 0)) {
        fprintf(stderr, "cannot register the program\n");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    svc_run();
    return 1;
}
