"""The default Config of a Program: good block sizes and warps without tuning."""
from __future__ import annotations

import math

import attrs

from ..config import Config
from ..errors import ConfigError
from ..trace.ir import Program, regions, walk_eqns
from ..trace.primitives import REDUCTIONS, dot_p, load_p, loop_p, permute_p, store_p
from ..trace.queries import (dot_roles, grid_blocks, grid_loops, inner_loops, kernel_eqns, largest_value,
                             next_power_of_2, ordered_loops, producers, tile_lanes)
from .rewrites.reduction_loops import reduction_extents
from .shared_memory import MAX_SHARED_BYTES, dot_operands, pipelined_blocks, shared_bytes
from . import backend
from .sites import sites_of
from .target import has_tma

TILE_ELEMENTS = 4096  # elements per program for memory-bound kernels
WARP_LOAD_BYTES, MIN_ROW_WARPS = 32 * 16, 4  # what one warp's 16-byte vector loads cover; `_row_warps`' floor
WIDE_N_PROGRAMS = 264  # 128x256 output tiles when they still make 2 programs per H200 SM (132 SMs)
LONG_ROW, ROW_CHUNK = 16384, 8192  # whole-row reductions wider than LONG_ROW loop over ROW_CHUNK
WIDE_ROW = 8192  # programs reducing whole rows of WIDE_ROW..LONG_ROW hold LONG_ROW elements, 2048 a warp
LOOPED_WARPS = 4  # warps of a kernel whose rows are reduced in chunks
STORED_ROW = 32768  # ... unless a row value is also stored and the row is at most this wide
CHUNK_SHARED_BYTES = MAX_SHARED_BYTES * 3 // 4  # a chunk loop's prefetches (the rest: reductions' scratch)
CHUNK_STAGES, CHUNK_WARPS, MAX_CHUNK_WARPS = 3, 2, 16  # a loop over a program's chunk of rows: pipelined, twice the warps
SHORT_K_STEPS = 16  # `_persistent_batched`: the k loops whose epilogue a flattened persistent loop hides


def _clamp(size: int, extent: int | None) -> int:
    return max(1, min(size, next_power_of_2(extent) if extent else size))


def _shrink_unknown_extents(program: Program, eqns, sizes: list, skip: set) -> None:
    """Halve the widest inner block of a data-dependent extent (a jagged loop) until a program's largest
    value fits TILE_ELEMENTS, down to 16 lanes: two nested jagged loops of 1024 held 1M lanes."""
    while largest_value(eqns, Config(block_sizes=sizes)) > TILE_ELEMENTS:
        unknown = [b.id for b in program.blocks
                   if b.extent is None and b.id not in skip and not b.fixed and not b.host and sizes[b.id] > 16]
        if not unknown:
            return
        widest = max(unknown, key=lambda b: sizes[b])
        sizes[widest] //= 2


