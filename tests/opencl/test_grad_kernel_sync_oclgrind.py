"""The kernel gradients' synchronised parts (a barrier every SYNC_STEPS pixels) and the strided
convolutions' copied windows under Oclgrind (see test_oclgrind.py): every access checked and
data races detected, so a block that read or wrote across its chunk's barrier fails here."""

from __future__ import annotations

from pathlib import Path

from test_oclgrind import oclgrind_env, pytestmark, run_clean  # noqa: F401  (fixture, mark)

DRIVER = Path(__file__).with_name("grad_kernel_sync_oclgrind_driver.py")


def test_sync_and_copied_windows_clean_under_oclgrind(oclgrind_env):  # noqa: F811
    out = run_clean(DRIVER, oclgrind_env)
    lines = [x for x in out.splitlines() if x.strip()]
    # each of the four kernel gradients in a synchronised form and its opposite (which is
    # which depends on the device's default; the tiles beside them on its registers)
    synced = {x.split()[0] for x in lines if "/kernel" in x and "sync" in x}
    assert len(synced) == 4, out
    assert sum(" im2col" in x for x in lines) >= 5, out  # the copies (and their opposites)
    assert len(lines) >= 16, out  # and the seven nodes' defaults
    assert all(x.endswith(": ok") for x in lines), out
