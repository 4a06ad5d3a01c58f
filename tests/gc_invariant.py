"""What the compiled engine may leave out of the cyclic GC: a check on decoded values.

The engine untracks the instances it decodes of atomic types (docs/compiled-engine.md,
"Garbage collection").  That is safe only when everything such an instance refers to,
transitively, is an object the collector never needs to see: untracked and no
container.  :func:`untracked_problems` lists where a decoded value breaks that.
"""

from __future__ import annotations

import gc

from xdrgen.runtime.codec import XdrStruct


def reachable(value: object) -> list[object]:
    """Every object ``value`` refers to, transitively, classes left out (an
    instance refers to its class, which lives as long as its module)."""
    seen: dict[int, object] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        for referent in gc.get_referents(item):
            if isinstance(referent, type) or id(referent) in seen:
                continue
            seen[id(referent)] = referent
            stack.append(referent)
    return list(seen.values())


def untracked_problems(value: object) -> list[str]:
    """Each untracked XDR instance in ``value`` that holds, at any depth, an object
    the collector tracks or a container (which could come to hold the instance)."""
    problems = []
    for item in [value, *reachable(value)]:
        if not isinstance(item, XdrStruct) or gc.is_tracked(item):
            continue
        needy = [
            f"{type(inner).__name__} {inner!r:.60}"
            for inner in reachable(item)
            if gc.is_tracked(inner) or isinstance(inner, (list, dict, set))
        ]
        if needy:
            problems.append(f"untracked {type(item).__name__} holds {needy}")
    return problems
