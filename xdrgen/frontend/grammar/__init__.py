"""The XDR grammar's rules for PLY yacc, one module per construct, and its syntax errors.

Each rule module is a class of ``p_*`` methods (PLY's convention: the docstring is
the production); ``xdrgen.frontend.parser`` combines them into one grammar class,
builds the LALR tables once and parses.
"""
