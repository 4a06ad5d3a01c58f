/*
 * xdrgen.runtime._engine: the optional compiled marshalling engine (docs/compiled-engine.md).
 *
 * One generic engine for every .x file: a generated module hands it, at import
 * time, one plan string per type (xdrgen/generator/engine_plan.py describes the
 * notation) with the module's namespace and its codecs.  The engine prepares a
 * C program per type once, then installs encode / decode / encode_into /
 * decode_from methods in the codecs.
 *
 * Errors are never explained here.  Whenever the C path meets anything it does
 * not accept (a bad value, bad bytes, an object of a type it does not read, a
 * float32 NaN, deep nesting), it drops its partial work and runs the module's
 * pure-Python function on the same input, which raises the exact exception (or,
 * for inputs the engine merely declines, returns the value).  When the engine
 * saw a definite error and the pure function does not raise, the two disagree:
 * XdrEngineMismatch says so.
 *
 * Safety: every read is checked against the bytes left, declared lengths are
 * checked against the bytes left before anything is allocated, nesting is
 * bounded (ENGINE_MAX_DEPTH, then the pure code decides), and every error path
 * releases what it made.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define ENGINE_MAX_DEPTH 200

typedef enum {
    OP_INT, OP_UINT, OP_CHAR, OP_UCHAR, OP_SHORT, OP_USHORT, OP_HYPER, OP_UHYPER,
    OP_FLOAT, OP_DOUBLE, OP_BOOL, OP_QUAD, OP_ENUM, OP_FOPAQUE, OP_VOID,
    OP_STRING, OP_OPAQUE, OP_OPTIONAL, OP_FARRAY, OP_VARRAY, OP_CALL
} Op;

typedef struct Enum {
    PyObject *cls;          /* borrowed: the plan set keeps a reference */
    Py_ssize_t n;
    long long *values;      /* sorted */
    PyObject **members;     /* parallel to values, borrowed (kept alive by refs) */
    long long lo;           /* dense table: members by value - lo, or NULL */
    Py_ssize_t span;
    PyObject **dense;
} Enum;

struct Type;

typedef struct Node {
    Op op;
    Py_ssize_t n;           /* bound (-1: none), fixed count or fixed opaque length */
    Py_ssize_t least;       /* arrays: fewest bytes per element */
    struct Node *elem;
    struct Type *target;
    Enum *en;
} Node;

typedef struct Field {
    Py_ssize_t off;
    Node node;
} Field;

typedef struct Arm {
    Py_ssize_t nlabels;
    long long *labels;
    Node node;
} Arm;

enum { STATE_NEW, STATE_OK, STATE_UNSUPPORTED };

/* Whether a decoded instance of a type may leave the cyclic GC (see atomic_type). */
enum { ATOM_UNKNOWN, ATOM_VISITING, ATOM_YES, ATOM_NO };

typedef struct Type {
    PyObject *name;         /* owned */
    char kind;              /* T L U V */
    int state;
    int atom;               /* ATOM_*: ATOM_YES, decoded instances are untracked */
    PyTypeObject *cls;      /* borrowed (refs) */
    Py_ssize_t nfields;
    Field *fields;
    Py_ssize_t link_off;
    Py_ssize_t disc_off, value_off;
    Node disc;
    Py_ssize_t narms;
    Arm *arms;
    Node *deflt;
    Node value;
    Py_ssize_t size_hint;   /* last encoded size: the next output buffer's start */
} Type;

/* ------------------------------------------------------------------ objects */

typedef struct {
    PyObject_HEAD
    char *arena;
    Py_ssize_t arena_used, arena_size;
    Type *types;
    Py_ssize_t ntypes;
    Enum **enums;
    Py_ssize_t nenums;
    PyObject *refs;         /* list: classes, members, other modules' programs */
} PlanSet;

typedef struct {
    PyObject_HEAD
    PlanSet *owner;
    Type *type;
    PyObject *name;
    PyObject *pure_encode, *pure_decode, *pure_encode_into, *pure_decode_from;
} Program;

static PyTypeObject PlanSetType;
static PyTypeObject ProgramType;
static PyObject *EngineMismatch;

/* Why the C path gave up: a definite error (the pure code must raise) or an
 * input it leaves to the pure code. */
enum { ST_OK = 0, ST_ERROR = 1, ST_DECLINE = 2 };

/* ------------------------------------------------------------------ encoding */

typedef struct {
    PyObject *obj;          /* bytes being grown, or the caller's bytearray */
    char *p;
    Py_ssize_t len, cap;
    int bytearray;
    int depth;
    int status;
} Enc;

static int
enc_fail(Enc *e, int status)
{
    if (PyErr_Occurred())
        PyErr_Clear();
    if (e->status == ST_OK)
        e->status = status;
    return -1;
}

static int
enc_grow(Enc *e, Py_ssize_t need)
{
    Py_ssize_t want;
    if (need > PY_SSIZE_T_MAX - e->len)
        return enc_fail(e, ST_DECLINE);
    want = e->cap * 2;
    if (want < e->len + need)
        want = e->len + need;
    if (e->bytearray) {
        if (PyByteArray_Resize(e->obj, want) < 0)
            return enc_fail(e, ST_DECLINE);
        e->p = PyByteArray_AS_STRING(e->obj);
    }
    else {
        if (_PyBytes_Resize(&e->obj, want) < 0) {
            e->obj = NULL;
            return enc_fail(e, ST_DECLINE);
        }
        e->p = PyBytes_AS_STRING(e->obj);
    }
    e->cap = want;
    return 0;
}

static inline int
reserve(Enc *e, Py_ssize_t need)
{
    if (e->cap - e->len >= need)
        return 0;
    return enc_grow(e, need);
}

static inline void
put_u32(char *p, uint32_t x)
{
    p[0] = (char)(x >> 24);
    p[1] = (char)(x >> 16);
    p[2] = (char)(x >> 8);
    p[3] = (char)x;
}

static inline void
put_u64(char *p, uint64_t x)
{
    put_u32(p, (uint32_t)(x >> 32));
    put_u32(p + 4, (uint32_t)x);
}

static inline int
write_u32(Enc *e, uint32_t x)
{
    if (reserve(e, 4) < 0)
        return -1;
    put_u32(e->p + e->len, x);
    e->len += 4;
    return 0;
}

/* Length word, the bytes, zero padding. */
static int
write_counted(Enc *e, const char *s, Py_ssize_t n)
{
    Py_ssize_t pad = (-n) & 3;
    if (n > 0xFFFFFFFFLL)
        return enc_fail(e, ST_ERROR);
    if (reserve(e, 4 + n + pad) < 0)
        return -1;
    put_u32(e->p + e->len, (uint32_t)n);
    memcpy(e->p + e->len + 4, s, n);
    memset(e->p + e->len + 4 + n, 0, pad);
    e->len += 4 + n + pad;
    return 0;
}

/* Bytes and bytearray; anything else (memoryview, ...) goes to the pure code. */
static int
byte_view(Enc *e, PyObject *v, const char **s, Py_ssize_t *n)
{
    if (PyBytes_CheckExact(v)) {
        *s = PyBytes_AS_STRING(v);
        *n = PyBytes_GET_SIZE(v);
        return 0;
    }
    if (PyByteArray_CheckExact(v)) {
        *s = PyByteArray_AS_STRING(v);
        *n = PyByteArray_GET_SIZE(v);
        return 0;
    }
    return enc_fail(e, ST_DECLINE);
}

