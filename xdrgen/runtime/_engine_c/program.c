/*
 * program.c: the engine's two Python types and its way back to pure Python.
 *
 * Program (one type's compiled encode / decode / encode_into / decode_from,
 * which a codec's methods become; the methods themselves are in encode.c and
 * decode.c) and PlanSet (what one generated module's plans prepared, kept alive
 * by its programs), plus call_pure and settle: how a C path that gave up hands
 * the same input to the pure-Python function.
 */

#include "engine.h"

/* ------------------------------------------------------------------ fallback */

/* Call a pure-Python function as if the caller had called it directly.  CPython
 * 3.11 counts the call of this C method as one level of recursion, which a
 * direct call of the pure function does not: without giving that level back,
 * data that nests to Python's recursion limit would fail one level earlier (a
 * different path and offset) through the engine.  3.12 counts Python frames
 * apart from C calls. */
PyObject *
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

PyObject *
call_pure1(PyObject *func, PyObject *arg)
{
    return call_pure(func, &arg, 1);
}

PyObject *EngineMismatch;  /* xdrgen.runtime.errors.XdrEngineMismatch (module.c) */

/* The C path gave up with ``status``: ``result`` is what the pure function
 * returned for the same input (NULL: it raised, which is the answer). */
PyObject *
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

PyTypeObject ProgramType = {
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

PyTypeObject PlanSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "xdrgen.runtime._engine.PlanSet",
    .tp_basicsize = sizeof(PlanSet),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The prepared programs of one generated module.",
    .tp_dealloc = (destructor)planset_dealloc,
    .tp_traverse = (traverseproc)planset_traverse,
};
