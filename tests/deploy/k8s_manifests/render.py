"""Rendering deploy/k8s without kubectl: the subset of kustomize it uses.

Also the YAML 1.1-vs-1.2 scalar check on the sources and the comparison of
this renderer with `kubectl kustomize` where kubectl is on PATH.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess

import yaml


class RenderError(Exception):
    pass


# ---------------------------------------------------------------------------
# YAML: scalars that YAML 1.1 (PyYAML, kubectl's sigs.k8s.io/yaml) and YAML
# 1.2 (kustomize's kyaml) read differently, e.g. `defaultMode: 0440` (octal
# 288 in 1.1, decimal 440 in 1.2) or `value: on` (true or "on").

_YAML11_BOOL = re.compile(r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")


def ambiguous_scalars(text, where):
    problems = []

    def walk(node):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(k)
                walk(v)
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                walk(v)
        elif isinstance(node, yaml.ScalarNode) and node.style is None:
            v = node.value
            if _YAML11_BOOL.match(v) or _LEADING_ZERO.match(v) or _SEXAGESIMAL.match(v):
                problems.append(f"{where}:{node.start_mark.line + 1}: plain scalar {v!r} reads "
                                f"differently in YAML 1.1 and 1.2: quote it or write it plainly")

    for doc in yaml.compose_all(text):
        if doc is not None:
            walk(doc)
    return problems


# ---------------------------------------------------------------------------
# Rendering: the subset of kustomize deploy/k8s uses.

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "configMapGenerator"}
GENERATOR_FIELDS = {"name", "files"}


def _inside(kdir, rel):
    """kustomize's default load restriction: files in or below the root."""
    root = os.path.realpath(kdir)
    path = os.path.realpath(os.path.join(kdir, rel))
    if path != root and not path.startswith(root + os.sep):
        raise RenderError(f"{rel}: not in or below {kdir} (kustomize refuses it too)")
    if not os.path.isfile(path):
        raise RenderError(f"{rel}: not a file (directories and remote bases are not rendered "
                          f"by this test)")
    return path


