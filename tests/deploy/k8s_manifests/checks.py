"""Every check: the strict model load, then the cross-object checks in
registration order (checks_objects, then checks_pod)."""

from . import checks_objects, checks_pod  # noqa: F401 (importing registers their checks)
from .context import CHECKS, CheckError, Ctx
from .loader import StrictLoader


def run_checks(objects, kdir, loader=None):
    """{check id: [errors]} for the strict model load and every cross-object check."""
    loader = loader or StrictLoader()
    results = {"strict-models": []}
    for obj in objects:
        results["strict-models"] += loader.load_object(obj)[1]
    ctx = Ctx(objects, kdir)
    for ident, _, fn in CHECKS:
        try:
            results[ident] = fn(ctx)
        except CheckError as e:
            results[ident] = [f"cannot check: {e}"]
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
            results[ident] = [f"cannot check: {type(e).__name__} {e}"]
    return results
