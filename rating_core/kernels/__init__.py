"""Cython kernels: one ``.pyx`` with its ``.pxd`` per component, and
``common.pxd``: the constants, enumerations and snapshot-table bindings
(``common.Tables``) that every kernel shares, declared once.

Kernels import nothing from catalog, CLI or server; they see contiguous
arrays only and never validate (the edge already did; the compiler proved
every table index in range, ``layout.check_indexes``).
"""