static int
enum_has(const Enum *en, long long x)
{
    Py_ssize_t lo = 0, hi = en->n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (en->values[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < en->n && en->values[lo] == x;
}

/* A C integer from an int (or bool, or an int enum member); 0 on success. */
static int
int_value(Enc *e, PyObject *v, long long *out)
{
    int overflow;
    if (!PyLong_Check(v))
        return enc_fail(e, ST_DECLINE);
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (*out == -1 && PyErr_Occurred()))
        return enc_fail(e, ST_ERROR);
    return 0;
}

static int enc_type(Enc *e, const Type *t, PyObject *v);
static int enc_node(Enc *e, const Node *node, PyObject *v);

static int
enc_sequence(Enc *e, const Node *elem, PyObject *v, Py_ssize_t n)
{
    Py_ssize_t i;
    int list = PyList_CheckExact(v);
    for (i = 0; i < n; i++) {
        PyObject *item;
        int rc;
        if (list) {
            if (i >= PyList_GET_SIZE(v))
                return enc_fail(e, ST_DECLINE);
            item = PyList_GET_ITEM(v, i);
        }
        else {
            item = PyTuple_GET_ITEM(v, i);
        }
        Py_INCREF(item);
        rc = enc_node(e, elem, item);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int
enc_node(Enc *e, const Node *node, PyObject *v)
{
    long long x;
    switch (node->op) {
    case OP_INT:
        if (int_value(e, v, &x) < 0)
            return -1;
        if (x < INT32_MIN || x > INT32_MAX)
            return enc_fail(e, ST_ERROR);
        return write_u32(e, (uint32_t)x);
    case OP_UINT:
        if (int_value(e, v, &x) < 0)
            return -1;
        if (x < 0 || x > 0xFFFFFFFFLL)
            return enc_fail(e, ST_ERROR);
        return write_u32(e, (uint32_t)x);
    case OP_CHAR:
    case OP_SHORT:
    case OP_UCHAR:
    case OP_USHORT: {
        static const long long lo[] = {-128, 0, -32768, 0};
        static const long long hi[] = {127, 255, 32767, 65535};
        int k = node->op - OP_CHAR;
        if (int_value(e, v, &x) < 0)
            return -1;
        if (x < lo[k] || x > hi[k])
            return enc_fail(e, ST_ERROR);
        return write_u32(e, (uint32_t)x);
    }
    case OP_HYPER:
        if (int_value(e, v, &x) < 0)
            return -1;
        if (reserve(e, 8) < 0)
            return -1;
        put_u64(e->p + e->len, (uint64_t)x);
        e->len += 8;
        return 0;
    case OP_UHYPER: {
        unsigned long long u;
        if (!PyLong_Check(v))
            return enc_fail(e, ST_DECLINE);
        u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred())
            return enc_fail(e, ST_ERROR);
        if (reserve(e, 8) < 0)
            return -1;
        put_u64(e->p + e->len, u);
        e->len += 8;
        return 0;
    }
    case OP_FLOAT:
    case OP_DOUBLE: {
        double d;
        int size = node->op == OP_FLOAT ? 4 : 8;
        if (PyFloat_CheckExact(v))
            d = PyFloat_AS_DOUBLE(v);
        else if (PyLong_CheckExact(v)) {
            d = PyLong_AsDouble(v);
            if (d == -1.0 && PyErr_Occurred())
                return enc_fail(e, ST_ERROR);
        }
        else
            return enc_fail(e, ST_DECLINE);  /* float32 NaN bits, bool, __float__ */
        if (reserve(e, size) < 0)
            return -1;
        if ((size == 4 ? PyFloat_Pack4(d, e->p + e->len, 0)
                       : PyFloat_Pack8(d, e->p + e->len, 0)) < 0)
            return enc_fail(e, ST_ERROR);
        e->len += size;
        return 0;
    }
    case OP_BOOL:
        if (v == Py_True)
            return write_u32(e, 1);
        if (v == Py_False)
            return write_u32(e, 0);
        if (!PyLong_CheckExact(v))
            return enc_fail(e, ST_DECLINE);
        if (int_value(e, v, &x) < 0)
            return -1;
        if (x != 0 && x != 1)
            return enc_fail(e, ST_ERROR);
        return write_u32(e, (uint32_t)x);
    case OP_ENUM:
        if (!PyLong_CheckExact(v) && !PyBool_Check(v)
            && Py_TYPE(v) != (PyTypeObject *)node->en->cls)
            return enc_fail(e, ST_DECLINE);
        if (int_value(e, v, &x) < 0)
            return -1;
        if (!enum_has(node->en, x))
            return enc_fail(e, ST_ERROR);
        return write_u32(e, (uint32_t)x);
    case OP_QUAD:
    case OP_FOPAQUE: {
        const char *s;
        Py_ssize_t n, want = node->op == OP_QUAD ? 16 : node->n;
        Py_ssize_t pad = (-want) & 3;
        if (byte_view(e, v, &s, &n) < 0)
            return -1;
        if (n != want)
            return enc_fail(e, ST_ERROR);
        if (reserve(e, n + pad) < 0)
            return -1;
        memcpy(e->p + e->len, s, n);
        memset(e->p + e->len + n, 0, pad);
        e->len += n + pad;
        return 0;
    }
    case OP_VOID:
        return 0;
    case OP_STRING: {
        const char *s;
        Py_ssize_t n;
        if (!PyUnicode_CheckExact(v))
            return enc_fail(e, ST_DECLINE);
        s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL)
            return enc_fail(e, ST_DECLINE);  /* surrogates: surrogateescape or not */
        if (node->n >= 0 && n > node->n)
            return enc_fail(e, ST_ERROR);
        return write_counted(e, s, n);
    }
    case OP_OPAQUE: {
        const char *s;
        Py_ssize_t n;
        if (byte_view(e, v, &s, &n) < 0)
            return -1;
        if (node->n >= 0 && n > node->n)
            return enc_fail(e, ST_ERROR);
        return write_counted(e, s, n);
    }
    case OP_OPTIONAL:
        if (v == Py_None)
            return write_u32(e, 0);
        if (write_u32(e, 1) < 0)
            return -1;
        return enc_node(e, node->elem, v);
    case OP_FARRAY:
    case OP_VARRAY: {
        Py_ssize_t n;
        if (PyList_CheckExact(v))
            n = PyList_GET_SIZE(v);
        else if (PyTuple_CheckExact(v))
            n = PyTuple_GET_SIZE(v);
        else
            return enc_fail(e, ST_DECLINE);
        if (node->op == OP_FARRAY) {
            if (n != node->n)
                return enc_fail(e, ST_ERROR);
        }
        else {
            if ((node->n >= 0 && n > node->n) || n > 0xFFFFFFFFLL)
                return enc_fail(e, ST_ERROR);
            if (node->least == 0 && n > 0)
                return enc_fail(e, ST_DECLINE);  /* no bytes each: the pure code's rule */
            if (write_u32(e, (uint32_t)n) < 0)
                return -1;
        }
        return enc_sequence(e, node->elem, v, n);
    }
    case OP_CALL:
        return enc_type(e, node->target, v);
    }
    return enc_fail(e, ST_DECLINE);
}

static inline PyObject *
slot(PyObject *o, Py_ssize_t off)
{
    return *(PyObject **)((char *)o + off);
}

static int
enc_fields(Enc *e, const Type *t, PyObject *v)
{
    Py_ssize_t i;
    for (i = 0; i < t->nfields; i++) {
        PyObject *x = slot(v, t->fields[i].off);
        int rc;
        if (x == NULL)
            return enc_fail(e, ST_DECLINE);  /* unset attribute: the pure code says */
        Py_INCREF(x);
        rc = enc_node(e, &t->fields[i].node, x);
        Py_DECREF(x);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static const Node *
arm_for(const Type *t, long long x)
{
    Py_ssize_t i, j;
    for (i = 0; i < t->narms; i++)
        for (j = 0; j < t->arms[i].nlabels; j++)
            if (t->arms[i].labels[j] == x)
                return &t->arms[i].node;
    return NULL;
}

static int
enc_union(Enc *e, const Type *t, PyObject *v)
{
    PyObject *d = slot(v, t->disc_off), *x;
    long long value;
    const Node *arm;
    int rc;
    if (d == NULL)
        return enc_fail(e, ST_DECLINE);
    if (!PyLong_CheckExact(d) && !PyBool_Check(d)
        && !(t->disc.op == OP_ENUM && Py_TYPE(d) == (PyTypeObject *)t->disc.en->cls))
        return enc_fail(e, ST_DECLINE);
    arm = NULL;
    if (int_value(e, d, &value) == 0)
        arm = arm_for(t, value);
    else if (e->status == ST_DECLINE)
        return -1;
    else
        e->status = ST_OK;  /* too wide for any label: the default arm checks it */
    if (arm != NULL) {
        if (write_u32(e, (uint32_t)value) < 0)
            return -1;
    }
    else {
        if (t->deflt == NULL)
            return enc_fail(e, ST_ERROR);
        arm = t->deflt;
        Py_INCREF(d);
        rc = enc_node(e, &t->disc, d);
        Py_DECREF(d);
        if (rc < 0)
            return -1;
    }
    if (arm->op == OP_VOID)
        return 0;
    x = slot(v, t->value_off);
    if (x == NULL)
        return enc_fail(e, ST_DECLINE);
    Py_INCREF(x);
    rc = enc_node(e, arm, x);
    Py_DECREF(x);
    return rc;
}

static int
enc_list(Enc *e, const Type *t, PyObject *v)
{
    /* Brent's cycle detection, as the pure code: a list that links back into
     * itself is an error, not an endless loop. */
    PyObject *mark = v;
    Py_ssize_t k = 0, jump = 1;
    for (;;) {
        PyObject *next;
        if (Py_TYPE(v) != t->cls)
            return enc_fail(e, ST_DECLINE);
        if (enc_fields(e, t, v) < 0)
            return -1;
        next = slot(v, t->link_off);
        if (next == NULL)
            return enc_fail(e, ST_DECLINE);
        if (next == Py_None)
            return write_u32(e, 0);
        if (next == mark)
            return enc_fail(e, ST_ERROR);
        if (write_u32(e, 1) < 0)
            return -1;
        v = next;
        k++;
        if (k == jump) {
            mark = v;
            jump <<= 1;
        }
    }
}

static int
enc_type(Enc *e, const Type *t, PyObject *v)
{
    int rc;
    if (t->kind == 'V')
        return enc_node(e, &t->value, v);
    if (Py_TYPE(v) != t->cls)
        return enc_fail(e, ST_DECLINE);
    if (++e->depth > ENGINE_MAX_DEPTH) {
        e->depth--;
        return enc_fail(e, ST_DECLINE);
    }
    if (t->kind == 'T')
        rc = enc_fields(e, t, v);
    else if (t->kind == 'U')
        rc = enc_union(e, t, v);
    else
        rc = enc_list(e, t, v);
    e->depth--;
    return rc;
}

/* ------------------------------------------------------------------ decoding */

typedef struct {
    const unsigned char *p;
    Py_ssize_t len, pos;
    int depth;
    int status;
} Dec;

static PyObject *
dec_fail(Dec *d, int status)
{
    if (PyErr_Occurred())
        PyErr_Clear();
    if (d->status == ST_OK)
        d->status = status;
    return NULL;
}

static inline uint32_t
get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8)
           | (uint32_t)p[3];
}

static inline uint64_t
get_u64(const unsigned char *p)
{
    return ((uint64_t)get_u32(p) << 32) | get_u32(p + 4);
}

static inline int
take(Dec *d, Py_ssize_t n, const unsigned char **at)
{
    if (n > d->len - d->pos) {
        dec_fail(d, ST_ERROR);
        return -1;
    }
    *at = d->p + d->pos;
    d->pos += n;
    return 0;
}

static PyObject *
enum_member(const Enum *en, long long x)
{
    PyObject *m = NULL;
    if (en->dense != NULL) {
        if (x >= en->lo && x - en->lo < en->span)
            m = en->dense[x - en->lo];
    }
    else {
        Py_ssize_t lo = 0, hi = en->n;
        while (lo < hi) {
            Py_ssize_t mid = (lo + hi) / 2;
            if (en->values[mid] < x)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < en->n && en->values[lo] == x)
            m = en->members[lo];
    }
    if (m != NULL)
        Py_INCREF(m);
    return m;
}

/* A counted item (string, opaque): its bytes after the bound and padding checks. */
static const unsigned char *
counted(Dec *d, Py_ssize_t bound, Py_ssize_t *n)
{
    const unsigned char *at;
    uint32_t len;
    Py_ssize_t padded, i;
    if (take(d, 4, &at) < 0)
        return NULL;
    len = get_u32(at);
    if (bound >= 0 && (long long)len > bound) {
        dec_fail(d, ST_ERROR);
        return NULL;
    }
    padded = ((Py_ssize_t)len + 3) & ~(Py_ssize_t)3;
    if (take(d, padded, &at) < 0)
        return NULL;
    for (i = len; i < padded; i++)
        if (at[i] != 0) {
            dec_fail(d, ST_ERROR);
            return NULL;
        }
    *n = len;
    return at;
}

static PyObject *dec_type(Dec *d, const Type *t);

static PyObject *
dec_node(Dec *d, const Node *node)
{
    const unsigned char *at;
    switch (node->op) {
    case OP_INT:
        if (take(d, 4, &at) < 0)
            return NULL;
        return PyLong_FromLong((int32_t)get_u32(at));
    case OP_UINT:
        if (take(d, 4, &at) < 0)
            return NULL;
        return PyLong_FromUnsignedLong(get_u32(at));
    case OP_CHAR:
    case OP_SHORT:
    case OP_UCHAR:
    case OP_USHORT: {
        static const long long lo[] = {-128, 0, -32768, 0};
        static const long long hi[] = {127, 255, 32767, 65535};
        int k = node->op - OP_CHAR;
        long long x;
        if (take(d, 4, &at) < 0)
            return NULL;
        x = lo[k] < 0 ? (long long)(int32_t)get_u32(at) : (long long)get_u32(at);
        if (x < lo[k] || x > hi[k])
            return dec_fail(d, ST_ERROR);
        return PyLong_FromLongLong(x);
    }
    case OP_HYPER:
        if (take(d, 8, &at) < 0)
            return NULL;
        return PyLong_FromLongLong((long long)get_u64(at));
    case OP_UHYPER:
        if (take(d, 8, &at) < 0)
            return NULL;
        return PyLong_FromUnsignedLongLong(get_u64(at));
    case OP_FLOAT: {
        double x;
        if (take(d, 4, &at) < 0)
            return NULL;
        x = PyFloat_Unpack4((const char *)at, 0);
        if (x == -1.0 && PyErr_Occurred())
            return dec_fail(d, ST_DECLINE);
        if (x != x)
            return dec_fail(d, ST_DECLINE);  /* NaN: the pure code keeps its bits */
        return PyFloat_FromDouble(x);
    }
    case OP_DOUBLE: {
        double x;
        if (take(d, 8, &at) < 0)
            return NULL;
        x = PyFloat_Unpack8((const char *)at, 0);
        if (x == -1.0 && PyErr_Occurred())
            return dec_fail(d, ST_DECLINE);
        return PyFloat_FromDouble(x);
    }
    case OP_BOOL: {
        uint32_t w;
        if (take(d, 4, &at) < 0)
            return NULL;
        w = get_u32(at);
        if (w > 1)
            return dec_fail(d, ST_ERROR);
        return Py_NewRef(w ? Py_True : Py_False);
    }
    case OP_ENUM: {
        PyObject *m;
        if (take(d, 4, &at) < 0)
            return NULL;
        m = enum_member(node->en, (int32_t)get_u32(at));
        return m != NULL ? m : dec_fail(d, ST_ERROR);
    }
    case OP_QUAD:
    case OP_FOPAQUE: {
        Py_ssize_t n = node->op == OP_QUAD ? 16 : node->n, padded = (n + 3) & ~3, i;
        if (take(d, padded, &at) < 0)
            return NULL;
        for (i = n; i < padded; i++)
            if (at[i] != 0)
                return dec_fail(d, ST_ERROR);
        return PyBytes_FromStringAndSize((const char *)at, n);
    }
    case OP_VOID:
        Py_RETURN_NONE;
    case OP_STRING:
    case OP_OPAQUE: {
        Py_ssize_t n;
        PyObject *r;
        at = counted(d, node->n, &n);
        if (at == NULL)
            return NULL;
        if (node->op == OP_OPAQUE)
            r = PyBytes_FromStringAndSize((const char *)at, n);
        else
            r = PyUnicode_DecodeUTF8((const char *)at, n, "surrogateescape");
        return r != NULL ? r : dec_fail(d, ST_DECLINE);
    }
    case OP_OPTIONAL: {
        uint32_t w;
        if (take(d, 4, &at) < 0)
            return NULL;
        w = get_u32(at);
        if (w == 0)
            Py_RETURN_NONE;
        if (w != 1)
            return dec_fail(d, ST_ERROR);
        return dec_node(d, node->elem);
    }
    case OP_FARRAY:
    case OP_VARRAY: {
        Py_ssize_t n, i;
        PyObject *list;
        if (node->op == OP_FARRAY)
            n = node->n;
        else {
            if (take(d, 4, &at) < 0)
                return NULL;
            n = get_u32(at);
            if (node->n >= 0 && n > node->n)
                return dec_fail(d, ST_ERROR);
        }
        /* Checked against the bytes left before anything is allocated. */
        if (node->least > 0) {
            if (n > (d->len - d->pos) / node->least)
                return dec_fail(d, ST_ERROR);
        }
        else if (n > 0 && (node->op == OP_VARRAY || n > 65536)) {
            /* Elements of no bytes: the pure code bounds their count by the
             * input's bytes (docs/compatibility.md, difference 9). */
            return dec_fail(d, ST_DECLINE);
        }
        list = PyList_New(n);
        if (list == NULL)
            return dec_fail(d, ST_DECLINE);
        for (i = 0; i < n; i++) {
            PyObject *item = dec_node(d, node->elem);
            if (item == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, i, item);
        }
        return list;
    }
    case OP_CALL:
        return dec_type(d, node->target);
    }
    return dec_fail(d, ST_DECLINE);
}

static PyObject *
new_instance(Dec *d, PyTypeObject *cls)
{
    PyObject *o = cls->tp_alloc(cls, 0);
    return o != NULL ? o : dec_fail(d, ST_DECLINE);
}

static inline void
set_slot(PyObject *o, Py_ssize_t off, PyObject *x)
{
    PyObject **at = (PyObject **)((char *)o + off);
    PyObject *old = *at;
    *at = x;
    Py_XDECREF(old);
}

static int
dec_fields(Dec *d, const Type *t, PyObject *o)
{
    Py_ssize_t i;
    for (i = 0; i < t->nfields; i++) {
        PyObject *x = dec_node(d, &t->fields[i].node);
        if (x == NULL)
            return -1;
        set_slot(o, t->fields[i].off, x);
    }
    return 0;
}

static PyObject *
dec_union(Dec *d, const Type *t)
{
    PyObject *disc, *value, *o;
    const Node *arm;
    long long x;
    disc = dec_node(d, &t->disc);
    if (disc == NULL)
        return NULL;
    x = PyLong_AsLongLong(disc);
    if (x == -1 && PyErr_Occurred()) {
        Py_DECREF(disc);
        return dec_fail(d, ST_DECLINE);
    }
    arm = arm_for(t, x);
    if (arm == NULL)
        arm = t->deflt;
    if (arm == NULL) {
        Py_DECREF(disc);
        return dec_fail(d, ST_ERROR);
    }
    value = dec_node(d, arm);
    if (value == NULL) {
        Py_DECREF(disc);
        return NULL;
    }
    o = new_instance(d, t->cls);
    if (o == NULL) {
        Py_DECREF(disc);
        Py_DECREF(value);
        return NULL;
    }
    set_slot(o, t->disc_off, disc);
    set_slot(o, t->value_off, value);
    return o;
}

static PyObject *
dec_list(Dec *d, const Type *t)
{
    PyObject *head, *o;
    head = o = new_instance(d, t->cls);
    if (head == NULL)
        return NULL;
    for (;;) {
        const unsigned char *at;
        uint32_t w;
        PyObject *next;
        if (dec_fields(d, t, o) < 0 || take(d, 4, &at) < 0) {
            Py_DECREF(head);
            return NULL;
        }
        w = get_u32(at);
        if (w == 0) {
            set_slot(o, t->link_off, Py_NewRef(Py_None));
            return head;
        }
        if (w != 1) {
            Py_DECREF(head);
            return dec_fail(d, ST_ERROR);
        }
        next = new_instance(d, t->cls);
        if (next == NULL) {
            Py_DECREF(head);
            return NULL;
        }
        set_slot(o, t->link_off, next);  /* o's reference keeps next alive */
        o = next;
    }
}

static PyObject *
dec_type(Dec *d, const Type *t)
{
    PyObject *o;
    if (t->kind == 'V')
        return dec_node(d, &t->value);
    if (++d->depth > ENGINE_MAX_DEPTH) {
        d->depth--;
        return dec_fail(d, ST_DECLINE);
    }
    if (t->kind == 'T') {
        o = new_instance(d, t->cls);
        if (o != NULL && dec_fields(d, t, o) < 0)
            Py_CLEAR(o);
    }
    else if (t->kind == 'U')
        o = dec_union(d, t);
    else
        o = dec_list(d, t);
    d->depth--;
    /* No well-typed value of an atomic type can reach a cycle: leaving it out
     * of the collector saves the collections that decoding many of them would
     * otherwise pay for (docs/compiled-engine.md, "Garbage collection"). */
    if (o != NULL && t->atom == ATOM_YES)
        PyObject_GC_UnTrack(o);
    return o;
}

/* ------------------------------------------------------------------ fallback */

/* Call a pure-Python function as if the caller had called it directly.  CPython
 * 3.11 counts the call of this C method as one level of recursion, which a
 * direct call of the pure function does not: without giving that level back,
 * data that nests to Python's recursion limit would fail one level earlier (a
 * different path and offset) through the engine.  3.12 counts Python frames
 * apart from C calls. */
static PyObject *
call_pure(PyObject *func, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *r;
#if PY_VERSION_HEX < 0x030C0000
    PyThreadState *ts = PyThreadState_Get();
    ts->recursion_remaining++;
    r = PyObject_Vectorcall(func, args, nargs, NULL);
    ts->recursion_remaining--;
#else
    r = PyObject_Vectorcall(func, args, nargs, NULL);
#endif
    return r;
}

static PyObject *
call_pure1(PyObject *func, PyObject *arg)
{
    return call_pure(func, &arg, 1);
}

/* The C path gave up with ``status``: ``result`` is what the pure function
 * returned for the same input (NULL: it raised, which is the answer). */
static PyObject *
settle(Program *self, PyObject *result, int status, const char *what)
{
    if (result == NULL || status != ST_ERROR)
        return result;
    Py_DECREF(result);
    PyErr_Format(EngineMismatch,
                 "%U: the compiled engine refused to %s what the pure-Python "
                 "code accepts (an engine defect; XDRGEN_PURE=1 avoids it)",
                 self->name, what);
    return NULL;
}

/* ------------------------------------------------------------------ Program */

static PyObject *
program_encode(Program *self, PyObject *v)
{
    Type *t = self->type;
    Py_ssize_t start = t->size_hint > 16 ? t->size_hint : 16;
    Enc e = {NULL, NULL, 0, start, 0, 0, ST_OK};
    e.obj = PyBytes_FromStringAndSize(NULL, start);
    if (e.obj == NULL)
        return NULL;
    e.p = PyBytes_AS_STRING(e.obj);
    if (enc_type(&e, t, v) == 0) {
        if (e.len != e.cap && _PyBytes_Resize(&e.obj, e.len) < 0)
            return NULL;
        t->size_hint = e.len;
        return e.obj;
    }
    Py_XDECREF(e.obj);
    if (PyErr_Occurred())
        PyErr_Clear();
    return settle(self, call_pure1(self->pure_encode, v), e.status,
                  "encode");
}

static PyObject *
program_encode_into(Program *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *buf, *v;
    Py_ssize_t start;
    Enc e = {NULL, NULL, 0, 0, 1, 0, ST_OK};
    if (nargs != 2 || !PyByteArray_CheckExact(args[0]))
        return call_pure(self->pure_encode_into, args, nargs);
    buf = args[0];
    v = args[1];
    start = PyByteArray_GET_SIZE(buf);
    e.obj = buf;
    e.p = PyByteArray_AS_STRING(buf);
    e.len = e.cap = start;
    if (enc_type(&e, self->type, v) == 0) {
        if (e.len != e.cap && PyByteArray_Resize(buf, e.len) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (PyErr_Occurred())
        PyErr_Clear();
    /* Drop the partial output, then let the pure code write (and fail) as it does. */
    if (PyByteArray_GET_SIZE(buf) != start && PyByteArray_Resize(buf, start) < 0)
        return NULL;
    return settle(self, call_pure(self->pure_encode_into, args, 2),
                  e.status, "encode");
}

/* The bytes of ``data``: 1 with a view to release, 0 without (bytes), -1 when the
 * engine does not read this object (the pure code will). */
static int
data_view(PyObject *data, Py_buffer *view, Dec *d)
{
    if (PyBytes_CheckExact(data)) {
        d->p = (const unsigned char *)PyBytes_AS_STRING(data);
        d->len = PyBytes_GET_SIZE(data);
        return 0;
    }
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return -1;
    }
    d->p = view->buf;
    d->len = view->len;
    return 1;
}

static PyObject *
program_decode(Program *self, PyObject *data)
{
    Py_buffer view;
    Dec d = {NULL, 0, 0, 0, ST_OK};
    PyObject *r;
    int held = data_view(data, &view, &d);
    if (held < 0)
        return call_pure1(self->pure_decode, data);
    r = dec_type(&d, self->type);
    if (r != NULL && d.pos != d.len) {
        Py_CLEAR(r);
        d.status = ST_ERROR;  /* trailing bytes */
    }
    if (held)
        PyBuffer_Release(&view);
    if (r != NULL)
        return r;
    if (PyErr_Occurred())
        PyErr_Clear();
    return settle(self, call_pure1(self->pure_decode, data), d.status,
                  "decode");
}

static PyObject *
program_decode_from(Program *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Dec d = {NULL, 0, 0, 0, ST_OK};
    PyObject *r, *end;
    Py_ssize_t offset = 0;
    int held;
    if (nargs < 1 || nargs > 2)
        return call_pure(self->pure_decode_from, args, nargs);
    if (nargs == 2) {
        if (!PyLong_CheckExact(args[1]))
            return call_pure(self->pure_decode_from, args, nargs);
        offset = PyLong_AsSsize_t(args[1]);
        if (offset == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return call_pure(self->pure_decode_from, args, nargs);
        }
    }
    held = data_view(args[0], &view, &d);
    if (held < 0)
        return call_pure(self->pure_decode_from, args, nargs);
    if (offset < 0 || offset > d.len) {
        if (held)
            PyBuffer_Release(&view);
        return call_pure(self->pure_decode_from, args, nargs);
    }
    d.pos = offset;
    r = dec_type(&d, self->type);
    if (held)
        PyBuffer_Release(&view);
    if (r != NULL) {
        end = PyLong_FromSsize_t(d.pos);
        if (end == NULL) {
            Py_DECREF(r);
            return NULL;
        }
        {
            PyObject *pair = PyTuple_New(2);
            if (pair == NULL) {
                Py_DECREF(r);
                Py_DECREF(end);
                return NULL;
            }
            PyTuple_SET_ITEM(pair, 0, r);
            PyTuple_SET_ITEM(pair, 1, end);
            return pair;
        }
    }
    if (PyErr_Occurred())
        PyErr_Clear();
    return settle(self,
                  call_pure(self->pure_decode_from, args, nargs),
                  d.status, "decode");
}

static PyObject *
program_repr(Program *self)
{
    return PyUnicode_FromFormat("<xdrgen.runtime._engine.Program %U>", self->name);
}

static int
program_traverse(Program *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->pure_encode);
    Py_VISIT(self->pure_decode);
    Py_VISIT(self->pure_encode_into);
    Py_VISIT(self->pure_decode_from);
    return 0;
}

/* Clears only the pure functions (the cycle through the module's globals): the
 * plans stay valid while anything can still call the program. */
static int
program_clear(Program *self)
{
    Py_CLEAR(self->pure_encode);
    Py_CLEAR(self->pure_decode);
    Py_CLEAR(self->pure_encode_into);
    Py_CLEAR(self->pure_decode_from);
    return 0;
}

static void
program_dealloc(Program *self)
{
    PyObject_GC_UnTrack(self);
    program_clear(self);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A program whose pure functions were cleared (module torn down) refuses. */
static int
program_alive(Program *self)
{
    if (self->pure_encode && self->pure_decode && self->pure_encode_into
        && self->pure_decode_from)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "xdrgen engine program used after teardown");
    return 0;
}

static PyObject *
m_encode(PyObject *self, PyObject *v)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_encode((Program *)self, v);
}

