/*
 * Canonical text for demo.x values (written for xdrgen's tests). The Python
 * side renders the same text from decoded values (tests/peers/rpcgen_peers.py),
 * so a test compares what one side sent with what the other printed.
 */
#include <inttypes.h>
#include "demo_print.h"

void print_hex(FILE *f, const char *data, unsigned int len)
{
    unsigned int i;
    for (i = 0; i < len; i++)
        fprintf(f, "%02x", (unsigned char)data[i]);
}

void print_item(FILE *f, const demo_item *it)
{
    unsigned int i;
    fprintf(f, "{uuid=");
    print_hex(f, it->uuid, DEMO_UUID_LEN);
    fprintf(f, " name=%s kind=%d quantity=%u created=%" PRId64 " size=%" PRIu64 " mode=%u active=%d dims=",
            it->name, (int)it->kind, it->quantity, (int64_t)it->created, (uint64_t)it->size_bytes, it->mode,
            it->active ? 1 : 0);
    if (it->dimensions)
        fprintf(f, "%.17g,%.17g,%.17g", (double)it->dimensions->width_m, (double)it->dimensions->height_m,
                it->dimensions->weight_kg);
    else
        fprintf(f, "none");
    fprintf(f, " tags=[");
    for (i = 0; i < it->tags.demo_tags_len; i++)
        fprintf(f, "%s%s", i ? "," : "", it->tags.demo_tags_val[i]);
    fprintf(f, "] desc=%s ratings=[%d,%d,%d] also=[", it->description, it->ratings[0], it->ratings[1],
            it->ratings[2]);
    for (i = 0; i < it->also_kinds.also_kinds_len; i++)
        fprintf(f, "%s%d", i ? "," : "", (int)it->also_kinds.also_kinds_val[i]);
    fprintf(f, "] counters=[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "] vendor=%s thumb=",
            (uint64_t)it->counters[0], (uint64_t)it->counters[1], (uint64_t)it->counters[2],
            (uint64_t)it->counters[3], it->vendor);
    print_hex(f, it->thumbnail.thumbnail_val, it->thumbnail.thumbnail_len);
    fprintf(f, " sha=");
    print_hex(f, it->sha256, 32);
    fprintf(f, "}");
}

void print_lookup(FILE *f, const demo_lookup_result *r)
{
    fprintf(f, "status=%d", (int)r->status);
    if (r->status == DEMO_OK) {
        fprintf(f, " item=");
        print_item(f, &r->demo_lookup_result_u.item);
    }
}

void print_maybe_name(FILE *f, const demo_maybe_name *m)
{
    if (m->present)
        fprintf(f, "present=1 name=%s", m->demo_maybe_name_u.name);
    else
        fprintf(f, "present=0");
}

void print_option(FILE *f, const demo_option *o)
{
    fprintf(f, "key=%s setting=%d:", o->key, o->value.type);
    switch (o->value.type) {
    case 1: fprintf(f, "%d", o->value.demo_setting_u.i); break;
    case 2: fprintf(f, "%" PRId64, (int64_t)o->value.demo_setting_u.h); break;
    case 3: fprintf(f, "%.17g", o->value.demo_setting_u.d); break;
    case 4: fprintf(f, "%s", o->value.demo_setting_u.s); break;
    case 5: fprintf(f, "%d", o->value.demo_setting_u.b ? 1 : 0); break;
    default: fprintf(f, "void"); break;
    }
}

void print_limit(FILE *f, const demo_limit *l)
{
    fprintf(f, "%u:", l->revision);
    switch (l->revision) {
    case 1: fprintf(f, "%u", l->demo_limit_u.limit32); break;
    case 2: case 3: fprintf(f, "%" PRIu64, (uint64_t)l->demo_limit_u.limit64); break;
    default: fprintf(f, "void"); break;
    }
}
