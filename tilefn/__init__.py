"""tilefn: PyTorch with tiles. Trace Python tile kernels into an immutable IR; lower them to Triton."""
from . import lang, logs
from .config import Config
from .errors import TilefnError
from .autodiff import autograd, vjp, vjp_split
from .interpret import interpret
from .jit import JitFunction, jit, make_ir
from .tune.spec import ConfigSpec
from .tune.tune import TunedFunction, tune

logs.configure_from_env()

__all__ = ["jit", "make_ir", "interpret", "tune", "Config", "ConfigSpec", "lang", "TilefnError",
           "JitFunction", "TunedFunction", "vjp", "vjp_split", "autograd"]