static PyObject *
m_decode(PyObject *self, PyObject *data)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_decode((Program *)self, data);
}

static PyObject *
m_encode_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_encode_into((Program *)self, args, nargs);
}

static PyObject *
m_decode_from(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_decode_from((Program *)self, args, nargs);
}

static PyMethodDef program_methods[] = {
    {"encode", (PyCFunction)m_encode, METH_O, "encode(value) -> bytes"},
    {"decode", (PyCFunction)m_decode, METH_O, "decode(data) -> value"},
    {"encode_into", (PyCFunction)(void (*)(void))m_encode_into, METH_FASTCALL,
     "encode_into(buffer, value) -> None"},
    {"decode_from", (PyCFunction)(void (*)(void))m_decode_from, METH_FASTCALL,
     "decode_from(data, offset=0) -> (value, end)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef program_members[] = {
    {"name", T_OBJECT_EX, offsetof(Program, name), READONLY, "the type's name"},
    {"pure_encode", T_OBJECT_EX, offsetof(Program, pure_encode), READONLY,
     "the pure-Python encode it falls back to"},
    {"pure_decode", T_OBJECT_EX, offsetof(Program, pure_decode), READONLY,
     "the pure-Python decode it falls back to"},
    {"pure_encode_into", T_OBJECT_EX, offsetof(Program, pure_encode_into), READONLY,
     "the pure-Python encode_into it falls back to"},
    {"pure_decode_from", T_OBJECT_EX, offsetof(Program, pure_decode_from), READONLY,
     "the pure-Python decode_from it falls back to"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "xdrgen.runtime._engine.Program",
    .tp_basicsize = sizeof(Program),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One type's compiled encoder and decoder.",
    .tp_dealloc = (destructor)program_dealloc,
    .tp_traverse = (traverseproc)program_traverse,
    .tp_clear = (inquiry)program_clear,
    .tp_repr = (reprfunc)program_repr,
    .tp_methods = program_methods,
    .tp_members = program_members,
};

/* ------------------------------------------------------------------ PlanSet */

static int
planset_traverse(PlanSet *self, visitproc visit, void *arg)
{
    Py_VISIT(self->refs);
    return 0;
}

static void
planset_dealloc(PlanSet *self)
{
    Py_ssize_t i;
    PyObject_GC_UnTrack(self);
    for (i = 0; i < self->ntypes; i++)
        Py_XDECREF(self->types[i].name);
    for (i = 0; i < self->nenums; i++) {
        Enum *en = self->enums[i];
        PyMem_Free(en->values);
        PyMem_Free(en->members);
        PyMem_Free(en->dense);
        PyMem_Free(en);
    }
    PyMem_Free(self->enums);
    PyMem_Free(self->types);
    PyMem_Free(self->arena);
    Py_CLEAR(self->refs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject PlanSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "xdrgen.runtime._engine.PlanSet",
    .tp_basicsize = sizeof(PlanSet),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The prepared programs of one generated module.",
    .tp_dealloc = (destructor)planset_dealloc,
    .tp_traverse = (traverseproc)planset_traverse,
};

/* ------------------------------------------------------------------ plans */

typedef struct {
    PlanSet *ps;
    PyObject *ns;           /* the generated module's globals */
    PyObject *index;        /* type name -> index */
    PyObject *enum_index;   /* enum class name -> index */
    const char *s, *end;
} Parser;

static void *
arena_alloc(PlanSet *ps, size_t size)
{
    char *p;
    size = (size + 15) & ~(size_t)15;
    if ((Py_ssize_t)size > ps->arena_size - ps->arena_used)
        return NULL;
    p = ps->arena + ps->arena_used;
    ps->arena_used += size;
    memset(p, 0, size);
    return p;
}

static int
token(Parser *P, const char **t, Py_ssize_t *n)
{
    while (P->s < P->end && *P->s == ' ')
        P->s++;
    if (P->s >= P->end)
        return -1;
    *t = P->s;
    while (P->s < P->end && *P->s != ' ')
        P->s++;
    *n = P->s - *t;
    return 0;
}

static int
token_int(Parser *P, long long *x)
{
    const char *t;
    Py_ssize_t n;
    char buf[32], *stop;
    if (token(P, &t, &n) < 0 || n == 0 || n >= (Py_ssize_t)sizeof buf)
        return -1;
    memcpy(buf, t, n);
    buf[n] = 0;
    *x = strtoll(buf, &stop, 10);
    return *stop == 0 ? 0 : -1;
}

/* ``name`` or ``module.name`` (an --import'ed module, bound as _imp_module). */
/* ``_imp_<module>``: how a generated module binds an --import'ed one. */
static PyObject *
import_alias(const char *t, Py_ssize_t n)
{
    char buf[256];
    if (n > (Py_ssize_t)sizeof buf - 6)
        return NULL;
    memcpy(buf, "_imp_", 5);
    memcpy(buf + 5, t, n);
    return PyUnicode_FromStringAndSize(buf, n + 5);
}

static PyObject *
resolve(Parser *P, const char *t, Py_ssize_t n)
{
    const char *dot = memchr(t, '.', n);
    PyObject *key, *found, *attr, *r;
    if (dot == NULL) {
        key = PyUnicode_FromStringAndSize(t, n);
        if (key == NULL)
            return NULL;
        found = PyDict_GetItemWithError(P->ns, key);
        Py_DECREF(key);
        Py_XINCREF(found);
        return found;
    }
    key = import_alias(t, dot - t);
    if (key == NULL)
        return NULL;
    found = PyDict_GetItemWithError(P->ns, key);
    Py_DECREF(key);
    if (found == NULL)
        return NULL;
    attr = PyUnicode_FromStringAndSize(dot + 1, n - (dot + 1 - t));
    if (attr == NULL)
        return NULL;
    r = PyObject_GetAttr(found, attr);
    Py_DECREF(attr);
    return r;
}

static int
keep(Parser *P, PyObject *o)
{
    int rc = PyList_Append(P->ps->refs, o);
    Py_DECREF(o);
    return rc;
}

typedef struct {
    long long value;
    PyObject *member;
} Pair;

static int
pair_cmp(const void *a, const void *b)
{
    long long x = ((const Pair *)a)->value, y = ((const Pair *)b)->value;
    return (x > y) - (x < y);
}

static Enum *
enum_of(Parser *P, const char *t, Py_ssize_t n)
{
    PyObject *key, *idx, *cls, *members;
    Enum *en, **grown;
    Pair *pairs;
    Py_ssize_t i, count;
    key = PyUnicode_FromStringAndSize(t, n);
    if (key == NULL)
        return NULL;
    idx = PyDict_GetItemWithError(P->enum_index, key);
    if (idx != NULL) {
        Py_DECREF(key);
        return P->ps->enums[PyLong_AsSsize_t(idx)];
    }
    cls = resolve(P, t, n);
    if (cls == NULL || !PyType_Check(cls)) {
        Py_XDECREF(cls);
        Py_DECREF(key);
        return NULL;
    }
    members = PySequence_List(cls);
    if (keep(P, cls) < 0 || members == NULL) {
        Py_XDECREF(members);
        Py_DECREF(key);
        return NULL;
    }
    count = PyList_GET_SIZE(members);
    en = PyMem_Calloc(1, sizeof(Enum));
    pairs = PyMem_Calloc(count + 1, sizeof(Pair));
    if (en == NULL || pairs == NULL)
        goto fail;
    en->cls = cls;
    en->n = count;
    for (i = 0; i < count; i++) {
        PyObject *m = PyList_GET_ITEM(members, i);
        PyObject *value = PyObject_GetAttrString(m, "value");
        int overflow;
        if (value == NULL)
            goto fail;
        pairs[i].value = PyLong_AsLongLongAndOverflow(value, &overflow);
        Py_DECREF(value);
        if (overflow || PyErr_Occurred())
            goto fail;
        pairs[i].member = m;
    }
    qsort(pairs, count, sizeof(Pair), pair_cmp);
    en->values = PyMem_Calloc(count + 1, sizeof(long long));
    en->members = PyMem_Calloc(count + 1, sizeof(PyObject *));
    if (en->values == NULL || en->members == NULL)
        goto fail;
    for (i = 0; i < count; i++) {
        en->values[i] = pairs[i].value;
        en->members[i] = pairs[i].member;
    }
    if (count > 0 && pairs[count - 1].value - pairs[0].value < 4 * count + 64) {
        en->lo = pairs[0].value;
        en->span = (Py_ssize_t)(pairs[count - 1].value - pairs[0].value) + 1;
        en->dense = PyMem_Calloc(en->span, sizeof(PyObject *));
        if (en->dense == NULL)
            goto fail;
        for (i = 0; i < count; i++)
            en->dense[pairs[i].value - en->lo] = pairs[i].member;
    }
    PyMem_Free(pairs);
    pairs = NULL;
    grown = PyMem_Realloc(P->ps->enums, (P->ps->nenums + 1) * sizeof(Enum *));
    if (grown == NULL)
        goto fail;
    P->ps->enums = grown;
    grown[P->ps->nenums] = en;
    idx = PyLong_FromSsize_t(P->ps->nenums++);
    en = NULL;
    if (idx == NULL || PyDict_SetItem(P->enum_index, key, idx) < 0) {
        Py_XDECREF(idx);
        Py_DECREF(key);
        Py_DECREF(members);
        return NULL;
    }
    Py_DECREF(idx);
    Py_DECREF(key);
    if (keep(P, members) < 0)  /* the members stay alive with the plan set */
        return NULL;
    return grown[P->ps->nenums - 1];
fail:
    if (en != NULL) {
        PyMem_Free(en->values);
        PyMem_Free(en->members);
        PyMem_Free(en->dense);
        PyMem_Free(en);
    }
    PyMem_Free(pairs);
    Py_DECREF(members);
    Py_DECREF(key);
    return NULL;
}

/* Another type's program: this module's, or an imported module's installed one. */
static Type *
target_of(Parser *P, const char *t, Py_ssize_t n)
{
    const char *dot = memchr(t, '.', n);
    PyObject *key, *idx, *module, *types, *codec, *encode, *self;
    Type *found = NULL;
    if (dot == NULL) {
        key = PyUnicode_FromStringAndSize(t, n);
        if (key == NULL)
            return NULL;
        idx = PyDict_GetItemWithError(P->index, key);
        Py_DECREF(key);
        return idx != NULL ? &P->ps->types[PyLong_AsSsize_t(idx)] : NULL;
    }
    key = import_alias(t, dot - t);
    if (key == NULL)
        return NULL;
    module = PyDict_GetItemWithError(P->ns, key);
    Py_DECREF(key);
    if (module == NULL)
        return NULL;
    types = PyObject_GetAttrString(module, "XDR_TYPES");
    if (types == NULL)
        return NULL;
    key = PyUnicode_FromStringAndSize(dot + 1, n - (dot + 1 - t));
    codec = key != NULL ? PyObject_GetItem(types, key) : NULL;
    Py_XDECREF(key);
    Py_DECREF(types);
    if (codec == NULL)
        return NULL;
    encode = PyObject_GetAttrString(codec, "encode");
    Py_DECREF(codec);
    if (encode == NULL)
        return NULL;
    if (PyCFunction_Check(encode)) {
        self = PyCFunction_GET_SELF(encode);
        if (self != NULL && Py_IS_TYPE(self, &ProgramType)) {
            found = ((Program *)self)->type;
            Py_INCREF(self);
            if (keep(P, self) < 0)
                found = NULL;
        }
    }
    Py_DECREF(encode);
    return found;
}

static int
parse_node(Parser *P, Node *node)
{
    const char *t;
    Py_ssize_t n;
    long long x;
    if (token(P, &t, &n) < 0 || n != 1)
        return -1;
    switch (*t) {
    case 'i': node->op = OP_INT; return 0;
    case 'I': node->op = OP_UINT; return 0;
    case 'c': node->op = OP_CHAR; return 0;
    case 'C': node->op = OP_UCHAR; return 0;
    case 'h': node->op = OP_SHORT; return 0;
    case 'H': node->op = OP_USHORT; return 0;
    case 'q': node->op = OP_HYPER; return 0;
    case 'Q': node->op = OP_UHYPER; return 0;
    case 'f': node->op = OP_FLOAT; return 0;
    case 'd': node->op = OP_DOUBLE; return 0;
    case 'b': node->op = OP_BOOL; return 0;
    case 'x': node->op = OP_QUAD; return 0;
    case 'v': node->op = OP_VOID; return 0;
    case 'e':
        node->op = OP_ENUM;
        if (token(P, &t, &n) < 0)
            return -1;
        node->en = enum_of(P, t, n);
        return node->en != NULL ? 0 : -1;
    case 'o':
    case 's':
    case 'O':
        node->op = *t == 'o' ? OP_FOPAQUE : *t == 's' ? OP_STRING : OP_OPAQUE;
        if (token_int(P, &x) < 0 || x < -1 || x > 0xFFFFFFFFLL)
            return -1;
        node->n = (Py_ssize_t)x;
        return node->op == OP_FOPAQUE && x < 0 ? -1 : 0;
    case 'p':
        node->op = OP_OPTIONAL;
        node->elem = arena_alloc(P->ps, sizeof(Node));
        return node->elem != NULL ? parse_node(P, node->elem) : -1;
    case 'a':
    case 'A':
        node->op = *t == 'a' ? OP_FARRAY : OP_VARRAY;
        if (token_int(P, &x) < 0 || x < -1 || x > 0xFFFFFFFFLL)
            return -1;
        if (node->op == OP_FARRAY && x < 0)
            return -1;
        node->n = (Py_ssize_t)x;
        if (token_int(P, &x) < 0 || x < 0 || x > 0xFFFFFFFFLL)
            return -1;
        node->least = (Py_ssize_t)x;
        node->elem = arena_alloc(P->ps, sizeof(Node));
        return node->elem != NULL ? parse_node(P, node->elem) : -1;
    case 'k':
        node->op = OP_CALL;
        if (token(P, &t, &n) < 0)
            return -1;
        node->target = target_of(P, t, n);
        return node->target != NULL ? 0 : -1;
    }
    return -1;
}

/* The offset of slot ``attr`` of ``cls`` (a __slots__ member), or -1. */
static Py_ssize_t
slot_offset(Parser *P, PyTypeObject *cls)
{
    const char *t;
    Py_ssize_t n, off = -1;
    PyObject *name, *descr;
    if (token(P, &t, &n) < 0)
        return -1;
    name = PyUnicode_FromStringAndSize(t, n);
    if (name == NULL)
        return -1;
    descr = PyObject_GetAttr((PyObject *)cls, name);
    Py_DECREF(name);
    if (descr == NULL)
        return -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY)
            && PyType_IsSubtype(cls, ((PyDescrObject *)descr)->d_type))
            off = m->offset;
    }
    Py_DECREF(descr);
    return off;
}

