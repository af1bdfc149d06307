"""The one compiled part: zkauction/zk/_poseidon.c, ezkl's Poseidon hash in C (everything else is in
pyproject.toml). ``optional=True``: without a C compiler the package still installs and
zkauction.zk.poseidon falls back to ezkl.poseidon_hash (same hashes, about 15 times slower)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "zkauction.zk._poseidon",
            sources=["zkauction/zk/_poseidon.c"],
            depends=["zkauction/zk/_poseidon_params.h"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
