"""Suite-wide settings: kernel tuning off (CNNC_TUNE=0), so every test runs the device's default
kernel variants, whatever a user's tuning cache holds (tests/tune/ turns it on where it tests
the tuner, with a cache of its own)."""

from __future__ import annotations

import os

os.environ["CNNC_TUNE"] = "0"
