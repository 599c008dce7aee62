"""`acc += a @ b` inside a loop, the product narrower than `acc` (bf16 into float32): computed as
written (each partial product rounded to its dtype, then added, as eager PyTorch does), with a warning
at the user's line naming the forms that accumulate in the matrix unit (`torch.addmm(acc, a, b)`,
`tl.dot(a, b, acc=acc)`): more accurate, and about 2x faster on the H200 (the rounding between steps
keeps the tensor cores from accumulating in place). With equal dtypes the two forms agree and Triton
fuses the add into the product, so nothing is said."""
from __future__ import annotations

import warnings

from ...errors import MatmulAccumulationWarning, user_frame
from .. import state as st
from ..primitives import convert_p, dot_p
from ..proxies import DeviceValue, call_device_op, op


def _made_by_dot(value) -> bool:
    """Whether `value` is a matrix product of this loop body (possibly cast after it)."""
    if not isinstance(value, DeviceValue):
        return False
    var = value.ir_var
    for eqn in reversed(st.require().region.eqns):
        if var in eqn.outputs:
            if eqn.prim is convert_p:
                var = eqn.inputs[0]
                continue
            return eqn.prim is dot_p
    return False


@op("__iadd__")
def iadd(acc, value):
    state = st.require()
    narrower = (isinstance(acc, DeviceValue) and isinstance(value, DeviceValue) and acc.dtype.is_floating_point
                and value.dtype.itemsize < acc.dtype.itemsize)
    if state.region is not None and state.region.parent is not state.kernel and narrower and _made_by_dot(value):
        frame = user_frame(1)
        message = (f"`acc += a @ b` in a loop rounds each partial product to {value.dtype} before adding it "
                   f"to the {acc.dtype} accumulator (as eager PyTorch does), and keeps the matrix unit from "
                   "accumulating in place; to accumulate across the loop's steps write "
                   "`acc = torch.addmm(acc, a, b)` (torch.baddbmm for batches) or `acc = tl.dot(a, b, acc=acc)`")
        if frame is not None:
            warnings.warn_explicit(message, MatmulAccumulationWarning, frame.f_code.co_filename, frame.f_lineno)
        else:
            warnings.warn(message, MatmulAccumulationWarning, stacklevel=2)
    return call_device_op("__add__", (acc, value), {})
