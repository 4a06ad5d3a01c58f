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

/* engine.h: what the engine's files share (docs/compiled-engine.md, "Source layout"):
 * the prepared program (Op, Enum, Node, Field, Arm, Type), the Python objects
 * (PlanSet, Program), the parser's state, small helpers the hot paths of encode.c
 * and decode.c both inline, and the few functions one file calls in another. */
#ifndef XDRGEN_ENGINE_H
#define XDRGEN_ENGINE_H

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

/* Why the C path gave up: a definite error (the pure code must raise) or an
 * input it leaves to the pure code. */
enum { ST_OK = 0, ST_ERROR = 1, ST_DECLINE = 2 };

/* The plan parser's state, shared by plan_load.c and install (module.c). */
typedef struct {
    PlanSet *ps;
    PyObject *ns;           /* the generated module's globals */
    PyObject *index;        /* type name -> index */
    PyObject *enum_index;   /* enum class name -> index */
    const char *s, *end;
} Parser;

/* ------------------------------------------------------- helpers used by several files */

static inline const Node *
arm_for(const Type *t, long long x)
{
    Py_ssize_t i, j;
    for (i = 0; i < t->narms; i++)
        for (j = 0; j < t->arms[i].nlabels; j++)
            if (t->arms[i].labels[j] == x)
                return &t->arms[i].node;
    return NULL;
}

/* A program whose pure functions were cleared (module torn down) refuses. */
static inline int
program_alive(Program *self)
{
    if (self->pure_encode && self->pure_decode && self->pure_encode_into
        && self->pure_decode_from)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "xdrgen engine program used after teardown");
    return 0;
}

/* An attribute looked up by an interned name.  CPython 3.11's type attribute
 * cache keeps a reference to the name of each lookup it caches: fresh copies of
 * a name (PyObject_GetAttrString, a name made from a plan's token) would fill it
 * with up to 4096 strings over repeated installs; the interned one is shared. */
static inline PyObject *
getattr_interned(PyObject *o, PyObject *name)
{
    PyObject *r;
    PyUnicode_InternInPlace(&name);
    r = PyObject_GetAttr(o, name);
    Py_DECREF(name);
    return r;
}

/* getattr_interned with a C string: the name is interned once, then shared. */
static inline PyObject *
getattr_named(PyObject *o, const char *name)
{
    PyObject *key = PyUnicode_InternFromString(name);
    return key == NULL ? NULL : getattr_interned(o, key);
}

/* ------------------------------------------------- functions and objects across files */

/* The files are compiled into one shared object: what they share stays hidden
 * in it, and only PyInit__engine (PyMODINIT_FUNC) is exported. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* program.c: the two Python types and the fallback to the pure-Python code. */
extern PyTypeObject PlanSetType;
extern PyTypeObject ProgramType;
extern PyObject *EngineMismatch;
PyObject *call_pure(PyObject *func, PyObject *const *args, Py_ssize_t nargs);
PyObject *call_pure1(PyObject *func, PyObject *arg);
PyObject *settle(Program *self, PyObject *result, int status, const char *what);

/* encode.c and decode.c: the Program's methods. */
PyObject *m_encode(PyObject *self, PyObject *v);
PyObject *m_encode_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *m_decode(PyObject *self, PyObject *data);
PyObject *m_decode_from(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* plan_load.c: reading plan strings into Types. */
int token(Parser *P, const char **t, Py_ssize_t *n);
int parse_type(Parser *P, Type *t);
int type_ok(const Type *t);
int atomic_type(Type *t);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* XDRGEN_ENGINE_H */
