"""Alias of :py:mod:`metatensor_operations`, reachable as ``metatensor.operations``."""

import sys

import metatensor_operations


sys.modules[__name__] = metatensor_operations
