"""deploy/grafana/embedserve.json against the metric names the server exports."""

import json
import os
import re

from .context import REPO


def check_grafana(kdir, log):
    """deploy/grafana/embedserve.json, when present: valid JSON, expressions over the
    metric names it was written for (to be checked against the server's exposition)."""
    path = os.path.join(os.path.dirname(os.path.abspath(kdir)), "grafana", "embedserve.json")
    if not os.path.exists(path):
        log("skip grafana: no deploy/grafana/embedserve.json")
        return []
    with open(path, encoding="utf-8") as f:
        try:
            board = json.load(f)
        except ValueError as e:
            return [f"{path}: not JSON: {e}"]
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(board)
    names = sorted({n for e in exprs for n in re.findall(r"\bembedserve_[a-z0-9_]+", e)})
    if not exprs or not board.get("panels") or not board.get("title"):
        return [f"{path}: want a title, panels and PromQL expressions"]
    # The names the server exports are string literals of its sources
    # (histograms without _bucket/_sum/_count). Checked once it has any.
    exported = set()
    for d, _, files in os.walk(os.path.join(REPO, "server")):
        for fname in files:
            if fname.endswith((".cc", ".h")):
                with open(os.path.join(d, fname), encoding="utf-8", errors="replace") as f:
                    exported |= set(re.findall(r'"(embedserve_[a-z0-9_]+)"', f.read()))
    if not exported:
        log(f"ok   grafana: {os.path.relpath(path, REPO)}: {len(board['panels'])} panels over "
            f"{', '.join(names)}; the server's sources name no metric yet, names not compared")
        return []
    unknown = [n for n in names if n not in exported and
               re.sub(r"_(bucket|sum|count)$", "", n) not in exported]
    if unknown:
        return [f"{path}: metrics {unknown} are not exported by the server (server/*.cc names "
                f"{sorted(exported)})"]
    log(f"ok   grafana: {os.path.relpath(path, REPO)}: {len(board['panels'])} panels, "
        f"{len(exprs)} queries over {', '.join(names)}, each exported by server/*.cc")
    return []