static int
parse_fields(Parser *P, Type *t)
{
    long long count, i;
    if (token_int(P, &count) < 0 || count < 0 || count > 1000000)
        return -1;
    t->nfields = (Py_ssize_t)count;
    t->fields = arena_alloc(P->ps, sizeof(Field) * (size_t)(count + 1));
    if (t->fields == NULL)
        return -1;
    for (i = 0; i < count; i++) {
        t->fields[i].off = slot_offset(P, t->cls);
        if (t->fields[i].off < 0 || parse_node(P, &t->fields[i].node) < 0)
            return -1;
    }
    return 0;
}

static int
parse_union(Parser *P, Type *t)
{
    long long count, labels, i, j;
    PyObject *value;
    t->disc_off = slot_offset(P, t->cls);
    if (t->disc_off < 0 || parse_node(P, &t->disc) < 0)
        return -1;
    switch (t->disc.op) {
    case OP_INT: case OP_UINT: case OP_ENUM: case OP_BOOL:
    case OP_CHAR: case OP_UCHAR: case OP_SHORT: case OP_USHORT:
        break;
    default:
        return -1;
    }
    value = PyUnicode_InternFromString("value");
    if (value == NULL)
        return -1;
    {
        PyObject *descr = PyObject_GetAttr((PyObject *)t->cls, value);
        Py_DECREF(value);
        if (descr == NULL)
            return -1;
        t->value_off = -1;
        if (Py_IS_TYPE(descr, &PyMemberDescr_Type)
            && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX)
            t->value_off = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (t->value_off < 0)
            return -1;
    }
    if (token_int(P, &count) < 0 || count < 0 || count > 1000000)
        return -1;
    t->narms = (Py_ssize_t)count;
    t->arms = arena_alloc(P->ps, sizeof(Arm) * (size_t)(count + 1));
    if (t->arms == NULL)
        return -1;
    for (i = 0; i < count; i++) {
        Arm *arm = &t->arms[i];
        if (token_int(P, &labels) < 0 || labels < 0 || labels > 1000000)
            return -1;
        arm->nlabels = (Py_ssize_t)labels;
        arm->labels = arena_alloc(P->ps, sizeof(long long) * (size_t)(labels + 1));
        if (arm->labels == NULL)
            return -1;
        for (j = 0; j < labels; j++)
            if (token_int(P, &arm->labels[j]) < 0)
                return -1;
        if (parse_node(P, &arm->node) < 0)
            return -1;
    }
    {
        const char *save = P->s, *tok;
        Py_ssize_t n;
        if (token(P, &tok, &n) < 0)
            return -1;
        if (n == 1 && *tok == '-')
            return 0;
        P->s = save;
        t->deflt = arena_alloc(P->ps, sizeof(Node));
        return t->deflt != NULL ? parse_node(P, t->deflt) : -1;
    }
}

