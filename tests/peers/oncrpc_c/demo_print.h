/* Canonical text for demo.x values, shared by the test C client and server. */
#ifndef DEMO_PRINT_H
#define DEMO_PRINT_H
#include <stdio.h>
#include "demo.h"

void print_hex(FILE *f, const char *data, unsigned int len);
void print_item(FILE *f, const demo_item *item);
void print_lookup(FILE *f, const demo_lookup_result *r);
void print_maybe_name(FILE *f, const demo_maybe_name *m);
void print_option(FILE *f, const demo_option *o);
void print_limit(FILE *f, const demo_limit *l);
#endif
