/*
 * plan_load.c: plan strings to prepared Types, once per generated module.
 *
 * Reads the notation of xdrgen/generator/engine_plan.py; resolves each class's
 * __slots__ to offsets in the object, each enum to a table of its members, each
 * call to the called type's program (this module's, or the one an --import'ed
 * module installed); and tells which types can run (type_ok).  Anything it
 * cannot resolve fails the type's plan, which then stays on pure Python.
 */

#include "engine.h"

/* ------------------------------------------------------------------ plans */

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

int
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
    r = getattr_interned(found, attr);
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
        PyObject *value = getattr_named(m, "value");
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
    types = getattr_named(module, "XDR_TYPES");
    if (types == NULL)
        return NULL;
    key = PyUnicode_FromStringAndSize(dot + 1, n - (dot + 1 - t));
    codec = key != NULL ? PyObject_GetItem(types, key) : NULL;
    Py_XDECREF(key);
    Py_DECREF(types);
    if (codec == NULL)
        return NULL;
    encode = getattr_named(codec, "encode");
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
    descr = getattr_interned((PyObject *)cls, name);
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

int
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

int
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
 * untracked, as CPython does for tuples of atomic values.  Decided once per
 * type, when its module's plans are loaded. */
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

int
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