static int
parse_type(Parser *P, Type *t)
{
    const char *tok;
    Py_ssize_t n;
    PyObject *cls;
    if (token(P, &tok, &n) < 0)
        return -1;
    if (!(n == 1 && *tok == '-')) {
        cls = resolve(P, tok, n);
        if (cls == NULL || !PyType_Check(cls)) {
            Py_XDECREF(cls);
            return -1;
        }
        t->cls = (PyTypeObject *)cls;
        if (keep(P, cls) < 0)
            return -1;
    }
    if (token(P, &tok, &n) < 0 || n != 1)
        return -1;
    t->kind = *tok;
    if (t->kind != 'V' && t->cls == NULL)
        return -1;
    switch (t->kind) {
    case 'V':
        return parse_node(P, &t->value);
    case 'T':
        return parse_fields(P, t);
    case 'L':
        if (parse_fields(P, t) < 0)
            return -1;
        t->link_off = slot_offset(P, t->cls);
        return t->link_off < 0 ? -1 : 0;
    case 'U':
        return parse_union(P, t);
    }
    return -1;
}

static int
node_ok(const Node *n)
{
    switch (n->op) {
    case OP_OPTIONAL:
    case OP_FARRAY:
    case OP_VARRAY:
        return node_ok(n->elem);
    case OP_CALL:
        return n->target->state == STATE_OK;
    default:
        return 1;
    }
}

