"""The default Config of a Program: good block sizes and warps without tuning."""
from __future__ import annotations

from ..config import Config
from ..trace.ir import Program


def next_power_of_2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def default_config(program: Program) -> Config:
    sizes = []
    for block in program.blocks:
        if block.fixed:
            sizes.append(block.fixed)
        else:
            sizes.append(min(64, next_power_of_2(block.extent or 64)))
    return Config(block_sizes=sizes)


def complete_config(program: Program, config: Config | None) -> Config:
    """`config` with the knobs it leaves unset taken from the default."""
    import attrs

    default = default_config(program)
    if config is None:
        return default
    sizes = list(config.block_sizes) + list(default.block_sizes[len(config.block_sizes):])
    for block in program.blocks:
        if block.fixed:
            sizes[block.id] = block.fixed
    return attrs.evolve(config, block_sizes=sizes,
                        num_warps=config.num_warps or default.num_warps,
                        num_stages=config.num_stages or default.num_stages)