def default_config(program: Program) -> Config:
    eqns = kernel_eqns(program)
    roles = dot_roles(eqns)
    grid = grid_blocks(program)
    sizes = [1] * len(program.blocks)
    reread = _reread_blocks(program)
    for block in program.blocks:  # sequential (inner loop) dimensions first
        if block.id not in grid and block.id not in roles and not block.fixed:
            whole = block.id in reread and block.extent and next_power_of_2(block.extent) <= LONG_ROW
            sizes[block.id] = next_power_of_2(block.extent) if whole else _clamp(1024, block.extent)
    _shrink_unknown_extents(program, eqns, sizes, skip=set(grid) | set(roles))
    # what one program holds with grid blocks of 1 (whole rows, inner tiles) sets the grid budget
    held = largest_value(eqns, Config(block_sizes=sizes))
    wide_rows = not roles and _wide_rows(program, held)
    budget = max(1, (LONG_ROW if wide_rows else TILE_ELEMENTS) // held)
    for block_id in reversed(grid):  # the innermost grid dimension gets the budget first
        block = program.blocks[block_id]
        if block_id in roles or block.fixed:
            continue
        sizes[block_id] = _clamp(budget, block.extent)
        budget = max(1, budget // sizes[block_id])
    for block in program.blocks:
        if block.fixed or block.host:
            sizes[block.id] = block.fixed or block.host
        elif block.id in roles:
            want = {"m": 128, "n": 128, "k": 64, "batch": 1}[roles[block.id]]
            sizes[block.id] = max(_clamp(want, block.extent), 16 if roles[block.id] != "batch" else 1)
    groups = ()
    if _wide_n(program, eqns, roles, sizes):
        sizes[next(b for b, r in roles.items() if r == "n")] = 256
        groups = (8,) if _one_ordered_loop(program) else ()
    config = Config(block_sizes=sizes, l2_groupings=groups, num_stages=3 if roles else 1)
    if roles:
        config = _fit_shared_memory(program, config)
    elements = largest_value(eqns, config)
    if roles:
        warps = 8 if elements >= 128 * 128 else 4
    else:
        per_warp = 2048 if wide_rows else 1024
        warps = max(1, min(32, next_power_of_2(max(elements // per_warp, 1)), _row_warps(program, config)))
    looped = _looped_rows(program)
    if any(looped):
        config, warps = attrs.evolve(config, reduction_loops=looped), LOOPED_WARPS
    stages = _chunk_stages(program, eqns, config)
    if stages:
        config, warps = attrs.evolve(config, range_num_stages=stages), min(MAX_CHUNK_WARPS, warps * CHUNK_WARPS)
    config = attrs.evolve(config, num_warps=warps, indexing=_indexing(program, eqns))
    return _chained_products(program, _persistent_batched(program, eqns, roles, config)) if roles else config


def _wide_rows(program: Program, held: int) -> bool:
    """Whether the grid reduces whole rows of WIDE_ROW..LONG_ROW held in registers (`held` elements a row):
    such a program holds LONG_ROW elements with 2048 a warp (H200, bf16: layer_norm 16384x8192 0.143 ms
    with a row and 8 warps, 0.136 with 2 rows and 8 warps; softmax 4096x16384 0.074 with 16 warps, 0.071
    with 8; `benchmarks/sweep.py`)."""
    extents = reduction_extents(program)
    return bool(extents) and WIDE_ROW <= held <= LONG_ROW and all(
        WIDE_ROW <= next_power_of_2(n) <= LONG_ROW for n in extents)


def _reread_blocks(program: Program) -> set:
    """Blocks that two or more sibling inner loops walk (a two-pass softmax reads its row once for the max
    and sum, then again to write): held whole where the row fits in LONG_ROW, each loop runs once and the
    second read finds the row in L1 (H200, 4096x16384 bf16: 0.112 ms in tiles of 1024, 0.080 whole)."""
    reread = set()
    for loop in grid_loops(program):
        for region in _regions(loop):
            walked = [dim.block for e in region.eqns if e.prim is loop_p and not e.params["grid"]
                      for kind, dim in e.params["dims"] if kind == "tile"]
            reread |= {block for block in walked if walked.count(block) > 1}
    return reread


def _regions(loop):
    """`loop`'s body and every region nested in it."""
    yield loop.params["region"]
    for eqn in walk_eqns(loop.params["region"].eqns):
        yield from regions(eqn)


def _row_warps(program: Program, config: Config) -> int:
    """The most warps for a kernel whose inner loops reduce a value across its rows (not its last axis,
    `jagged_sum`'s sum over the rows of each tile): as many as the last axis' lanes fill with 16-byte
    loads, so each thread reduces its own column and no iteration waits on a reduction across warps
    (H200, jagged_sum 1024 rows x 1024 bf16, tiles [16, 1024]: 0.762 ms with 16 warps, 0.165 with 4); at
    least MIN_ROW_WARPS (fewer were not measured)."""
    itemsize = min((e.outputs[0].type.dtype.itemsize for e in kernel_eqns(program) if e.prim is load_p), default=4)
    cap = 32
    for loop in inner_loops(program):
        for eqn in loop.params["region"].eqns:
            if eqn.prim not in REDUCTIONS:
                continue
            lanes = tile_lanes(eqn.inputs[0].type.shape, config)
            axis = eqn.params["axis"]
            if len(lanes) > 1 and axis is not None and axis % len(lanes) != len(lanes) - 1 and lanes[axis] > 1:
                cap = min(cap, max(MIN_ROW_WARPS, lanes[-1] * itemsize // WARP_LOAD_BYTES))
    return cap


def _chunk_stages(program: Program, eqns, config: Config) -> list:
    """`range_num_stages` for the loops walking a chunk of a grid's rows (the backward's, `autodiff/chunks.py`):
    CHUNK_STAGES where the prefetched rows fit in CHUNK_SHARED_BYTES, else fewer (`_pipeline_depth`): the
    next rows arrive while this one is reduced. H200, one row per iteration, 16 warps: layer_norm backward
    16384x8192 bf16 (32 KiB loaded a row) 0.419 ms unpipelined, 0.375 with 2 stages, 0.279 with 3 in one
    session but 0.39-0.43 in the next (4 stages: 0.28-0.30 or 0.49-0.54 there); softmax backward 4096x16384
    (64 KiB a row) 0.163 ms with 2 stages, 0.131 with 3 (twice, 0.132 with 4; 0.138 with 32 warps)."""
    chunks = {e.site: e for e in eqns if e.prim is loop_p and e.params.get("chunk")}
    depth = {site: _pipeline_depth(_loaded_bytes(loop, config)) for site, loop in chunks.items()}
    stages = [depth.get(site.id, 0) for site in sites_of(program).of_field("range_num_stages")]
    return stages if any(stages) else []


def _pipeline_depth(loaded: int) -> int:
    """Stages for a loop loading `loaded` bytes an iteration: CHUNK_STAGES, fewer where the prefetched
    iterations would not fit in CHUNK_SHARED_BYTES; 0 (no pipelining) where one does not."""
    stages = CHUNK_STAGES
    while stages > 1 and (stages - 1) * loaded > CHUNK_SHARED_BYTES:
        stages -= 1
    return stages if stages > 1 and loaded else 0


def _loaded_bytes(loop, config: Config) -> int:
    """Bytes one iteration of `loop` loads (its own loads, under `config`'s block sizes)."""
    total = 0
    for eqn in loop.params["region"].eqns:
        if eqn.prim is load_p:
            total += math.prod(tile_lanes(eqn.outputs[0].type.shape, config)) * eqn.outputs[0].type.dtype.itemsize
    return total


def _fit_shared_memory(program: Program, config: Config) -> Config:
    """`config` with its matrix-product operands in MAX_SHARED_BYTES: halve the widest block of a pipelined
    operand (down to 16), then take a stage off, then halve the widest other product block. Kernels that fit
    keep their sizes. (H200, attention backward b4 h32 s4096 d128 bf16, 5 products per key tile: key tiles of
    64 with 3 stages ran 11.6 ms; of 128 with 1 stage 15.2 ms, of 64 with 2 stages 13.2, of 32 with 3 13.2.)"""
    operands = dot_operands(program)
    adjustable = {b.id for b in program.blocks if not b.fixed and not b.host}
    pipelined = pipelined_blocks(operands) & adjustable
    others = set(dot_roles(kernel_eqns(program))) & adjustable
    while shared_bytes(program, operands, config) > MAX_SHARED_BYTES:
        sizes = list(config.block_sizes)
        wide = [b for b in sorted(pipelined) if sizes[b] > 16]
        rest = [b for b in sorted(others) if sizes[b] > 16]
        if wide or (config.num_stages == 1 and rest):
            widest = max(wide or rest, key=lambda b: sizes[b])
            sizes[widest] //= 2
            config = attrs.evolve(config, block_sizes=sizes)
        elif config.num_stages > 1:
            config = attrs.evolve(config, num_stages=config.num_stages - 1)
        else:
            return config  # (nothing left to shrink: the launch reports the shortfall)
    return config


def _wide_n(program: Program, eqns, roles, sizes) -> bool:
    """Whether a 2-d matrix product of 16-bit operands is large enough for 128x256 output tiles (H200,
    bf16 4096^3: 99% of cuBLAS against 87-100% for 128x128, 97% vs <90% in the F.linear layout; fp32
    operands would need twice the shared memory, so they keep 128x128)."""
    dots = [e for e in eqns if e.prim is dot_p]
    if len(dots) != 1 or len(dots[0].inputs[0].type.shape) != 2 or dots[0].inputs[0].type.dtype.itemsize != 2:
        return False
    by_role = {r: b for b, r in roles.items()}
    if set(by_role) != {"m", "n", "k"} or sizes[by_role["m"]] != 128 or sizes[by_role["n"]] != 128:
        return False
    m, n = program.blocks[by_role["m"]].extent, program.blocks[by_role["n"]].extent
    return bool(m and n) and (m // 128) * (n // 256) >= WIDE_N_PROGRAMS


def _persistent_batched(program: Program, eqns, roles, config: Config) -> Config:
    """A batched matrix product of 16-bit operands with at least WIDE_N_PROGRAMS output tiles of 128x256
    and a short k loop runs on tiles of 128x256, persistent, its tile loop and k loop flattened into one
    pipelined loop (the next tile's loads overlap this tile's epilogue), over tensor descriptors: where
    every access can take one, this Triton and device have both, and the operands fit in shared memory.
    (H200, bmm 64x512^3 bf16: 0.045 ms with one program per 128x128 tile against cuBLAS' 0.0364; a
    hand-written persistent flattened TMA Triton kernel 0.0397 at 128x256, 72% of cuBLAS at 128x128.)"""
    dots = [e for e in eqns if e.prim is dot_p]
    if len(dots) != 1 or len(dots[0].inputs[0].type.shape) != 3 or dots[0].inputs[0].type.dtype.itemsize != 2:
        return config
    by_role = {r: program.blocks[b] for b, r in roles.items()}
    if set(by_role) != {"batch", "m", "n", "k"} or not all(b.extent for b in by_role.values()):
        return config
    sizes = list(config.block_sizes)
    if sizes[by_role["m"].id] != 128 or sizes[by_role["n"].id] != 128 or by_role["n"].extent < 256:
        return config
    sizes[by_role["n"].id] = 256
    steps = {r: math.ceil(b.extent / sizes[b.id]) for r, b in by_role.items()}
    if steps["batch"] * steps["m"] * steps["n"] < WIDE_N_PROGRAMS or steps["k"] > SHORT_K_STEPS:
        return config
    accesses = sites_of(program).of_field("indexing")
    if (len(grid_loops(program)) != 1 or not has_tma(program) or "flatten" not in backend.compat().range_kwargs()
            or not all("tensor_descriptor" in site.facts["forms"] for site in accesses)):
        return config
    wide = _fit_shared_memory(program, attrs.evolve(config, block_sizes=sizes))
    if list(wide.block_sizes) != sizes:
        return config
    return attrs.evolve(wide, pid_type="persistent_interleaved", persistent_flatten=True,
                        indexing="tensor_descriptor", num_warps=8)


def _chained_products(program: Program, config: Config) -> Config:
    """A kernel whose one inner loop chains two 16-bit matrix products (attention: the scores `q k^T`, then
    their softmax times `v` into a carried accumulator) walks key tiles of 64 with 4 warps and 2 stages,
    every access through a tensor descriptor where this device and every access take one. H200, b4 h32
    s4096 bf16 (`benchmarks/attention_variants.py`), against key tiles of 128, 8 warps, 3 stages and K
    alone by descriptor: d128 2.220 -> 2.135 ms (2.254 -> 2.123 in another run), causal 1.344 -> 1.252; d64
    1.532 -> 1.455, causal 1.036 -> 0.939. A hand-written Triton FA2 forward's best Config is the same one
    (`benchmarks/attention_triton.py`: 2.092-2.111 ms). Two key loops (causal attention split at the
    diagonal) ran slower so (1.312 -> 1.433): they keep the general default."""
    loops = inner_loops(program)
    if len(loops) != 1:
        return config
    body = list(walk_eqns(loops[0].params["region"].eqns))
    dots = [e for e in body if e.prim is dot_p]
    keys = [dim.block for kind, dim in loops[0].params["dims"] if kind == "tile"]
    if len(dots) != 2 or len(keys) != 1 or any(x.type.dtype.itemsize != 2 for d in dots for x in d.inputs[:2]):
        return config
    reached = set(dots[0].outputs)
    for eqn in body:
        if any(x in reached for x in eqn.inputs):
            reached |= set(eqn.outputs)
    accesses = sites_of(program).of_field("indexing")
    if dots[1].inputs[0] not in reached or config.block_sizes[keys[0]] < 64 or not has_tma(program) \
            or not all("tensor_descriptor" in site.facts["forms"] for site in accesses):
        return config
    sizes = list(config.block_sizes)
    sizes[keys[0]] = 64
    return attrs.evolve(config, block_sizes=sizes, num_warps=4, num_stages=2, indexing="tensor_descriptor")


def _one_ordered_loop(program: Program) -> bool:
    """Whether the kernel has exactly one top-level loop of 2+ dims (l2_groupings' one entry)."""
    return len(ordered_loops(program)) == 1


def _indexing(program: Program, eqns) -> str | list:
    """"pointer", except that a load whose tile a matrix product takes transposed (`w[tn, tk].T`, the
    F.linear layout) takes a tensor descriptor, which hands the product the transposed layout from
    shared memory (H200, bf16 4096^3: 80% of cuBLAS with pointers, 95-97% with descriptors)."""
    made_by = producers(program)
    transposed = set()
    for eqn in eqns:
        if eqn.prim is not dot_p:
            continue
        for operand in eqn.inputs[:2]:
            producer = made_by.get(operand)
            if producer is not None and producer.prim is permute_p:
                load = made_by.get(producer.inputs[0])
                if load is not None and load.prim is load_p:
                    transposed.add(load.site)
    if not transposed:
        return "pointer"
    forms = [("tensor_descriptor" if site.id in transposed and "tensor_descriptor" in site.facts["forms"]
              else "pointer") for site in sites_of(program).of_field("indexing")]
    return forms if "tensor_descriptor" in forms else "pointer"


def _looped_rows(program: Program) -> list:
    """Rows wider than LONG_ROW are reduced in chunks (H100: cross_entropy over 32768 columns ran
    0.258 ms whole and 0.222 ms in chunks of 8192 with 16 warps; rows of 16384 or less ran best whole),
    except rows of at most STORED_ROW that a store also writes: chunked, the store's loop reads the row
    a second time (cross-entropy's derived backward, softmax)."""
    stored = _stored_extents(program)
    return [ROW_CHUNK if next_power_of_2(n) > LONG_ROW and not (n in stored and n <= STORED_ROW) else None
            for n in reduction_extents(program)]


def _stored_extents(program: Program) -> set:
    """The static dims of the values the grid loops store."""
    return {d for loop in grid_loops(program) for e in walk_eqns(loop.params["region"].eqns) if e.prim is store_p
            for d in e.inputs[-2 if e.params["masked"] else -1].type.shape if isinstance(d, int)}


def complete_config(program: Program, config: Config | None) -> Config:
    """`config` with the knobs it leaves unset taken from the default."""
    default = default_config(program)
    if config is None:
        return default
    sizes = list(config.block_sizes) + list(default.block_sizes[len(config.block_sizes):])
    for block in program.blocks:
        if block.fixed:
            sizes[block.id] = block.fixed
        elif block.host and sizes[block.id] != block.host:
            raise ConfigError(f"block_sizes[{block.id}] = {sizes[block.id]}, but this Program was traced with "
                              f"{block.host} (host code computes with that block size): trace it with the Config "
                              "(jit.lower(*args, config=...) and tfn.interpret(fn, config=...) do)")
    return attrs.evolve(config, block_sizes=sizes,
                        num_warps=config.num_warps or default.num_warps,
                        num_stages=config.num_stages or default.num_stages)