static int
type_ok(const Type *t)
{
    Py_ssize_t i;
    if (t->state != STATE_OK)
        return 0;
    switch (t->kind) {
    case 'V':
        return node_ok(&t->value);
    case 'U':
        for (i = 0; i < t->narms; i++)
            if (!node_ok(&t->arms[i].node))
                return 0;
        return t->deflt == NULL || node_ok(t->deflt);
    default:
        for (i = 0; i < t->nfields; i++)
            if (!node_ok(&t->fields[i].node))
                return 0;
        return 1;
    }
}

/* Atomic types: every value their fields may hold, by their declared types,
 * is an object the cyclic GC never tracks (numbers, bool, None, str, bytes) or
 * an instance of another atomic type, and no type reaches itself.  Enums are
 * out (members are objects with a __dict__), so are arrays (lists) and
 * recursive types (a well-typed value could link back to itself).  Such an
 * instance can never be part of a reference cycle unless a field is given a
 * value its declared type does not allow, so the engine's decoder leaves it
 * untracked, as CPython does for tuples of atomic values. */
static int atomic_type(Type *t);

static int
atomic_node(const Node *n)
{
    switch (n->op) {
    case OP_ENUM:
    case OP_FARRAY:
    case OP_VARRAY:
        return 0;
    case OP_OPTIONAL:
        return atomic_node(n->elem);
    case OP_CALL:
        return atomic_type(n->target);
    default:
        return 1;
    }
}

