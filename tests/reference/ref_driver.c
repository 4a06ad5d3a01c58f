/*
 * Reference driver for xdrgen's differential tests and benchmark.
 *
 * Linked with rpcgen's output for one .x file and a generated table
 * (ref_table.c) mapping each type to its xdr_<type> routine and sizeof.
 * It serves requests on stdin and answers on stdout, all integers
 * big-endian u32 unless noted:
 *
 *   request:  op, type index, arg, length, then <length> bytes
 *   response: status, consumed, length, then <length> bytes
 *
 *   op 1 ROUNDTRIP: decode the bytes into a calloc'd object with xdrmem,
 *        note xdr_getpos, re-encode into a fresh buffer, xdr_free.
 *        status 1 = decoded and re-encoded, 0 = decode failed,
 *        2 = decode succeeded but re-encoding failed.
 *   op 2 BENCH: arg = iterations; answers three u64 nanosecond totals:
 *        decode+encode+free, decode+free, encode only (status 0 if the
 *        input does not decode).
 *   op 3 COUNT: answers the number of table entries in "consumed".
 *
 * A long-running process (not ctypes) so that a crash or an allocation
 * failure in the reference cannot take the test process down with it; the
 * Python side sets a memory rlimit before exec.
 */
#include <rpc/rpc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ref_type {
    const char *name;
    xdrproc_t proc;
    size_t size;
};

extern const struct ref_type REF_TYPES[];
extern const uint32_t REF_NTYPES;

#define OP_ROUNDTRIP 1u
#define OP_BENCH 2u
#define OP_COUNT 3u

static int read_full(void *buf, size_t n)
{
    return n == 0 || fread(buf, 1, n, stdin) == n;
}

static int write_full(const void *buf, size_t n)
{
    return n == 0 || fwrite(buf, 1, n, stdout) == n;
}

static uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static int respond(uint32_t status, uint32_t consumed, const void *data, uint32_t len)
{
    unsigned char head[12];
    put_u32(head, status);
    put_u32(head + 4, consumed);
    put_u32(head + 8, len);
    if (!write_full(head, sizeof head) || !write_full(data, len))
        return 0;
    return fflush(stdout) == 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Decode data into *objp (calloc'd); returns 1 on success and sets *consumed. */
static int decode(const struct ref_type *t, unsigned char *data, uint32_t len, void **objp,
                  uint32_t *consumed)
{
    XDR xdrs;
    void *obj = calloc(1, t->size);
    int ok;
    if (obj == NULL)
        return 0;
    xdrmem_create(&xdrs, (char *)data, len, XDR_DECODE);
    ok = t->proc(&xdrs, obj);
    *consumed = xdr_getpos(&xdrs);
    xdr_destroy(&xdrs);
    if (!ok) {
        /* xdr_free releases whatever a failed decode allocated so far. */
        xdr_free(t->proc, obj);
        free(obj);
        return 0;
    }
    *objp = obj;
    return 1;
}

static int encode(const struct ref_type *t, void *obj, unsigned char *out, uint32_t cap,
                  uint32_t *len)
{
    XDR xdrs;
    int ok;
    xdrmem_create(&xdrs, (char *)out, cap, XDR_ENCODE);
    ok = t->proc(&xdrs, obj);
    *len = xdr_getpos(&xdrs);
    xdr_destroy(&xdrs);
    return ok;
}

static void release(const struct ref_type *t, void *obj)
{
    xdr_free(t->proc, obj);
    free(obj);
}

static int do_roundtrip(const struct ref_type *t, unsigned char *data, uint32_t len)
{
    void *obj = NULL;
    uint32_t consumed = 0, outlen = 0;
    /* A re-encoding is never longer than what was decoded; the margin is for safety. */
    uint32_t cap = 2 * len + 65536;
    unsigned char *out;
    int ok;
    if (!decode(t, data, len, &obj, &consumed))
        return respond(0, consumed, NULL, 0);
    out = malloc(cap);
    if (out == NULL) {
        release(t, obj);
        return respond(2, consumed, NULL, 0);
    }
    ok = encode(t, obj, out, cap, &outlen);
    release(t, obj);
    ok = respond(ok ? 1 : 2, consumed, out, ok ? outlen : 0);
    free(out);
    return ok;
}

static int do_bench(const struct ref_type *t, unsigned char *data, uint32_t len, uint32_t n)
{
    unsigned char result[24];
    uint32_t cap = 2 * len + 65536, consumed, outlen;
    unsigned char *out = malloc(cap);
    void *obj = NULL;
    uint64_t start, both, dec, enc;
    uint32_t i;
    if (out == NULL)
        return respond(0, 0, NULL, 0);
    /* Check once, outside the timed loops, that the input is valid. */
    if (!decode(t, data, len, &obj, &consumed) || !encode(t, obj, out, cap, &outlen)) {
        if (obj != NULL)
            release(t, obj);
        free(out);
        return respond(0, 0, NULL, 0);
    }
    release(t, obj);

    start = now_ns();
    for (i = 0; i < n; i++) {
        decode(t, data, len, &obj, &consumed);
        encode(t, obj, out, cap, &outlen);
        release(t, obj);
    }
    both = now_ns() - start;

    start = now_ns();
    for (i = 0; i < n; i++) {
        decode(t, data, len, &obj, &consumed);
        release(t, obj);
    }
    dec = now_ns() - start;

    decode(t, data, len, &obj, &consumed);
    start = now_ns();
    for (i = 0; i < n; i++)
        encode(t, obj, out, cap, &outlen);
    enc = now_ns() - start;
    release(t, obj);
    free(out);

    put_u64(result, both);
    put_u64(result + 8, dec);
    put_u64(result + 16, enc);
    return respond(1, outlen, result, sizeof result);
}

int main(void)
{
    unsigned char head[16];
    while (read_full(head, sizeof head)) {
        uint32_t op = get_u32(head), index = get_u32(head + 4), arg = get_u32(head + 8),
                 len = get_u32(head + 12);
        unsigned char *data = malloc(len ? len : 1);
        int ok;
        if (data == NULL || !read_full(data, len)) {
            fprintf(stderr, "ref_driver: cannot read %u request bytes\n", len);
            return 2;
        }
        if (op == OP_COUNT) {
            ok = respond(1, REF_NTYPES, NULL, 0);
        } else if (index >= REF_NTYPES) {
            fprintf(stderr, "ref_driver: type index %u out of range\n", index);
            return 2;
        } else if (op == OP_ROUNDTRIP) {
            ok = do_roundtrip(&REF_TYPES[index], data, len);
        } else if (op == OP_BENCH) {
            ok = do_bench(&REF_TYPES[index], data, len, arg);
        } else {
            fprintf(stderr, "ref_driver: unknown op %u\n", op);
            return 2;
        }
        free(data);
        if (!ok)
            return 3;
    }
    return 0;
}
