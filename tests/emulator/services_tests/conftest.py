"""Puts tests/emulator on sys.path so service tests import awsemu directly."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