static int
atomic_type(Type *t)
{
    Py_ssize_t i;
    int atomic = 1;
    if (t->atom == ATOM_YES || t->atom == ATOM_NO || t->atom == ATOM_VISITING)
        return t->atom == ATOM_YES;  /* visiting: t reaches itself */
    t->atom = ATOM_VISITING;
    switch (t->kind) {
    case 'V':
        atomic = atomic_node(&t->value);
        break;
    case 'T':
        atomic = t->cls != NULL && PyType_IS_GC(t->cls);
        for (i = 0; atomic && i < t->nfields; i++)
            atomic = atomic_node(&t->fields[i].node);
        break;
    case 'U':
        atomic = t->cls != NULL && PyType_IS_GC(t->cls) && t->disc.op != OP_ENUM;
        for (i = 0; atomic && i < t->narms; i++)
            atomic = atomic_node(&t->arms[i].node);
        if (atomic && t->deflt != NULL)
            atomic = atomic_node(t->deflt);
        break;
    default:                /* 'L': a linked list is recursive */
        atomic = 0;
    }
    t->atom = atomic ? ATOM_YES : ATOM_NO;
    return atomic;
}

static const char *const CODEC_SLOTS[4] = {"encode", "decode", "encode_into",
                                           "decode_from"};

/* Install a program for type ``t`` in ``codec``: 1 done, 0 skipped, -1 error. */
static int
install_one(PlanSet *ps, Type *t, PyObject *codec)
{
    Program *prog;
    PyObject *pure[4];
    int i;
    for (i = 0; i < 4; i++) {
        pure[i] = PyObject_GetAttrString(codec, CODEC_SLOTS[i]);
        if (pure[i] == NULL) {
            while (--i >= 0)
                Py_DECREF(pure[i]);
            return -1;
        }
    }
    prog = PyObject_GC_New(Program, &ProgramType);
    if (prog == NULL) {
        for (i = 0; i < 4; i++)
            Py_DECREF(pure[i]);
        return -1;
    }
    prog->owner = (PlanSet *)Py_NewRef(ps);
    prog->type = t;
    prog->name = Py_NewRef(t->name);
    prog->pure_encode = pure[0];
    prog->pure_decode = pure[1];
    prog->pure_encode_into = pure[2];
    prog->pure_decode_from = pure[3];
    PyObject_GC_Track(prog);
    for (i = 0; i < 4; i++) {
        PyObject *method = PyObject_GetAttrString((PyObject *)prog, CODEC_SLOTS[i]);
        if (method == NULL || PyObject_SetAttrString(codec, CODEC_SLOTS[i], method) < 0) {
            Py_XDECREF(method);
            Py_DECREF(prog);
            return -1;
        }
        Py_DECREF(method);
    }
    Py_DECREF(prog);
    return 1;
}

