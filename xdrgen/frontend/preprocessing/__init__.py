"""The built-in C preprocessor and the --cpp mode, one job per module.

``xdrgen.frontend.preprocess`` is the entry point: it chooses between the built-in
subset (``builtin``) and the system cpp (``system``).  The C token and integer
expression modules (``ctokens``, ``cexpr``, ``macros``) are shared with the C header
reader (``cheaders``).
"""
