"""The direct depthwise forward's row blocks (bind_depthwise_direct.row_block): MR pixels of one
output row per work-item, cut so that few pixels are computed past the row's end."""

from __future__ import annotations

from cnnc.backends.opencl.bind_depthwise_direct import row_block


def test_row_blocks_fit_the_row():
    assert row_block(14, 8) == 7  # two blocks of 7, not 8 + 6
    assert row_block(28, 8) == 7
    assert row_block(16, 8) == 8
    assert row_block(13, 8) == 7  # 14 computed: the fewest past the end of 4..8
    assert row_block(3, 8) == 3  # a row narrower than the block
    assert row_block(1, 8) == 1
    assert row_block(9, 1) == 1
