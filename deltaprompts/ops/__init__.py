"""Question ops beyond the core set of deltaprompts.programs, one module per theme; every module of
this package registers its ops with `@programs.op` when the op registry is first asked."""

import pkgutil
from importlib import import_module

for _module in pkgutil.iter_modules(__path__):
    import_module(f"{__name__}.{_module.name}")
