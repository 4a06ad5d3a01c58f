"""The Python backend of the marshalling plan: straight-line encoders and decoders.

For every type the generator emits ``_enc_<T>(buf, v)`` (append to a bytearray)
and ``_dec_<T>(data, off) -> (value, off)``.  Bodies are specialised code, never a
walk over descriptors at run time, written from the type's plan
(:mod:`xdrgen.generator.plan`), which both directions follow:

- runs of consecutive fixed-size items become one precomputed ``struct.Struct``
  call (``buf += _S3.pack(...)`` / ``... = _S3.unpack_from(data, off)``);
- typedefs, and small non-recursive structs and unions, are inlined where used;
- lengths are checked against the declared maximum and the bytes remaining
  before anything is allocated;
- every failing spot sits in its own ``try`` (free in CPython 3.11 until it
  raises) whose handler builds the error with the field path and byte offset, so
  the success path does no bookkeeping.

Modules: :mod:`.context` (module-level names, scalars as ``struct`` codes,
annotations), :mod:`.body` (lines of one function), :mod:`.encode`,
:mod:`.decode` and :mod:`.unpack` (the two directions), :mod:`.functions` (one
type's functions and shortcuts).
"""

from xdrgen.generator.marshal.context import ModuleContext, py_type, union_value_type
from xdrgen.generator.marshal.functions import TypeFunctions, type_functions

__all__ = [
    "ModuleContext",
    "TypeFunctions",
    "py_type",
    "type_functions",
    "union_value_type",
]
