"""Alias of :py:mod:`metatensor_torch`, reachable as ``metatensor.torch``."""

import sys

import metatensor_torch


sys.modules[__name__] = metatensor_torch
