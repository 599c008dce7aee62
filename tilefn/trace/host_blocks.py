"""Block sizes read as ints by host code (Helion's `cdiv(n, block_m)`, `n // block`, `range(0, n, block)`,
`x.new_empty([num_blocks, n])`, `assert m % block_m == 0`).

The Config picks a block size at lowering, and such host code needs a number now (an allocation's
shape, a Python range, an assert). So a block size read on the host is evaluated when the Config is
known by tracing with it, as `register_tunable` values are: host code gets the Config's entry for the
block (or, with none, `HOST_DEFAULT` clamped to the block's extent), and the Program records the value
(`BlockInfo.host`), holds for it only (the default Config takes it; `complete_config` refuses another)
and is keyed on it (`TracedFunction`: one Program per signature, tunables and host-read values).
"""
from __future__ import annotations

import attrs

from . import state as st
from .queries import next_power_of_2

HOST_DEFAULT = 64  # a host-read block size's value when the Config gives none


def host_value(block: int) -> int:
    """The value host code computes with for `block` in this trace (recorded in the block's info)."""
    state = st.require()
    info = state.blocks[block]
    if info.host is None:
        given = state.block_values[block] if block < len(state.block_values) else None
        value = info.fixed or given or min(HOST_DEFAULT, next_power_of_2(info.extent or HOST_DEFAULT))
        state.blocks[block] = attrs.evolve(info, host=int(value))
    return state.blocks[block].host


def host_read(program) -> tuple:
    """The ids of the blocks host code read in `program`."""
    return tuple(b.id for b in program.blocks if b.host is not None)
