#!/usr/bin/python3
"""Offline checks of the Kubernetes manifests in deploy/k8s (issue 12, item 4).

No cluster runs here, and `kubectl --dry-run=client` needs an API server, so:

1. Render the kustomization without kubectl: the subset of kustomize that
   deploy/k8s/kustomization.yaml uses (resources; configMapGenerator from
   files, with kustomize's name-hash suffix and the rewrite of the pod's
   references to the generated name). Any other kustomization field is
   refused rather than rendered wrongly. Where kubectl is on PATH,
   `kubectl kustomize` renders too and the two must give the same objects.
2. Load every object strictly into Debian's python3-kubernetes models: unknown
   fields, wrong types and missing required fields fail (ApiClient.deserialize
   would silently drop unknown fields, so the dicts are walked against each
   model's openapi_types/attribute_map here, and models are constructed with
   client-side validation on, which raises on a missing required field).
3. Cross-object checks: selectors, ports, probes, the ConfigMap and Secret
   the pod mounts, the security context, the data volume, scrape
   annotations, resources sized from the tables, graceful termination.
4. Self-check (default; --no-self-check skips it): a list of mutations, each
   breaking one rule in memory, must each be caught by the check meant to
   catch it; two positive controls must pass. So every check can fail.

The parts (renderer, strict loader, checks, mutations) are modules of the
k8s_manifests package beside this file (issue 13); this file runs them.

Usage: k8s_manifests_test.py [DEPLOY_K8S_DIR] [--no-self-check]
Exit status 0 when everything passed, 1 otherwise. Uses /usr/bin/python3 with
Debian's python3-kubernetes and python3-yaml only.
"""

import argparse
import os
import sys

import kubernetes
import yaml

from k8s_manifests.checks import run_checks
from k8s_manifests.checks_pod import memory_budget
from k8s_manifests.context import CHECKS, REPO, Ctx
from k8s_manifests.grafana import check_grafana
from k8s_manifests.loader import MODELS, SHIMS, StrictLoader
from k8s_manifests.mutations import CONTROLS, MUTATIONS
from k8s_manifests.render import RenderError, ambiguous_scalars, compare_with_kubectl, render
from k8s_manifests.self_check import self_check, self_check_files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kdir", nargs="?", default=os.path.join(REPO, "deploy", "k8s"))
    parser.add_argument("--no-self-check", action="store_true")
    opts = parser.parse_args()
    kdir = opts.kdir
    failures = []

    def log(line):
        print(line, flush=True)

    def report(ident, what, errors):
        if errors:
            log(f"FAIL {ident}: {what}")
            for e in errors:
                log(f"       {e}")
            failures.extend(f"{ident}: {e}" for e in errors)
        else:
            log(f"ok   {ident}: {what}")

    log(f"k8s manifests: {kdir} (python3-kubernetes {kubernetes.__version__}, "
        f"PyYAML {yaml.__version__})")
    loader = StrictLoader()
    report("client-side-validation", "python3-kubernetes raises on a missing required field",
           loader.preflight())

    sources = [os.path.join(kdir, n) for n in sorted(os.listdir(kdir))
               if n.endswith((".yaml", ".yml"))]
    ambiguous = []
    for path in sources:
        with open(path, encoding="utf-8") as f:
            ambiguous += ambiguous_scalars(f.read(), os.path.relpath(path, REPO))
    report("yaml-1.1-vs-1.2", f"no plain scalar that YAML 1.1 and 1.2 read differently "
           f"({len(sources)} files)", ambiguous)

    try:
        objects = render(kdir)
    except (RenderError, OSError, yaml.YAMLError) as e:
        report("render", "render the kustomization", [str(e)])
        return 1
    log(f"ok   render: {len(objects)} objects: " +
        ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objects))
    kubectl_errors = compare_with_kubectl(kdir, log)
    if kubectl_errors:
        report("kubectl-render", "`kubectl kustomize` gives the same objects", kubectl_errors)

    results = run_checks(objects, kdir, loader)
    models = sorted({MODELS.get((o.get("apiVersion"), o.get("kind")), "?") for o in objects})
    report("strict-models", "every object loads strictly into python3-kubernetes models "
           f"({', '.join(models)})", results.pop("strict-models"))
    for shim in sorted(loader.shims_used):
        log(f"       {shim}: newer than python3-kubernetes {kubernetes.__version__}; validated "
            f"against the API's schema here ({SHIMS[tuple(shim.split('.'))][0]})")
    for ident, what, _ in CHECKS:
        report(ident, what, results[ident])
        if ident == "resources" and not results[ident]:
            for line in memory_budget(Ctx(objects, kdir))[0]:
                log(line)
    grafana_errors = check_grafana(kdir, log)
    if grafana_errors:
        report("grafana", "deploy/grafana/embedserve.json", grafana_errors)

    if not opts.no_self_check:
        log(f"self-check: {len(MUTATIONS)} mutations, each must be caught by its check; "
            f"{len(CONTROLS)} controls must pass")
        failures += self_check(objects, kdir, log)
        failures += self_check_files(kdir, log)

    if failures:
        log(f"FAILED: {len(failures)} problem(s)")
        return 1
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
