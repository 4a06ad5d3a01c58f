/*
 * decode.c: XDR bytes to Python values, run from a prepared Type (engine.h).
 *
 * The C path of a Program's decode and decode_from: every read is checked
 * against the bytes left, every declared length against its bound and the bytes
 * left before anything is allocated; on anything it does not accept it drops
 * what it made and lets the pure-Python decoder answer (program.c's settle).
 */

#include "engine.h"

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

/* ------------------------------------------- entry points: Program.decode, decode_from */

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

PyObject *
m_decode(PyObject *self, PyObject *data)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_decode((Program *)self, data);
}

PyObject *
m_decode_from(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!program_alive((Program *)self))
        return NULL;
    return program_decode_from((Program *)self, args, nargs);
}