static PyObject *
engine_install(PyObject *module, PyObject *args)
{
    PyObject *plans, *ns, *codecs, *result = NULL;
    Parser P = {NULL, NULL, NULL, NULL, NULL, NULL};
    PlanSet *ps;
    Py_ssize_t i, count, tokens = 0, installed = 0;
    int changed;
    if (!PyArg_ParseTuple(args, "O!O!O!:install", &PyTuple_Type, &plans, &PyDict_Type,
                          &ns, &PyDict_Type, &codecs))
        return NULL;
    count = PyTuple_GET_SIZE(plans);
    for (i = 0; i < count; i++) {
        Py_ssize_t n, j;
        const char *s;
        PyObject *plan = PyTuple_GET_ITEM(plans, i);
        if (!PyUnicode_Check(plan))
            return PyErr_Format(PyExc_TypeError, "plans must be strings");
        s = PyUnicode_AsUTF8AndSize(plan, &n);
        if (s == NULL)
            return NULL;
        tokens += 1;
        for (j = 0; j < n; j++)
            tokens += s[j] == ' ';
    }
    ps = PyObject_GC_New(PlanSet, &PlanSetType);
    if (ps == NULL)
        return NULL;
    ps->arena = NULL;
    ps->arena_used = 0;
    ps->arena_size = (tokens + count + 1) * 128;
    ps->types = NULL;
    ps->ntypes = 0;
    ps->enums = NULL;
    ps->nenums = 0;
    ps->refs = PyList_New(0);
    PyObject_GC_Track(ps);
    ps->arena = PyMem_Calloc(1, ps->arena_size);
    ps->types = PyMem_Calloc(count + 1, sizeof(Type));
    if (ps->refs == NULL || ps->arena == NULL || ps->types == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    ps->ntypes = count;
    P.ps = ps;
    P.ns = ns;
    P.index = PyDict_New();
    P.enum_index = PyDict_New();
    if (P.index == NULL || P.enum_index == NULL)
        goto done;
    for (i = 0; i < count; i++) {
        const char *tok;
        Py_ssize_t n;
        PyObject *idx;
        P.s = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(plans, i), &n);
        P.end = P.s + n;
        if (token(&P, &tok, &n) < 0) {
            PyErr_SetString(PyExc_ValueError, "empty plan");
            goto done;
        }
        ps->types[i].name = PyUnicode_FromStringAndSize(tok, n);
        idx = PyLong_FromSsize_t(i);
        if (ps->types[i].name == NULL || idx == NULL
            || PyDict_SetItem(P.index, ps->types[i].name, idx) < 0) {
            Py_XDECREF(idx);
            goto done;
        }
        Py_DECREF(idx);
        ps->types[i].state = STATE_OK;  /* until its plan proves otherwise */
    }
    for (i = 0; i < count; i++) {
        Py_ssize_t n;
        const char *tok;
        P.s = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(plans, i), &n);
        P.end = P.s + n;
        token(&P, &tok, &n);
        /* A plan the engine cannot run (an unknown node, a name it cannot find)
         * leaves its type to the pure-Python code. */
        if (parse_type(&P, &ps->types[i]) < 0 || token(&P, &tok, &n) == 0) {
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_Exception))
                    goto done;
                PyErr_Clear();
            }
            ps->types[i].state = STATE_UNSUPPORTED;
        }
    }
    do {
        changed = 0;
        for (i = 0; i < count; i++)
            if (ps->types[i].state == STATE_OK && !type_ok(&ps->types[i])) {
                ps->types[i].state = STATE_UNSUPPORTED;
                changed = 1;
            }
    } while (changed);
    for (i = 0; i < count; i++)
        if (ps->types[i].state == STATE_OK)
            atomic_type(&ps->types[i]);
    for (i = 0; i < count; i++) {
        Type *t = &ps->types[i];
        PyObject *codec;
        int rc;
        if (t->state != STATE_OK)
            continue;
        codec = PyDict_GetItemWithError(codecs, t->name);
        if (codec == NULL && !PyErr_Occurred())
            codec = PyDict_GetItemWithError(ns, t->name);
        if (codec == NULL) {
            if (PyErr_Occurred())
                goto done;
            continue;
        }
        Py_INCREF(codec);
        rc = install_one(ps, t, codec);
        Py_DECREF(codec);
        if (rc < 0)
            goto done;
        installed += rc;
    }
    result = PyLong_FromSsize_t(installed);
done:
    Py_XDECREF(P.index);
    Py_XDECREF(P.enum_index);
    Py_DECREF(ps);
    return result;
}

static PyMethodDef engine_methods[] = {
    {"install", engine_install, METH_VARARGS,
     "install(plans, namespace, codecs) -> int: prepare the plans, install the "
     "programs in the codecs; returns how many types the engine runs"},
    {NULL, NULL, 0, NULL},
};

static int
engine_exec(PyObject *module)
{
    PyObject *errors;
    if (PyType_Ready(&ProgramType) < 0 || PyType_Ready(&PlanSetType) < 0)
        return -1;
    errors = PyImport_ImportModule("xdrgen.runtime.errors");
    if (errors == NULL)
        return -1;
    EngineMismatch = PyObject_GetAttrString(errors, "XdrEngineMismatch");
    Py_DECREF(errors);
    if (EngineMismatch == NULL)
        return -1;
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", ENGINE_MAX_DEPTH) < 0)
        return -1;
    Py_INCREF(&ProgramType);
    if (PyModule_AddObject(module, "Program", (PyObject *)&ProgramType) < 0) {
        Py_DECREF(&ProgramType);
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot engine_slots[] = {
    {Py_mod_exec, engine_exec},
    {0, NULL},
};

static struct PyModuleDef engine_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "xdrgen.runtime._engine",
    .m_doc = "The optional compiled marshalling engine of xdrgen.",
    .m_size = 0,
    .m_methods = engine_methods,
    .m_slots = engine_slots,
};

PyMODINIT_FUNC
PyInit__engine(void)
{
    return PyModuleDef_Init(&engine_module);
}
