"""The package list for setuptools (everything else is in pyproject.toml): greater's packages, found, plus
greater.conf, which pyproject.toml maps to the top-level conf/ folder so that the wheel ships the configs."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["greater", "greater.*"]), "greater.conf"])
