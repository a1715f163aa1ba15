"""Cython kernels: one ``.pyx`` with its ``.pxd`` per component.

Kernels import nothing from catalog, CLI or server; they see contiguous
arrays only and never validate (the edge already did).
"""
