/*
 * module.c: the module xdrgen.runtime._engine, and its one function, install.
 *
 * install(plans, namespace, codecs) prepares one generated module's plans into
 * a PlanSet (plan_load.c), marks the types that cannot run, and replaces the
 * codec methods of the others with a Program's (program.c).  Module init makes
 * the types ready and finds XdrEngineMismatch.
 */

#include "engine.h"

/* ------------------------------------------------------------------ install */

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
        pure[i] = getattr_named(codec, CODEC_SLOTS[i]);
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
        PyObject *method = getattr_named((PyObject *)prog, CODEC_SLOTS[i]);
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
