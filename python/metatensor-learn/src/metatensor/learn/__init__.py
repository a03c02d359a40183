"""Alias of :py:mod:`metatensor_learn`, reachable as ``metatensor.learn``."""

import sys

import metatensor_learn


sys.modules[__name__] = metatensor_learn
