"""Front ends: the ways a network is written, each lowered to the one layer graph.

    spec.py         load_spec: a file, spec text, a dict, a Network or a Graph -> Graph
    dsl_grammar.py  the Lark parser, built from grammar.lark on first use
    dsl_parser.py   DSL text -> syntax tree (ast.py)
    dsl_errors.py   syntax errors in words, at file:line:col
    dsl.py          syntax tree -> layer declarations (repeat unrolled, train block read)
    yaml_spec.py    YAML text or a dict -> layer declarations
    builder.py      cnnc.Network: layer declarations from Python calls
    decl.py         LayerDecl: one layer as written, with where it was written
    lower.py        layer declarations -> checked, shape-inferred Graph (shared by all three)
    arguments.py    a declaration's positional values, bare words and keywords -> op arguments
    writers.py      Graph -> DSL text or YAML that parse back to an equal graph
"""
