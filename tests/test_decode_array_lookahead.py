"""Arrays of "string then fixed fields" structs read each element's length word
with the element before it (one ``unpack_from`` per element instead of two).

The same .x is generated twice, with that shortcut and without it, and both
modules must agree on every input: the same value, or an error of the same
class with the same field path, byte offset and message.  Inputs are valid
encodings, every truncation of them, and every single-byte change to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from test_generate_helpers import import_file
from xdrgen.generator import generate_source
from xdrgen.generator.plan import planner
from xdrgen.runtime.errors import XdrError

SOURCE = """\
struct handle {
    string name<12>;
    opaque uuid[16];
    int id;
};
struct handle_list {            /* a fixed field after the array */
    handle items<8>;
    unsigned int total;
};
struct handle_tail {            /* the array is the last thing in the input */
    handle items<8>;
};
struct tagged {                 /* range-checked and enum-checked fixed fields */
    opaque key<>;
    unsigned char level;
    bool on;
};
struct tagged_list {
    tagged items<>;
};
"""


def _load(tmp: Path, name: str, text: str) -> ModuleType:
    path = tmp / f"{name}.py"
    path.write_text(text)
    return import_file(path, name)


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, ModuleType]:
    tmp = tmp_path_factory.mktemp("lookahead")
    source = tmp / "lookahead.x"
    source.write_text(SOURCE)
    ahead_text, _ = generate_source(source, module_name="lookahead_on")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planner, "ARRAY_LOOKAHEAD", False)
        plain_text, _ = generate_source(source, module_name="lookahead_off")
    # The shortcut is really exercised: the last element's format ends in "0s".
    assert '0s", decode=True)' in ahead_text
    assert '0s", decode=True)' not in plain_text
    return _load(tmp, "lookahead_on", ahead_text), _load(
        tmp, "lookahead_off", plain_text
    )


def _outcome(codec: Any, data: bytes) -> tuple[str, Any]:
    try:
        return ("value", codec.decode(data))
    except XdrError as error:
        return (type(error).__name__, (error.path, error.offset, str(error)))


def _samples(m: ModuleType) -> Iterator[tuple[str, Any]]:
    def handle(i: int, name: str) -> Any:
        return m.handle(name=name, uuid=bytes(range(i, i + 16)), id=-i)

    names = ["", "a", "ab", "abc", "abcd", "dom-05", "a-twelve-chr"]
    for count in (0, 1, 2, 7):
        items = [handle(i, names[i % len(names)]) for i in range(count)]
        yield "handle_list", m.handle_list(items=items, total=count)
        yield "handle_tail", m.handle_tail(items=items)
    keys = [b"", b"\x00", b"k\xff", b"key", b"long-key-5"]
    tagged = [m.tagged(key=k, level=200 + i, on=i % 2 == 0) for i, k in enumerate(keys)]
    for count in (1, 2, 5):
        yield "tagged_list", m.tagged_list(items=tagged[:count])


def _mutations(data: bytes) -> Iterator[bytes]:
    for cut in range(len(data)):
        yield data[:cut]
    yield data + b"\0"
    for position in range(len(data)):
        for byte in {0x00, 0x01, 0x7F, 0xFF, data[position] ^ 0x04}:
            if byte != data[position]:
                yield data[:position] + bytes([byte]) + data[position + 1 :]


def test_lookahead_decoding_matches_item_by_item_decoding(
    modules: tuple[ModuleType, ModuleType],
) -> None:
    ahead, plain = modules
    compared = errors = 0
    for type_name, value in _samples(ahead):
        ahead_codec, plain_codec = (
            ahead.XDR_TYPES[type_name],
            plain.XDR_TYPES[type_name],
        )
        data = ahead_codec.encode(value)
        assert plain_codec.encode(value) == data
        assert ahead_codec.decode(data) == value
        for mutated in _mutations(data):
            got, want = _outcome(ahead_codec, mutated), _outcome(plain_codec, mutated)
            if got[0] == "value":
                assert want[0] == "value" and ahead_codec.encode(
                    got[1]
                ) == plain_codec.encode(want[1])
            else:
                assert got == want, (type_name, mutated.hex())
                errors += 1
            compared += 1
    # Enough of both kinds that the comparison means something.
    assert compared > 3000 and errors > 1500, (compared, errors)


def test_a_cut_before_the_next_length_word_names_the_next_element(
    modules: tuple[ModuleType, ModuleType],
) -> None:
    ahead, _ = modules
    m = ahead
    value = m.handle_tail(
        items=[m.handle(name="twelve-chars", uuid=bytes(16), id=i) for i in range(3)]
    )
    data = m.XDR_TYPES["handle_tail"].encode(value)
    element = 4 + 12 + 16 + 4  # length word, name, uuid, id
    # The third element's length word is half there; the input is still long
    # enough for the array's minimum size (3 x 24 bytes), so only the element
    # before it notices.
    cut = 4 + 2 * element + 2
    assert cut >= 4 + 3 * 24
    with pytest.raises(XdrError) as info:
        m.XDR_TYPES["handle_tail"].decode(data[:cut])
    assert info.value.path == "items[2].name"
    assert info.value.offset == 4 + 2 * element
    assert "input ends early (2 bytes remain)" in str(info.value)


def test_bad_padding_in_a_middle_element_is_that_elements_error(
    modules: tuple[ModuleType, ModuleType],
) -> None:
    m, _ = modules
    value = m.handle_list(
        items=[m.handle(name="ab", uuid=bytes(16), id=i) for i in range(3)], total=3
    )
    data = bytearray(m.XDR_TYPES["handle_list"].encode(value))
    element = 4 + 4 + 16 + 4
    pad = 4 + element + 4 + 2  # second element: length word, "ab", then padding
    data[pad] = 1
    with pytest.raises(XdrError) as info:
        m.XDR_TYPES["handle_list"].decode(bytes(data))
    assert (info.value.path, info.value.offset) == ("items[1].name", pad)
    assert "padding" in str(info.value)
