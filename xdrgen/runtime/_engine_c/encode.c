/*
 * encode.c: Python values to XDR bytes, run from a prepared Type (engine.h).
 *
 * The C path of a Program's encode and encode_into: it writes straight into the
 * result bytes (or the caller's bytearray) and, on anything it does not accept,
 * stops with a status (ST_ERROR or ST_DECLINE) and lets the pure-Python encoder
 * answer (program.c's settle).  Apart from decode.c: the two share no hot-path
 * code but the inline helpers of engine.h.
 */

#include "engine.h"

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

/* ------------------------------------------- entry points: Program.encode, encode_into */

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

PyObject *
m_encode(PyObject *self, PyObject *v)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_encode((Program *)self, v);
}

PyObject *
m_encode_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_encode_into((Program *)self, args, nargs);
}
