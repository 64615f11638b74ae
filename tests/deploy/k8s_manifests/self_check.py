"""Self-check: every check shown failing. The in-memory MUTATIONS must each
be caught by their check and the CONTROLS pass; mutations of the files
themselves (YAML ambiguity, the renderer's refusals, the dashboard, a
drifting renderer against kubectl) must be caught too.
"""

import copy
import os
import shutil
import tempfile

from .checks import run_checks
from .grafana import check_grafana
from .mutations import CONTROLS, MUTATIONS, _cm, _sts
from .render import RenderError, ambiguous_scalars, compare_with_kubectl, configmap_hash, render


def self_check(objects, kdir, log):
    failures = []
    baseline = run_checks(objects, kdir)
    for what, ident, mutate in MUTATIONS:
        if baseline.get(ident, ["no such check"]):
            failures.append(f"mutation cannot prove {ident}: it fails (or is missing) on the "
                            f"manifests as they are: {what}")
            log(f"  UNPROVEN {what}: {ident} already fails without the mutation")
            continue
        objs = copy.deepcopy(objects)
        try:
            mutate(objs)
        except (KeyError, StopIteration, IndexError, TypeError) as e:
            failures.append(f"mutation does not apply to these manifests (update the test): "
                            f"{what}: {type(e).__name__} {e}")
            log(f"  BROKEN   {what}: the mutation does not apply: {type(e).__name__} {e}")
            continue
        results = run_checks(objs, kdir)
        caught = [i for i, errs in results.items() if errs]
        own = results.get(ident) or []
        if own and not all(e.startswith("cannot check:") for e in own):
            log(f"  caught   {what}\n             by {ident}: {own[0]}")
        else:
            failures.append(f"mutation not caught by {ident}: {what} (failed instead: {caught})")
            log(f"  MISSED   {what}: {ident} passed (failed instead: {caught})")
    for what, mutate in CONTROLS:
        objs = copy.deepcopy(objects)
        try:
            mutate(objs)
        except (KeyError, StopIteration, IndexError, TypeError) as e:
            failures.append(f"control does not apply (update the test): {what}: {e!r}")
            continue
        bad = {i: e for i, e in run_checks(objs, kdir).items() if e}
        if bad:
            failures.append(f"control rejected: {what}: {bad}")
            log(f"  REJECTED {what}: {bad}")
        else:
            log(f"  accepted {what} (control)")
    return failures


def self_check_files(kdir, log):
    """Mutations of the files themselves: YAML ambiguity and the renderer's refusals."""
    failures = []
    sts_path = os.path.join(kdir, "statefulset.yaml")
    with open(sts_path, encoding="utf-8") as f:
        text = f.read()
    for old, new in (("defaultMode: 288", "defaultMode: 0440"), ("value: async", "value: on")):
        if old not in text:
            failures.append(f"self-check: {old!r} not in statefulset.yaml; update the mutation")
            continue
        found = ambiguous_scalars(text.replace(old, new, 1), "statefulset.yaml")
        if found:
            log(f"  caught   {new!r} in statefulset.yaml\n             by yaml-1.1-vs-1.2: "
                f"{found[0]}")
        else:
            failures.append(f"yaml-1.1-vs-1.2 missed {new!r}")
            log(f"  MISSED   {new!r}: yaml-1.1-vs-1.2 passed")
    for what, edit in (
            ("a kustomization field the renderer does not implement (namespace)",
             lambda k: k + "namespace: ml\n"),
            ("a generator file outside the kustomization (../demo_tables.txtpb)",
             lambda k: k.replace("- tables.txtpb", "- tables.txtpb=../demo_tables.txtpb"))):
        with tempfile.TemporaryDirectory() as tmp:
            copy_dir = os.path.join(tmp, "k8s")
            shutil.copytree(kdir, copy_dir)
            path = os.path.join(copy_dir, "kustomization.yaml")
            with open(path, encoding="utf-8") as f:
                k = f.read()
            with open(path, "w", encoding="utf-8") as f:
                f.write(edit(k))
            shutil.copy(os.path.join(os.path.dirname(kdir), "demo_tables.txtpb"), tmp)
            try:
                render(copy_dir)
                failures.append(f"the renderer accepted {what}")
                log(f"  MISSED   {what}: rendered")
            except RenderError as e:
                log(f"  caught   {what}\n             by render: {e}")
    # The dashboard check must see a metric the server does not export.
    board = os.path.join(os.path.dirname(os.path.abspath(kdir)), "grafana", "embedserve.json")
    if os.path.exists(board):
        with tempfile.TemporaryDirectory() as tmp:
            os.makedirs(os.path.join(tmp, "deploy", "grafana"))
            with open(board, encoding="utf-8") as f:
                text = f.read().replace("embedserve_table_rows_pushed_total",
                                        "embedserve_table_rows_pushed")
            with open(os.path.join(tmp, "deploy", "grafana", "embedserve.json"), "w",
                      encoding="utf-8") as f:
                f.write(text)
            lines = []
            errors = check_grafana(os.path.join(tmp, "deploy", "k8s"), lines.append)
            what = "a dashboard query over a metric the server does not export"
            if errors:
                log(f"  caught   {what}\n             by grafana: {errors[0][:110]}...")
            elif any("names not compared" in line for line in lines):
                log(f"  skipped  {what}: the server's sources name no metric yet")
            else:
                failures.append(f"grafana missed {what}")
                log(f"  MISSED   {what}: grafana passed")
    # The comparison with kubectl must see a renderer that drifts.
    if shutil.which("kubectl"):
        def forgets_name_reference(d, hash_with_name=False):
            objs = render(d, hash_with_name)
            for v in _sts(objs)["spec"]["template"]["spec"]["volumes"]:
                if "configMap" in v:
                    v["configMap"]["name"] = "embedserve-tables"
            return objs
        for what, fn in (("a renderer that leaves the pod's ConfigMap reference unhashed",
                          forgets_name_reference),
                         ("a renderer that hashes the data with a trailing newline",
                          lambda d, hash_with_name=False: _rehash(render(d, hash_with_name)))):
            errors = compare_with_kubectl(kdir, lambda line: None, fn)
            if errors:
                log(f"  caught   {what}\n             by kubectl-render: {errors[0][:150]}...")
            else:
                failures.append(f"kubectl-render missed {what}")
                log(f"  MISSED   {what}: kubectl-render passed")
    return failures


def _rehash(objs):
    cm = _cm(objs)
    base = cm["metadata"]["name"].rsplit("-", 1)[0]
    data = {k: v + "\n" for k, v in cm["data"].items()}
    cm["metadata"]["name"] = f"{base}-{configmap_hash(base, data)}"
    return objs
