"""What `generate`'s fork server imports once, before it forks the pool's workers.

Each worker forks from a process that has already imported the renderers, every built-in family,
the ops and the built-in question templates, instead of importing them itself (about 2.7 s of CPU
a worker, paid while the driver waits). The fork server is a fresh process started by the driver
(multiprocessing's "forkserver" start method): it holds no thread, lock or browser of the driver.
"""

import contextlib

from deltaprompts.procsetup import skip_pymupdf_layout

skip_pymupdf_layout()
# A broken module must not take the fork server down: the worker then imports it again and its
# error reaches the user the usual way (one line naming the module).
with contextlib.suppress(Exception):
    import matplotlib.figure  # noqa: F401
    import pymupdf  # noqa: F401

    import deltaprompts.generate  # noqa: F401
    from deltaprompts.generators import FAMILIES
    from deltaprompts.programs import OPS
    from deltaprompts.questions import load_templates

    FAMILIES.names()
    OPS.names()
    load_templates(())
