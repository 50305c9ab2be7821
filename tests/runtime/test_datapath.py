"""The data path's fast paths give what the general paths give (issue 15)."""
from __future__ import annotations

import platform
from itertools import islice

import pytest

from streamflow.communication.buffers import reuse_freed_buffers
from streamflow.operators import batched
from streamflow.records import RecordTypeError, check_batch


def _islice_batches(records, size):
    it, epoch, out = iter(records), 0, []
    while chunk := list(islice(it, size)):
        out.append((epoch, chunk))
        epoch += 1
    return out


@pytest.mark.parametrize("records", [range(10), list(range(10)), tuple(range(10)), range(0), [], range(5, 17, 3)])
def test_sliced_sources_batch_as_the_iterator_path(records):
    assert list(batched(records, 4)) == _islice_batches(records, 4)


def test_sliced_batches_are_the_sources_own_lists():
    data = [1, 2, 3, 4]
    for _epoch, chunk in batched(data, 2):
        assert type(chunk) is list
        chunk.append(99)  # an operator may own and change its batch
    assert data == [1, 2, 3, 4]


def test_one_type_lists_and_mixed_lists_are_checked_alike():
    check_batch([1, 2, 3])
    check_batch([1, None, "a", 2.5, True])
    check_batch([])
    with pytest.raises(RecordTypeError, match="record 2: object"):
        check_batch([1, 2, object()])
    with pytest.raises(RecordTypeError, match="record 0: object"):
        check_batch([object(), object()])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="mallopt thresholds exist only in glibc; on musl and other libcs buffers.py does "
                           "nothing, so there is nothing to check (it runs on any glibc system, as CI is)")
def test_freed_frame_buffers_stay_in_the_process():
    assert reuse_freed_buffers() is True
    assert reuse_freed_buffers() is True  # once per process, then a no-op
