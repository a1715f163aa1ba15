"""Build the Cython kernels.

Every ``rating_core/kernels/<name>.pyx`` becomes the extension
``rating_core.kernels.<name>``; adding a kernel needs no edit here.

Build switches (environment variables, read at build time):

* ``RATING400_DEBUG=1``: bounds and wraparound checks on, ``-O0 -g``,
  Cython line tracing off, asserts kept. Use it when a kernel misbehaves:
  an out-of-range index raises IndexError instead of reading stray memory.
* ``RATING400_SANITIZE=1`` (implies debug): compile and link with
  AddressSanitizer and UndefinedBehaviorSanitizer. Run Python with
  ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``.

The default is the optimised build: ``-O3``, no bounds checks, OpenMP for
``prange``.
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("RATING400_DEBUG") == "1" or os.environ.get("RATING400_SANITIZE") == "1"
SANITIZE = os.environ.get("RATING400_SANITIZE") == "1"

compile_args = ["-fopenmp"]
link_args = ["-fopenmp"]
if DEBUG:
    compile_args += ["-O0", "-g", "-UNDEBUG"]
else:
    compile_args += ["-O3"]
if SANITIZE:
    compile_args += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    link_args += ["-fsanitize=address,undefined"]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

extensions = [
    Extension(
        "rating_core.kernels." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[numpy.get_include(), "rating_core/kernels"],
        # RATING400_DEBUG: common.DEBUG_BUILD reports the build, so a test
        # can require the bounds-checked kernels.
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] + ([("RATING400_DEBUG", "1")] if DEBUG else []),
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for path in sorted(glob.glob("rating_core/kernels/*.pyx"))
]

setup(
    packages=[
        "rating_core",
        "rating_core.catalog",
        "rating_core.compile",
        "rating_core.store",
        "rating_core.kernels",
        "rating_core.demo",
        "rating_core.billing",
        "rating400",
        "rating400.v1",
        "rating400_server",
        "rating400_client",
        "rating400_switch",
    ],
    package_dir={
        "rating400": "proto/rating400",
        "rating400.v1": "proto/rating400/v1",
        "rating400_server": "server/rating400_server",
        "rating400_client": "clients/rating400_client",
        "rating400_switch": "clients/rating400_switch",
    },
    package_data={
        "rating_core": ["py.typed", "*.pyi", "kernels/*.pyi", "kernels/*.pxd"],
        "rating_core.demo": ["*.yaml", "*.csv"],
        "rating_core.billing": ["templates/*.j2"],
        "rating400.v1": ["*.proto", "*.pyi"],
    },
    ext_modules=cythonize(extensions, compiler_directives=directives, annotate=False),
    zip_safe=False,
)
