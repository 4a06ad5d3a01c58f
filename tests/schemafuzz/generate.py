"""Seeded random ``.x`` schemas that both rpcgen (+ gcc) and xdrgen must accept.

``generate_schema(seed, options)`` is a pure function of its arguments: the same
seed gives the same schema.  Every construct of RFC 4506 that Debian's rpcgen
compiles is drawn, nested in every way the definition order allows: each new
definition uses earlier ones, so a struct ends up in a union arm in an array in
an optional, and so on.  What rpcgen cannot compile is left out on purpose
(each case is noted where it is avoided):

- ``union X`` as a type specifier (rpcgen writes XDR unions as C structs);
- ``switch (enum X d)`` (rpcgen garbles the discriminant's C declaration);
- a variable-length array of the struct being defined (rpcgen writes
  ``struct struct``); recursion goes through optional data instead;
- negative hexadecimal case labels (rpcgen's lexer stops at ``-0x``);
- ``quadruple`` (rpcgen has no routine for it).

Fixed arrays of ``bool`` inside structs are generated: rpcgen's inline code
names the C type ``bool`` there, which the reference build maps to ``bool_t``
(see ``runner.REFERENCE_CFLAGS``).

Names are ``<prefix>_...`` so that many schemas share one ``.x``; some types,
fields and enum members instead take names Python reserves or uses (keywords,
builtins, names the generated code uses for itself).  Those bare names must be
unique across a batch: ``taken`` holds the ones earlier schemas of the batch
took, and a name found there falls back to the prefixed form without changing
the random stream, so a seed still gives the same shapes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from schemafuzz.schema import (
    Arm,
    Const,
    Decl,
    Definition,
    Enum,
    Label,
    Member,
    Param,
    Procedure,
    Program,
    Ref,
    Schema,
    Size,
    Struct,
    Typedef,
    Union_,
    Version,
)

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
UINT_MAX = 2**32 - 1

#: rpcgen's primitive spellings that xdrgen reads, by role.
PRIMITIVES = (
    "int",
    "unsigned int",
    "unsigned",
    "hyper",
    "unsigned hyper",
    "float",
    "double",
    "bool",
    "char",
    "short",
    "unsigned char",
    "unsigned short",
    "long",
    "unsigned long",
    "u_char",
    "u_short",
    "u_int",
    "u_long",
    "int32_t",
    "uint32_t",
    "int64_t",
    "uint64_t",
    "u_int32_t",
    "u_int64_t",
    "quad_t",
    "u_quad_t",
)
#: The common spellings, drawn more often than the rest.
COMMON_PRIMITIVES = (
    "int",
    "unsigned int",
    "hyper",
    "unsigned hyper",
    "float",
    "double",
    "bool",
)
#: Discriminant spellings -> the value set they have.
DISCRIMINANT_PRIMITIVES = {
    "int": "int",
    "unsigned int": "uint",
    "unsigned": "uint",
    "u_int": "uint",
    "bool": "bool",
}

#: Type names that collide with what Python or the generated module use.
TYPE_NAME_POOL = (
    "object", "type", "list", "dict", "str", "len", "tuple", "set",
    "range", "super", "property", "print", "hash", "id", "iter", "next", "sum",
    "any", "all", "map", "filter", "zip", "format", "vars", "repr", "isinstance",
    "bytearray", "memoryview", "Exception", "ValueError", "annotations",
    "from", "class", "def", "None", "True", "False", "lambda", "pass", "in", "is",
    "not", "and", "or", "import", "global", "yield", "async", "await", "with",
    "assert", "del", "elif", "except", "finally", "nonlocal", "try",
    "match", "case_", "self", "cls", "value", "data", "off", "v", "e", "n",
    "x", "b", "d", "x1", "from_", "class_", "XDR_TYPES_", "self_", "d2", "n3", "b4", "Any", "TypeAlias", "IntEnum",
    "Enum", "Codec", "XdrStruct", "XdrUnion", "XDR_TYPES", "PROCEDURES",
    "PROCEDURE_TABLES", "Buffer", "Invalid", "head", "o", "r", "k", "f", "q", "mark",
    "jump", "nxt", "arg1", "buffer", "offset",
)
#: Field and discriminant names that collide with Python (struct member names are
#: scoped to their struct in C, so these may repeat across schemas).
FIELD_NAME_POOL = (
    "object", "type", "list", "from", "class", "None", "True", "False", "self",
    "value", "value_", "def", "lambda", "pass", "in", "is", "not", "and", "or",
    "import", "global", "yield", "async", "await", "with", "return_", "str",
    "bytes", "len", "data", "buf", "off", "v", "e", "n", "x", "next", "id",
    "hash", "format", "encode", "decode", "name", "size", "items", "keys",
    "copy", "count", "index", "match", "print", "super", "from_", "self_", "class_",
)
#: Enum member names that collide with Python (enum constants live in C's
#: ordinary name space with type names, so they share ``taken``).
MEMBER_NAME_POOL = (
    "None", "True", "False", "Ellipsis", "NotImplemented", "XDR_TYPES",
    "PROCEDURES", "name", "value", "from", "class", "mro", "object",
)

#: Procedure names that collide with the generated clients' and servers' own
#: names once lower-cased (C macros: unique across a batch, like type names).
PROCEDURE_NAME_POOL = (
    "LIST", "CLOSE", "CONNECTION", "CONNECT_TCP", "CONNECT_UDP", "CONNECT_UNIX",
    "CREATE", "SERVICE", "PROGRAM", "VERSION", "SELF", "ARG", "ARGS", "RPC_TIMEOUT",
    "FROM", "CLASS", "NONE", "NAME", "STR", "TYPE", "VALUE", "DATA", "BYTES",
    "HANDLER", "SERVER", "ENCODE", "DECODE", "XDR_TYPES", "PROCEDURES",
)  # not CLIENT, CALL: libtirpc's C names (a macro of that name breaks the C)
#: Argument names (C accepts Python's keywords and builtins).
ARG_NAME_POOL = ("from", "class", "self", "arg", "args", "rpc_timeout", "list", "x", "data")


@dataclass(frozen=True)
class Options:
    """What the generator draws; the defaults are what CI runs."""

    #: ``<0>`` and ``[0]`` (an array, opaque or string that can only be empty).
    zero_length: bool = True
    #: Bare names from the pools above (otherwise every name is prefixed).
    python_names: bool = True
    min_definitions: int = 4
    max_definitions: int = 14
    #: An RFC 5531 program block using the schema's types (rpcgen -N style).
    programs: bool = True


@dataclass
class _Type:
    """What the generator knows about a type it defined."""

    name: str
    kind: str  # enum, struct, union, typedef
    #: The value set when the type can be a union discriminant: int, uint, bool, enum.
    disc: str | None = None
    #: Enum members (for case labels) when ``disc == "enum"``.
    members: tuple[Member, ...] = ()


@dataclass
class _State:
    rng: random.Random
    options: Options
    prefix: str
    taken: set[str]
    definitions: list[Definition] = field(default_factory=list)
    types: list[_Type] = field(default_factory=list)
    #: Constants by use: small sizes (also fixed lengths), large maxima, case labels.
    small: list[Const] = field(default_factory=list)
    large: list[Const] = field(default_factory=list)
    labels: list[Const] = field(default_factory=list)
    #: Struct names referenced forward (``struct X *p``) that must still be defined.
    pending: list[str] = field(default_factory=list)
    counter: int = 0
    #: The rarer primitive spellings this schema draws more often.
    favourites: tuple[str, ...] = ()

    def fresh(self, letter: str) -> str:
        self.counter += 1
        return f"{self.prefix}_{letter}{self.counter}"

    def bare_or(self, pool: tuple[str, ...], chance: float, fallback: str) -> str:
        """A name from ``pool`` with probability ``chance`` when free, else ``fallback``."""
        if not self.options.python_names:
            return fallback
        if self.rng.random() >= chance:
            return fallback
        name = self.rng.choice(pool)
        if name in self.taken:
            return fallback
        self.taken.add(name)
        return name


def generate_schema(
    seed: int, options: Options = Options(), taken: set[str] | None = None
) -> Schema:
    """The schema of ``seed``; bare names it takes are added to ``taken``."""
    rng = random.Random(seed)
    state = _State(rng, options, f"f{seed}", taken if taken is not None else set())
    # Favourites rotate with the seed: any run of 10 consecutive seeds favours
    # each rarer spelling once.
    rare = [p for p in PRIMITIVES if p not in COMMON_PRIMITIVES]
    state.favourites = tuple(rare[(2 * seed + k) % len(rare)] for k in range(2))
    _constants(state)
    count = rng.randint(options.min_definitions, options.max_definitions)
    makers = (_enum, _struct, _struct, _union, _union, _typedef, _typedef)
    for _ in range(count):
        if state.pending and rng.random() < 0.5:
            _struct(state, state.pending.pop(0))
            continue
        rng.choice(makers)(state)
    while state.pending:
        _struct(state, state.pending.pop(0))
    if options.programs and rng.random() < 0.5:
        _program(state, seed)
    return Schema(seed, state.prefix, state.definitions)


# -- literals and constants ------------------------------------------------------


def _int_text(rng: random.Random, value: int) -> str:
    """Decimal mostly; hexadecimal or octal for non-negative values sometimes."""
    if value >= 0:
        roll = rng.random()
        if roll < 0.2:
            return hex(value)
        if roll < 0.27 and value > 0:
            return "0" + format(value, "o")
    return str(value)


def _constants(state: _State) -> None:
    rng = state.rng
    upper = state.prefix.upper()
    for index in range(rng.randint(0, 4)):
        role = rng.choice(("small", "large", "label"))
        if role == "small":
            value = rng.choice((1, 2, 3, 4, 5, 7, 8, 12, 16))
            if state.options.zero_length and rng.random() < 0.15:
                value = 0
        elif role == "large":
            value = rng.choice((1000, 65535, 65536, INT_MAX, INT_MAX + 1, UINT_MAX))
        else:
            value = rng.choice((INT_MIN, -100, -1, 0, 1, 42, INT_MAX))
        name = f"{upper}_C{index}"
        const = Const(name, value, _int_text(rng, value))
        # A constant defined by an earlier one.
        earlier = [c for c in state.definitions if isinstance(c, Const) and c.value == value]
        if earlier and rng.random() < 0.5:
            const = Const(name, value, earlier[0].name)
        state.definitions.append(const)
        {"small": state.small, "large": state.large, "label": state.labels}[role].append(
            const
        )


def _size(state: _State, *, fixed: bool, opaque: bool = False) -> Size:
    """A fixed length or a maximum: small mostly, boundaries and constants sometimes."""
    rng = state.rng
    roll = rng.random()
    if state.options.zero_length and roll < 0.06:
        return Size(0, "0")
    usable = [c for c in state.small if c.value > 0 or state.options.zero_length]
    if fixed:
        if usable and roll < 0.2:
            const = rng.choice(usable)
            return Size(const.value, const.name)
        if opaque:
            value = rng.choice((1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 32, 33))
        else:
            value = rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 7, 9, 13))
        return Size(value, _int_text(rng, value))
    if roll < 0.25:
        return Size(None, "")
    if roll < 0.4 and (usable or state.large):
        const = rng.choice(usable + state.large)
        return Size(const.value, const.name)
    if roll < 0.55:
        value = rng.choice((INT_MAX, INT_MAX + 1, UINT_MAX, 65536, 1000))
        return Size(value, _int_text(rng, value))
    value = rng.choice((1, 1, 2, 3, 4, 5, 8, 16, 64))
    return Size(value, _int_text(rng, value))


# -- declarations --------------------------------------------------------------


def _primitive(state: _State) -> Ref:
    rng = state.rng
    roll = rng.random()
    if roll < 0.45:
        return Ref(rng.choice(COMMON_PRIMITIVES))
    if roll < 0.95:
        # Each schema favours a few rarer spellings, so that every spelling meets
        # every shape (array, optional, arm...) within a few hundred schemas.
        return Ref(rng.choice(state.favourites))
    return Ref(rng.choice(PRIMITIVES))


def _named(state: _State, *, kinds: tuple[str, ...] | None = None) -> Ref | None:
    """A reference to an earlier type, sometimes written ``struct X`` / ``enum X``."""
    rng = state.rng
    candidates = [t for t in state.types if kinds is None or t.kind in kinds]
    if not candidates:
        return None
    enums = [t for t in candidates if t.kind == "enum"]
    if enums and rng.random() < 0.15:
        candidates = enums  # enums are small: without this they are rarely used
    # Recent types more often: they nest the earlier ones.
    chosen = candidates[-1 - min(int(rng.expovariate(0.5)), len(candidates) - 1)]
    if chosen.kind in ("struct", "enum") and rng.random() < 0.2:
        return Ref(f"{chosen.kind} {chosen.name}", chosen.name)
    return Ref(chosen.name, chosen.name)


def _element(state: _State, named_share: float = 0.55) -> Ref:
    if state.rng.random() < named_share:
        named = _named(state)
        if named is not None:
            return named
    return _primitive(state)


def _decl(state: _State, name: str, *, owner: str | None, arm: bool = False) -> Decl:
    """A field, arm or typedef body of any kind; ``owner`` may be referenced by pointer."""
    rng = state.rng
    roll = rng.random()
    if arm and roll < 0.15:
        return Decl("void", None)
    roll = rng.random()
    if roll < 0.3:
        return Decl("plain", name, _element(state))
    if roll < 0.43:
        return Decl("fixed_array", name, _element(state, 0.45), _size(state, fixed=True))
    if roll < 0.57:
        return Decl("var_array", name, _element(state, 0.45), _size(state, fixed=False))
    if roll < 0.72:
        return Decl("optional", name, _optional_target(state, owner))
    if roll < 0.8:
        return Decl("fixed_opaque", name, size=_size(state, fixed=True, opaque=True))
    if roll < 0.89:
        return Decl("var_opaque", name, size=_size(state, fixed=False))
    return Decl("string", name, size=_size(state, fixed=False))


def _optional_target(state: _State, owner: str | None) -> Ref:
    """What ``T *x`` points at: the owner itself, a struct defined later, or any type."""
    rng = state.rng
    roll = rng.random()
    if owner is not None and roll < 0.2:
        return Ref(owner, owner)  # a linked list or tree through the owner
    if owner is not None and roll < 0.28:
        # Mutual recursion: a struct defined later that will refer back to us.
        later = state.fresh("r")
        state.pending.append(later)
        return Ref(f"struct {later}", later)
    if roll < 0.65:
        return _primitive(state)
    return _element(state)


def _field_name(state: _State, used: set[str], index: int) -> str:
    rng = state.rng
    name = f"m{index}"
    roll = rng.random()
    if state.options.python_names and roll < 0.3:
        name = rng.choice(FIELD_NAME_POOL)
    elif roll < 0.4 and state.types:
        name = rng.choice(state.types).name  # a field named like a type
    if name in used:
        name = f"m{index}"
    while name in used:
        name += "_"
    used.add(name)
    return name


def _fields(state: _State, owner: str) -> tuple[Decl, ...]:
    rng = state.rng
    roll = rng.random()
    # Mostly short; sometimes past the inlining and run limits of the marshallers.
    count = rng.randint(1, 5) if roll < 0.75 else rng.randint(6, 16)
    if roll < 0.12:
        count = 1  # a struct of one field: the field is first and last
    used: set[str] = set()
    fields: list[Decl] = []
    run = rng.random() < 0.2  # a long run of fixed-size items
    # A string first: arrays of such structs decode with look-ahead (marshal.py).
    string_led = rng.random() < 0.12
    for index in range(count):
        name = _field_name(state, used, index)
        if string_led and index == 0:
            fields.append(Decl("string", name, size=_size(state, fixed=False)))
        elif run and rng.random() < 0.8:
            fields.append(Decl("plain", name, _primitive(state)))
        else:
            fields.append(_decl(state, name, owner=owner))
    return tuple(fields)


# -- definitions -------------------------------------------------------------------


def _struct(state: _State, name: str | None = None) -> None:
    if name is None:
        name = state.bare_or(TYPE_NAME_POOL, 0.12, state.fresh("s"))
    fields = _fields(state, name)
    state.definitions.append(Struct(name, fields))
    state.types.append(_Type(name, "struct"))


def _enum(state: _State) -> None:
    rng = state.rng
    name = state.bare_or(TYPE_NAME_POOL, 0.1, state.fresh("e"))
    members: list[Member] = []
    values: set[int] = set()
    implicit_ok = True
    for index in range(rng.randint(1, 6)):
        member_name = state.bare_or(
            MEMBER_NAME_POOL, 0.08, state.fresh("M").upper()
        )
        roll = rng.random()
        if roll < 0.12 and members and implicit_ok:
            # No value: the previous one plus one, as in C.
            value = members[-1].value + 1
            if value > INT_MAX or value in values:
                value = rng.randint(-50, 50)
                while value in values:
                    value += 7
                text = _int_text(rng, value)
            else:
                text = ""
        elif roll < 0.2 and members:
            source = rng.choice(members)  # an alias of an earlier member
            value, text = source.value, source.name
        elif roll < 0.28 and state.labels:
            const = rng.choice(state.labels)
            value, text = const.value, const.name
        else:
            value = rng.choice(
                (rng.randint(-20, 20), rng.randint(INT_MIN, INT_MAX), INT_MIN, INT_MAX)
            )
            text = _int_text(rng, value)
        values.add(value)
        members.append(Member(member_name, value, text))
    state.definitions.append(Enum(name, tuple(members)))
    state.types.append(_Type(name, "enum", "enum", tuple(members)))


def _typedef(state: _State) -> None:
    rng = state.rng
    name = state.bare_or(TYPE_NAME_POOL, 0.1, state.fresh("t"))
    roll = rng.random()
    disc_types = [t for t in state.types if t.disc is not None]
    if roll < 0.25 and disc_types:
        # A typedef chain over something a union can switch on.
        target = rng.choice(disc_types)
        decl = Decl("plain", name, Ref(target.name, target.name))
        state.definitions.append(Typedef(name, decl))
        state.types.append(_Type(name, "typedef", target.disc, target.members))
        return
    if roll < 0.35:
        spelling = rng.choice(tuple(DISCRIMINANT_PRIMITIVES))
        decl = Decl("plain", name, Ref(spelling))
        state.definitions.append(Typedef(name, decl))
        state.types.append(_Type(name, "typedef", DISCRIMINANT_PRIMITIVES[spelling]))
        return
    decl = _decl(state, name, owner=None)
    if decl.kind == "void":  # pragma: no cover - _decl gives void only for arms
        decl = Decl("plain", name, _primitive(state))
    state.definitions.append(Typedef(name, decl))
    state.types.append(_Type(name, "typedef"))


def _union(state: _State) -> None:
    rng = state.rng
    name = state.bare_or(TYPE_NAME_POOL, 0.12, state.fresh("u"))
    disc_name = _field_name(state, set(), 0)
    disc_ref, disc_kind, members = _discriminant(state)
    labels = _label_pool(state, disc_kind, members)
    rng.shuffle(labels)
    arms: list[Arm] = []
    used: set[str] = {disc_name} if rng.random() < 0.8 else set()
    while labels and len(arms) < rng.randint(1, 5):
        take = 1 if rng.random() < 0.6 else rng.randint(2, 3)
        chosen, labels = labels[:take], labels[take:]
        arm_name = _field_name(state, used, len(arms) + 1)
        arms.append(Arm(tuple(chosen), _decl(state, arm_name, owner=name, arm=True)))
    default: Decl | None = None
    roll = rng.random()
    if roll < 0.25:
        default = Decl("void", None)
    elif roll < 0.5 or not arms:
        default = _decl(state, _field_name(state, used, 0), owner=name, arm=True)
    state.definitions.append(
        Union_(name, Decl("plain", disc_name, disc_ref), tuple(arms), default)
    )
    state.types.append(_Type(name, "union"))


def _discriminant(state: _State) -> tuple[Ref, str, tuple[Member, ...]]:
    rng = state.rng
    named = [t for t in state.types if t.disc is not None]
    if named and rng.random() < 0.5:
        chosen = rng.choice(named)
        assert chosen.disc is not None
        return Ref(chosen.name, chosen.name), chosen.disc, chosen.members
    spelling = rng.choice(tuple(DISCRIMINANT_PRIMITIVES))
    return Ref(spelling), DISCRIMINANT_PRIMITIVES[spelling], ()


def _label_pool(state: _State, kind: str, members: tuple[Member, ...]) -> list[Label]:
    """Distinct case labels a discriminant of this kind can take."""
    rng = state.rng
    labels: dict[int, Label] = {}
    if kind == "bool":
        for value, text in ((1, "TRUE"), (0, "FALSE")):
            labels[value] = Label(value, text if rng.random() < 0.8 else str(value))
        return list(labels.values())
    if kind == "enum":
        for member in members:
            labels.setdefault(member.value, Label(member.value, member.name))
        return list(labels.values())
    for _ in range(rng.randint(1, 8)):
        if kind == "int":
            if state.labels and rng.random() < 0.2:
                const = rng.choice(state.labels)
                labels.setdefault(const.value, Label(const.value, const.name))
                continue
            value = rng.choice(
                (rng.randint(-5, 10), rng.randint(INT_MIN, INT_MAX), INT_MIN, INT_MAX, -1)
            )
            # rpcgen reads negative labels only in decimal.
            text = str(value) if value < 0 else _int_text(rng, value)
        else:
            value = rng.choice((rng.randint(0, 10), rng.randint(0, UINT_MAX), UINT_MAX, 2**31))
            text = _int_text(rng, value)
        labels.setdefault(value, Label(value, text))
    return list(labels.values())


# -- programs ------------------------------------------------------------------------


def _param(state: _State, used: set[str], *, result: bool) -> Param:
    """An argument (``T``, ``T name``, ``T *name``, ``string name<n>``) or a result."""
    rng = state.rng
    roll = rng.random()
    name = ""
    if not result and rng.random() < 0.4:
        name = rng.choice(ARG_NAME_POOL) if rng.random() < 0.5 else f"a{len(used)}"
        if name in used:
            name = f"a{len(used)}"
        used.add(name)
    if roll < 0.12:
        bound = "" if result or rng.random() < 0.5 else f"<{rng.choice((1, 8, 255))}>"
        text = "string" if not name else f"string {name}{bound}"
        return Param(text, name=name)
    if not result and roll < 0.22 and state.types:
        ref = _named(state) or _primitive(state)
        if not name:
            name = f"p{len(used)}"
            used.add(name)
        return Param(f"{ref.text} *{name}", ref.target, name)
    ref = _element(state)
    return Param(f"{ref.text} {name}".strip(), ref.target, name)


def _program(state: _State, seed: int) -> None:
    rng = state.rng
    upper = state.prefix.upper()
    versions: list[Version] = []
    for v_index, number in enumerate(rng.sample((1, 2, 3, 7), rng.randint(1, 2))):
        procedures: list[Procedure] = []
        lowered: set[str] = set()  # rpcgen's C functions are <name lower-cased>_<version>
        numbers = rng.sample(range(0, 12), rng.randint(1, 4))
        for p_index, proc_number in enumerate(numbers):
            name = state.bare_or(PROCEDURE_NAME_POOL, 0.2, f"{upper}_P{v_index}_{p_index}")
            if name.lower() in lowered:
                name = f"{upper}_P{v_index}_{p_index}"
            lowered.add(name.lower())
            if proc_number == 0 and rng.random() < 0.5:
                procedures.append(Procedure(name, 0, (), None))  # the null procedure
                continue
            used: set[str] = set()
            count = rng.choice((0, 1, 1, 1, 2, 3))
            args = tuple(_param(state, used, result=False) for _ in range(count))
            result = None if rng.random() < 0.2 else _param(state, used, result=True)
            procedures.append(Procedure(name, proc_number, args, result))
        versions.append(Version(f"{upper}_V{v_index}", number, tuple(procedures)))
    state.definitions.append(
        Program(f"{upper}_PROG", 0x20000000 + seed % 0x10000000, tuple(versions))
    )
