"""How .x names become Python names (documented in docs/generated-api.md).

Type and constant names keep their .x spelling (rpcgen's C names).  A name that
is a Python keyword, a module-level name that would shadow a Python builtin or a
name the generated functions use for their own variables (``list``, ``len``,
``data``, ``off``...), or a field that would clash with a name the generated
code needs (``self`` in ``__init__``, ``value`` next to a union's
discriminant), gets a trailing underscore.  So does such a name already
followed by underscores (``from_`` becomes ``from__``), so that two .x names
never become one Python name.  Everything the generated code adds for itself
starts with an underscore, except ``XDR_TYPES``, ``PROCEDURE_TABLES`` and
``PROCEDURES`` and the variables of generated functions listed in
``FUNCTION_LOCALS``.
"""

from __future__ import annotations

import keyword

#: Public names every generated module defines itself.
GENERATED_PUBLIC = frozenset({"XDR_TYPES", "PROCEDURE_TABLES", "PROCEDURES"})


#: Python 3.11's builtins (a fixed list, so the output does not depend on the
#: Python that runs the generator).  A module-level ``len`` or ``list`` would
#: shadow the one the marshallers call and the annotations name.
PYTHON_BUILTINS = frozenset(
    """
    ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup
    BlockingIOError BrokenPipeError BufferError BytesWarning ChildProcessError
    ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError
    DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception
    ExceptionGroup FileExistsError FileNotFoundError FloatingPointError FutureWarning
    GeneratorExit IOError ImportError ImportWarning IndentationError IndexError
    InterruptedError IsADirectoryError KeyError KeyboardInterrupt LookupError
    MemoryError ModuleNotFoundError NameError NotADirectoryError NotImplemented
    NotImplementedError OSError OverflowError PendingDeprecationWarning
    PermissionError ProcessLookupError RecursionError ReferenceError ResourceWarning
    RuntimeError RuntimeWarning StopAsyncIteration StopIteration SyntaxError
    SyntaxWarning SystemError SystemExit TabError TimeoutError TypeError
    UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError
    UnicodeTranslateError UnicodeWarning UserWarning ValueError Warning
    ZeroDivisionError abs aiter all anext any ascii bin bool breakpoint bytearray
    bytes callable chr classmethod compile complex copyright credits delattr dict dir
    divmod enumerate eval exec exit filter float format frozenset getattr globals
    hasattr hash help hex id input int isinstance issubclass iter len license list
    locals map max memoryview min next object oct open ord pow print property quit
    range repr reversed round set setattr slice sorted staticmethod str sum super
    tuple type vars zip __debug__
    """.split()
)


#: Variables and parameters of generated functions that read the .x's names in
#: their bodies (``_new(T)``, local annotations): a module-level type of the same
#: name would be hidden inside them.  tests/test_generate_names.py checks that this
#: covers every such function; temporaries (``x1``) avoid the module's names instead.
FUNCTION_LOCALS = frozenset("buf data e f head k n o off q r v".split())

#: Module-level names reserved for the generated module: ``annotations`` is
#: imported from ``__future__``.
_MODULE_RESERVED = GENERATED_PUBLIC | PYTHON_BUILTINS | FUNCTION_LOCALS | {"annotations"}
#: Member names an ``enum.IntEnum`` cannot have: ``mro`` raises at import; mypy
#: takes ``name`` and ``value`` for Enum's own properties.
_ENUM_RESERVED = _MODULE_RESERVED | {"mro", "name", "value"}


def _escaped(name: str, reserved: frozenset[str] | set[str]) -> str:
    """``name`` plus ``_`` when it is reserved or a reserved name plus underscores.

    Escaping the underscored forms too keeps the mapping one-to-one: ``from``
    becomes ``from_`` and ``from_`` becomes ``from__``.
    """
    base = name
    while True:
        if keyword.iskeyword(base) or base in reserved:
            return name + "_"
        if not base.endswith("_"):
            return name
        base = base[:-1]


def py_name(name: str) -> str:
    """A module-level name (type, constant, enum member) as Python spells it."""
    return _escaped(name, _MODULE_RESERVED)


def enum_member_name(name: str) -> str:
    """An enum member inside its ``IntEnum`` class (its module-level alias is ``py_name``)."""
    return _escaped(name, _ENUM_RESERVED)


def field_name(name: str) -> str:
    """A struct field or union discriminant as an attribute / keyword argument."""
    return _escaped(name, {"self"})


def union_disc_name(name: str) -> str:
    """A union's discriminant attribute; ``value`` is taken by the arm's value."""
    attr = field_name(name)
    return "value_" if attr == "value" else attr


def module_name_for(stem: str) -> str:
    """Default module name for ``stem.x``: the stem, made a valid identifier."""
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    if not text or text[0].isdigit():
        text = "_" + text
    return text + "_" if keyword.iskeyword(text) else text


def camel(name: str) -> str:
    """``DEMO_RPC_PROGRAM`` -> ``DemoRpcProgram``: how every generated client, handler
    and server class is named after its procedure table (libvirt, guestfs, ONC RPC)."""
    return "".join(w.capitalize() for w in name.lower().split("_") if w)
