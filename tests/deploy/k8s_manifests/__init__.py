"""The parts of tests/deploy/k8s_manifests_test.py (issue 12, item 4; split in issue 13).

render: the kustomize subset deploy/k8s uses, the YAML 1.1/1.2 scalar check and
the comparison with `kubectl kustomize`. loader: strict loading into Debian's
python3-kubernetes models. context: the image's contract, the view of the
rendered objects the checks share (Ctx) and the check registry. checks_objects,
checks_pod: the cross-object checks; checks: runs them all. grafana: the
dashboard's metric names. mutations, self_check: each check shown failing.
"""