def _go_json(value):
    """Go's json.Marshal of a map (sorted keys, no spaces, <>& escaped)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def configmap_hash(name, data, with_name=False):
    """kustomize's ConfigMap name suffix (api/hasher: encodeConfigMap).

    sha256 of the JSON of {kind, name, data}; its first 10 hex digits with
    0,1,3,a,e mapped to g,h,k,m,t. kustomize 5.x (kubectl 1.32's 5.5.0 here)
    looks the name up under a path that finds nothing and hashes name "";
    with_name=True gives the hash with the real name, for other versions.
    """
    for key, value in data.items():
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", value):
            raise RenderError(f"ConfigMap key {key}: control characters; their JSON escaping "
                              f"(and so the hash) is not modelled here")
    encoded = _go_json({"kind": "ConfigMap", "name": name if with_name else "", "data": data})
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def pod_specs(obj):
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return []
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return [template["spec"]]
    return []


def _rename_configmap_refs(podspec, renames):
    """kustomize's nameReference for ConfigMaps within a pod spec."""
    def fix(holder, key="name"):
        if isinstance(holder, dict) and holder.get(key) in renames:
            holder[key] = renames[holder[key]]

    for vol in podspec.get("volumes") or []:
        fix(vol.get("configMap"))
        for src in (vol.get("projected") or {}).get("sources") or []:
            fix(src.get("configMap"))
    for c in (podspec.get("containers") or []) + (podspec.get("initContainers") or []):
        for env in c.get("env") or []:
            fix((env.get("valueFrom") or {}).get("configMapKeyRef"))
        for src in c.get("envFrom") or []:
            fix(src.get("configMapRef"))


def read_kustomization(kdir):
    names = [n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
             if os.path.isfile(os.path.join(kdir, n))]
    if len(names) != 1:
        raise RenderError(f"{kdir}: want exactly one kustomization file, found {names}")
    with open(os.path.join(kdir, names[0]), encoding="utf-8") as f:
        k = yaml.safe_load(f) or {}
    if not isinstance(k, dict):
        raise RenderError("the kustomization is not a mapping")
    unknown = sorted(set(k) - KUSTOMIZATION_FIELDS)
    if unknown:
        raise RenderError(f"kustomization fields {unknown} are not rendered by this test: "
                          f"extend tests/deploy/k8s_manifests/render.py with them")
    if k.get("apiVersion", "kustomize.config.k8s.io/v1beta1") != \
            "kustomize.config.k8s.io/v1beta1" or k.get("kind", "Kustomization") != "Kustomization":
        raise RenderError("not a kustomize.config.k8s.io/v1beta1 Kustomization")
    return k


def render(kdir, hash_with_name=False):
    """Objects (dicts) as `kubectl kustomize kdir` gives them (order aside)."""
    k = read_kustomization(kdir)
    objects = []
    for rel in k.get("resources") or []:
        with open(_inside(kdir, rel), encoding="utf-8") as f:
            objects.extend(d for d in yaml.safe_load_all(f) if d is not None)
    renames = {}
    for gen in k.get("configMapGenerator") or []:
        unknown = sorted(set(gen) - GENERATOR_FIELDS)
        if unknown:
            raise RenderError(f"configMapGenerator fields {unknown} are not rendered by this test")
        data = {}
        for entry in gen.get("files") or []:
            key, sep, rel = entry.partition("=")
            if not sep:
                key, rel = os.path.basename(entry), entry
            with open(_inside(kdir, rel), "rb") as f:
                raw = f.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RenderError(f"{rel}: not UTF-8 (kustomize would use binaryData): {e}")
            if key in data:
                raise RenderError(f"configMapGenerator {gen['name']}: key {key} twice")
            data[key] = text
        name = gen["name"]
        full = f"{name}-{configmap_hash(name, data, hash_with_name)}"
        renames[name] = full
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": full}, "data": data})
    for obj in objects:
        for ps in pod_specs(obj):
            _rename_configmap_refs(ps, renames)
    seen = set()
    for obj in objects:
        ident = object_id(obj)
        if ident in seen:
            raise RenderError(f"{ident}: defined twice (kustomize refuses duplicates)")
        seen.add(ident)
    return objects


def object_id(obj):
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))


def _first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {a!r} vs {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'ours' if key in a else 'kubectl'}"
            d = _first_difference(a[key], b[key], f"{path}.{key}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def compare_with_kubectl(kdir, log, render_fn=None):
    """[] when `kubectl kustomize` gives the objects render() gives."""
    render_fn = render_fn or render
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        log("skip kubectl-render: no kubectl on PATH (the comparison with `kubectl kustomize` "
            "runs where one is)")
        return []
    try:
        run = subprocess.run([kubectl, "kustomize", kdir], capture_output=True, text=True,
                             timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"{kubectl} kustomize {kdir}: {e}"]
    if run.returncode != 0:
        return [f"{kubectl} kustomize {kdir} exited {run.returncode}: {run.stderr.strip()}"]
    theirs = {object_id(o): o for o in yaml.safe_load_all(run.stdout) if o is not None}
    differences = []
    for with_name in (False, True):
        ours = {object_id(o): o for o in render_fn(kdir, hash_with_name=with_name)}
        if ours == theirs:
            variant = "name" if with_name else "name \"\""
            log(f"ok   kubectl-render: `{os.path.basename(kubectl)} kustomize` ({kubectl}) gives "
                f"the same {len(ours)} objects (ConfigMap hash of kind, {variant} and data)")
            return []
        only_ours = sorted(set(ours) - set(theirs), key=str)
        only_theirs = sorted(set(theirs) - set(ours), key=str)
        diffs = [f"{i}: {_first_difference(ours[i], theirs[i])}"
                 for i in sorted(set(ours) & set(theirs), key=str) if ours[i] != theirs[i]]
        differences.append(f"hash {'with' if with_name else 'without'} name: only ours "
                           f"{only_ours}, only kubectl's {only_theirs}, differing {diffs}")
    return ["kubectl kustomize and this test's renderer disagree: " + "; ".join(differences)]
