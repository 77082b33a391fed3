"""Build the `durable_rules_engine` extension from the C sources here: no download, no prebuilt binary."""

from setuptools import Extension, setup

ENGINE = ["json", "rete", "state", "events", "regex"]

setup(
    ext_modules=[
        Extension(
            "durable_rules_engine",
            sources=["src/rulespy/rules.c", *(f"src/rules/{name}.c" for name in ENGINE)],
            include_dirs=["src/rules"],
            extra_compile_args=["-std=c99", "-D_GNU_SOURCE", "-Wall"],
        )
    ],
)
