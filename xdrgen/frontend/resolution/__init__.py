"""Syntax tree -> resolved model, one concern per module.

``xdrgen.frontend.resolve.Resolver`` is the entry point.  It is built in layers,
each a class adding one concern to the one below: ``state`` (name tables, results,
diagnostics), ``names`` (pass 1: what every name stands for), ``constants``
(integer values), ``types`` (structs, unions, typedefs, declarations), ``programs``
(programs, versions, procedures); ``recursion`` checks the finished types.
"""
