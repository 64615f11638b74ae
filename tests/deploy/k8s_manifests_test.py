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

Usage: k8s_manifests_test.py [DEPLOY_K8S_DIR] [--no-self-check]
Exit status 0 when everything passed, 1 otherwise. Uses /usr/bin/python3 with
Debian's python3-kubernetes and python3-yaml only.
"""

import argparse
import copy
import difflib
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import kubernetes
import yaml
from kubernetes import client as k8s

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The contract of the image and the server (Dockerfile, deploy/docker-entrypoint.sh).
IMAGE = "embedserve:latest"
USER_ID = 10001
DATA_DIR = "/var/lib/embedserve/data"
SECRET_NAME = "embedserve-tls-tokens"
SECRET_ENV = ("EMBEDSERVE_TOKENS_FILE", "EMBEDSERVE_TLS_CERT", "EMBEDSERVE_TLS_KEY",
              "EMBEDSERVE_TLS_CLIENT_CA")
HEALTH_SERVICES = ("", "embedserve.v1.EmbeddingService")
SERVER_DRAIN_S = 5  # calls in flight get this long after SIGTERM (the server's drain)
MiB = 1 << 20


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
                          f"extend tests/deploy/k8s_manifests_test.py with them")
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


# ---------------------------------------------------------------------------
# Strict loading into the python3-kubernetes models.

MODELS = {
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}

# Fields newer than the installed python3-kubernetes (Debian 12: 22.6, i.e.
# Kubernetes 1.22), with their schema from the Kubernetes API reference.
# Used only when the model lacks the field; then validated here as strictly.
#   Probe.grpc: GRPCAction (beta 1.24, GA 1.27): port int32 (required),
#   service string.
SHIMS = {
    ("V1Probe", "grpc"): ("GRPCAction", {"port": ("int", True), "service": ("str", False)}),
}


def _did_you_mean(key, known):
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class StrictLoader:
    def __init__(self):
        self.cfg = k8s.Configuration()
        self.cfg.client_side_validation = True
        self.shims_used = set()

    def preflight(self):
        """The required-field checks rest on client-side validation: prove it is on."""
        try:
            k8s.V1Container(local_vars_configuration=self.cfg)
        except ValueError:
            return []
        return ["python3-kubernetes did not raise for a V1Container without its required name: "
                "client-side validation is off, missing required fields would pass"]

    def load_object(self, obj):
        """(model, errors) for one rendered object."""
        if not isinstance(obj, dict):
            return None, [f"not a mapping: {obj!r:.60}"]
        key = (obj.get("apiVersion"), obj.get("kind"))
        name = (obj.get("metadata") or {}).get("name") if isinstance(obj.get("metadata"),
                                                                      dict) else None
        where = f"{key[1]}/{name}"
        if key not in MODELS:
            return None, [f"{where}: apiVersion/kind {key} is not one this test knows "
                          f"(known: {sorted(MODELS)})"]
        if not name:
            return None, [f"{where}: metadata.name missing"]
        errors = []
        model = self.load(obj, MODELS[key], where, errors)
        return model, errors

    def load(self, value, typ, path, errors):
        if typ == "str":
            return value if self._want(isinstance(value, str), value, "a string", path,
                                       errors) else None
        if typ == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
            return value if self._want(ok, value, "an integer", path, errors) else None
        if typ == "bool":
            return value if self._want(isinstance(value, bool), value, "a boolean", path,
                                       errors) else None
        if typ == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return value if self._want(ok, value, "a number", path, errors) else None
        if typ == "object":  # IntOrString in these kinds
            ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
            return value if self._want(ok, value, "an integer or a string", path,
                                       errors) else None
        if typ in ("datetime", "date"):
            return value if self._want(isinstance(value, str), value, "a timestamp string",
                                       path, errors) else None
        m = re.fullmatch(r"list\[(.+)\]", typ)
        if m:
            if not self._want(isinstance(value, list), value, "a list", path, errors):
                return None
            return [self.load(v, m.group(1), f"{path}[{i}]", errors) for i, v in enumerate(value)]
        m = re.fullmatch(r"dict\(str, (.+)\)", typ)
        if m:
            if not self._want(isinstance(value, dict), value, "a mapping", path, errors):
                return None
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    errors.append(f"{path}: key {k!r} is not a string")
                out[k] = self.load(v, m.group(1), f"{path}.{k}", errors)
            return out
        cls = getattr(k8s, typ, None)
        if cls is None:
            errors.append(f"{path}: the model {typ} is not in python3-kubernetes")
            return None
        return self._load_model(value, cls, typ, path, errors)

    def _load_model(self, value, cls, typ, path, errors):
        if not self._want(isinstance(value, dict), value, f"a mapping ({typ})", path, errors):
            return None
        by_json = {j: attr for attr, j in cls.attribute_map.items()}
        kwargs, before = {}, len(errors)
        for key, v in value.items():
            if key in by_json:
                attr = by_json[key]
                kwargs[attr] = self.load(v, cls.openapi_types[attr], f"{path}.{key}", errors)
            elif (typ, key) in SHIMS:
                self.shims_used.add(f"{typ}.{key}")
                self._load_shim(v, SHIMS[(typ, key)], f"{path}.{key}", errors)
            else:
                errors.append(f"{path}: unknown field {key!r} in {typ}"
                              f"{_did_you_mean(key, by_json)}")
        if len(errors) > before:
            return None  # the errors below say what is wrong; no construction on top
        try:
            return cls(**kwargs, local_vars_configuration=self.cfg)
        except (ValueError, TypeError) as e:
            errors.append(f"{path}: {typ}: {e}")
            return None

    def _load_shim(self, value, shim, path, errors):
        name, fields = shim
        if not self._want(isinstance(value, dict), value, f"a mapping ({name})", path, errors):
            return
        for key, v in value.items():
            if key not in fields:
                errors.append(f"{path}: unknown field {key!r} in {name} (it has "
                              f"{sorted(fields)})")
            else:
                self.load(v, fields[key][0], f"{path}.{key}", errors)
        for key, (_, required) in fields.items():
            if required and value.get(key) is None:
                errors.append(f"{path}: {name}: required field {key!r} missing")

    @staticmethod
    def _want(ok, value, what, path, errors):
        if not ok:
            errors.append(f"{path}: want {what}, got {type(value).__name__} {value!r:.60}")
        return ok


# ---------------------------------------------------------------------------
# Helpers for the cross-object checks.

class Ctx:
    """The rendered objects, with the pieces the checks look at."""

    def __init__(self, objects, kdir):
        self.objects = objects
        self.kdir = kdir
        self.by_kind = {}
        for o in objects:
            if isinstance(o, dict):
                self.by_kind.setdefault(o.get("kind"), []).append(o)

    def kind(self, kind):
        return self.by_kind.get(kind, [])

    def one(self, kind):
        found = self.kind(kind)
        if len(found) != 1:
            raise CheckError(f"want one {kind}, found {len(found)}")
        return found[0]

    @property
    def sts(self):
        return self.one("StatefulSet")

    @property
    def pod(self):
        return self.sts["spec"]["template"]

    @property
    def podspec(self):
        return self.pod["spec"]

    @property
    def container(self):
        cs = [c for c in self.podspec.get("containers") or [] if c.get("name") == "embedserve"]
        if len(cs) != 1:
            raise CheckError("want one container named embedserve")
        return cs[0]

    @property
    def pod_labels(self):
        return (self.pod.get("metadata") or {}).get("labels") or {}

    def env(self):
        out = {}
        for e in self.container.get("env") or []:
            if "valueFrom" in e:
                raise CheckError(f"env {e.get('name')}: valueFrom is not followed by these checks")
            out[e["name"]] = e.get("value", "")
        return out

    def ports(self):
        """containerPort -> port dict; name -> port dict."""
        by_number, by_name = {}, {}
        for p in self.container.get("ports") or []:
            by_number[p["containerPort"]] = p
            if p.get("name"):
                by_name[p["name"]] = p
        return by_number, by_name

    def configmap(self, name):
        for cm in self.kind("ConfigMap"):
            if cm["metadata"]["name"] == name:
                return cm
        return None

    def volumes(self):
        return {v["name"]: v for v in self.podspec.get("volumes") or []}

    def mounts(self):
        return self.container.get("volumeMounts") or []

    def demo_tables_path(self):
        return os.path.join(os.path.dirname(os.path.abspath(self.kdir)), "demo_tables.txtpb")


class CheckError(Exception):
    pass


def selector_matches(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions) against labels."""
    if not selector:
        return False  # an empty selector selects everything: never what is meant here
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def address_port(address):
    host, sep, port = (address or "").rpartition(":")
    if not sep or not port.isdigit():
        raise CheckError(f"address {address!r}: want host:port")
    return host, int(port)


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIX = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
           "Ei": 2**60, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9,
           "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(q):
    m = _QUANTITY.match(str(q))
    if not m:
        raise CheckError(f"quantity {q!r} does not parse")
    suffix = m.group(2)
    factor = _SUFFIX[suffix] if suffix in _SUFFIX else 10 ** int(suffix[1:])
    return float(m.group(1)) * factor


def parse_txtpb(text):
    """A protobuf text-format message as {field: [values]}; nested messages as dicts."""
    tokens = re.findall(r'#[^\n]*|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}<>\[\]:,;]|'
                        r'[A-Za-z0-9_.+-]+|\S', text)
    tokens = [t for t in tokens if not t.startswith("#")]
    pos = 0

    def message(end):
        nonlocal pos
        out = {}
        while pos < len(tokens) and tokens[pos] != end:
            name = tokens[pos]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise CheckError(f"tables config: unexpected {name!r}")
            pos += 1
            if pos < len(tokens) and tokens[pos] == ":":
                pos += 1
            if pos >= len(tokens):
                raise CheckError("tables config: ends inside a field")
            if tokens[pos] in ("{", "<"):
                close = "}" if tokens[pos] == "{" else ">"
                pos += 1
                value = message(close)
                pos += 1
            elif tokens[pos] == "[":
                raise CheckError("tables config: list syntax [..] not parsed by this test")
            else:
                value = tokens[pos]
                if value[0] in "\"'":
                    value = value[1:-1]
                pos += 1
            out.setdefault(name, []).append(value)
            if pos < len(tokens) and tokens[pos] in (",", ";"):
                pos += 1
        return out

    parsed = message(None)
    if pos != len(tokens):
        raise CheckError(f"tables config: unexpected {tokens[pos]!r}")
    return parsed


def _enum(value, names):
    return names[int(value)] if str(value).isdigit() else str(value)


def table_bytes(table):
    """EmbeddingTable::EstimateBytes (core/embedding_table.cc) for one TableSpec."""
    n = int(table["num_embeddings"][0])
    dim = int(table["embedding_dim"][0])
    row_type = _enum(table.get("row_type", ["FLOAT32"])[0],
                     ["FLOAT32", "FLOAT16", "BFLOAT16", "INT8_ROWWISE"])
    kind = _enum((table.get("optimizer", [{}])[0]).get("kind", ["SGD"])[0],
                 ["SGD", "ADAGRAD", "ROWWISE_ADAGRAD", "SPARSE_ADAM"])

    def up(x, m):
        return (x + m - 1) // m * m
    lanes = up(dim, 16)  # kRowAlignFloats
    stride = {"FLOAT32": up(lanes * 4, 64), "FLOAT16": up(lanes * 2, 64),
              "BFLOAT16": up(lanes * 2, 64), "INT8_ROWWISE": up(8 + lanes, 16)}[row_type]
    element_slots = {"ADAGRAD": 1, "SPARSE_ADAM": 2}.get(kind, 0)
    row_slots = 1 if kind == "ROWWISE_ADAGRAD" else 0
    return n * stride + n * 4 * (lanes * element_slots + row_slots)


def memtable_settings():
    """Per-family memtable bytes and count from storage/rocksdb_store.cc (FamilyOptions)."""
    path = os.path.join(REPO, "storage", "rocksdb_store.cc")
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError:
        return 64 * MiB, 3, "(storage/rocksdb_store.cc not found: 64 MiB x 3 assumed)"
    size = re.search(r"o\.write_buffer_size = (\d+) << 20;", src)
    count = re.search(r"o\.max_write_buffer_number = (\d+);", src)
    if not size or not count:
        raise CheckError("storage/rocksdb_store.cc: FamilyOptions' write_buffer_size or "
                         "max_write_buffer_number not found; update this test's sizing")
    return int(size.group(1)) * MiB, int(count.group(1)), "(storage/rocksdb_store.cc)"


# ---------------------------------------------------------------------------
# The checks. Each returns a list of errors (empty: passed).

CHECKS = []


def check(ident, what):
    def register(fn):
        CHECKS.append((ident, what, fn))
        return fn
    return register


_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _label_errors(labels, where):
    errors = []
    for k, v in (labels or {}).items():
        prefix, _, name = str(k).rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix))) or \
                len(name) > 63 or not _LABEL_NAME.match(name):
            errors.append(f"{where}: label key {k!r} is not valid")
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            errors.append(f"{where}: label value {v!r} of {k} is not valid")
    return errors


@check("objects", "the expected objects, valid names and labels, no Secret")
def check_objects(ctx):
    errors = []
    want = {"StatefulSet": 1, "Service": 2, "PodDisruptionBudget": 1, "ConfigMap": 1}
    for kind, n in want.items():
        if len(ctx.kind(kind)) != n:
            errors.append(f"want {n} {kind}, found {len(ctx.kind(kind))}")
    if ctx.kind("Secret"):
        errors.append("a Secret is in the manifests: secret material is the operator's, "
                      "created with kubectl create secret (README.md)")
    for o in ctx.objects:
        meta = o.get("metadata") or {}
        name = str(meta.get("name"))
        rule = _DNS1123_LABEL if o.get("kind") in ("Service", "StatefulSet") else \
            _DNS1123_SUBDOMAIN
        if not rule.match(name) or len(name) > (63 if rule is _DNS1123_LABEL else 253):
            errors.append(f"{o.get('kind')}/{name}: not a valid name")
        errors += _label_errors(meta.get("labels"), f"{o.get('kind')}/{name}")
    errors += _label_errors(ctx.pod_labels, "pod template")
    return errors


@check("statefulset-selector", "the StatefulSet's selector selects its pod template")
def check_sts_selector(ctx):
    sel = ctx.sts["spec"].get("selector")
    if not selector_matches(sel, ctx.pod_labels):
        return [f"selector {sel} does not match the pod template's labels {ctx.pod_labels}"]
    return []


@check("service-selectors", "each Service selects the StatefulSet's pods")
def check_service_selectors(ctx):
    errors = []
    for svc in ctx.kind("Service"):
        sel = svc["spec"].get("selector") or {}
        if not sel or any(ctx.pod_labels.get(k) != v for k, v in sel.items()):
            errors.append(f"Service/{svc['metadata']['name']}: selector {sel} does not match "
                          f"the pod labels {ctx.pod_labels}")
    return errors


@check("service-ports", "each Service's targetPort is a container port, by name or number")
def check_service_ports(ctx):
    errors = []
    by_number, by_name = ctx.ports()
    for svc in ctx.kind("Service"):
        name = svc["metadata"]["name"]
        ports = svc["spec"].get("ports") or []
        if not ports:
            errors.append(f"Service/{name}: no ports")
        if len(ports) > 1 and not all(p.get("name") for p in ports):
            errors.append(f"Service/{name}: several ports, each needs a name")
        for p in ports:
            target = p.get("targetPort", p.get("port"))
            cport = by_name.get(target) if isinstance(target, str) else by_number.get(target)
            if cport is None:
                errors.append(f"Service/{name} port {p.get('name')}: targetPort {target!r} is "
                              f"no container port (names {sorted(by_name)}, numbers "
                              f"{sorted(by_number)})")
            elif p.get("protocol", "TCP") != cport.get("protocol", "TCP"):
                errors.append(f"Service/{name} port {p.get('name')}: protocol differs from the "
                              f"container port's")
    return errors


@check("headless-service", "the StatefulSet's serviceName is a headless Service (clusterIP None)")
def check_headless(ctx):
    service_name = ctx.sts["spec"].get("serviceName")
    svc = [s for s in ctx.kind("Service") if s["metadata"]["name"] == service_name]
    if not svc:
        return [f"serviceName {service_name!r} names no Service here"]
    cluster_ip = svc[0]["spec"].get("clusterIP")
    if cluster_ip != "None":
        return [f"Service/{service_name}: clusterIP {cluster_ip or 'unset'}, want None "
                f"(headless: one DNS name per pod)"]
    return []


@check("client-service", "a ClusterIP Service exposes grpc 50051 to clients")
def check_client_service(ctx):
    headless = ctx.sts["spec"].get("serviceName")
    _, by_name = ctx.ports()
    for svc in ctx.kind("Service"):
        spec = svc["spec"]
        if svc["metadata"]["name"] == headless or spec.get("clusterIP") == "None":
            continue
        if spec.get("type", "ClusterIP") != "ClusterIP":
            continue
        for p in spec.get("ports") or []:
            if p.get("name") == "grpc" and p.get("port") == 50051 and \
                    p.get("targetPort") in ("grpc", (by_name.get("grpc") or {}).get(
                        "containerPort")):
                return []
    return ["no ClusterIP Service (other than the headless one) with port grpc 50051 -> the "
            "container's grpc port"]


@check("pdb", "the PodDisruptionBudget selects the pods and lets a drain through")
def check_pdb(ctx):
    errors = []
    pdb = ctx.one("PodDisruptionBudget")
    if pdb.get("apiVersion") != "policy/v1":
        errors.append(f"apiVersion {pdb.get('apiVersion')}: want policy/v1")
    spec = pdb["spec"]
    if not selector_matches(spec.get("selector"), ctx.pod_labels):
        errors.append(f"selector {spec.get('selector')} does not match the pod labels")
    has_max, has_min = "maxUnavailable" in spec, "minAvailable" in spec
    if has_max == has_min:
        errors.append("want exactly one of maxUnavailable and minAvailable")
    replicas = ctx.sts["spec"].get("replicas", 1)

    def count(v):  # IntOrString: a percentage of the replicas rounds up
        if isinstance(v, str) and v.endswith("%") and v[:-1].isdigit():
            return math.ceil(replicas * int(v[:-1]) / 100)
        if isinstance(v, int):
            return v
        raise CheckError(f"{v!r}: want an integer or a percentage")
    if has_max and count(spec["maxUnavailable"]) < 1:
        errors.append("maxUnavailable allows no disruption: node drains would hang")
    if has_min and count(spec["minAvailable"]) >= replicas:
        errors.append(f"minAvailable {spec['minAvailable']} with {replicas} replica(s) allows "
                      f"no disruption: node drains would hang")
    return errors


@check("probes", "startup, readiness and liveness: native grpc probes on the plaintext health "
       "port")
def check_probes(ctx):
    errors = []
    c = ctx.container
    by_number, by_name = ctx.ports()
    env = ctx.env()
    health_port = address_port(env.get("EMBEDSERVE_HEALTH_ADDRESS"))[1] \
        if "EMBEDSERVE_HEALTH_ADDRESS" in env else None
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(kind)
        if not probe:
            errors.append(f"{kind}: missing")
            continue
        handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in probe]
        if len(handlers) != 1:
            errors.append(f"{kind}: want exactly one handler, found {handlers}")
            continue
        if handlers != ["grpc"]:
            errors.append(f"{kind}: {handlers[0]}, want a native grpc probe")
            continue
        port = probe["grpc"].get("port")
        if port not in by_number:
            errors.append(f"{kind}: port {port} is no container port {sorted(by_number)}")
        elif port != health_port:
            errors.append(f"{kind}: port {port} is not EMBEDSERVE_HEALTH_ADDRESS's port "
                          f"{health_port} (kubelet's grpc probe speaks no TLS)")
        if probe["grpc"].get("service", "") not in HEALTH_SERVICES:
            errors.append(f"{kind}: service {probe['grpc'].get('service')!r}, want one of "
                          f"{HEALTH_SERVICES}")
    startup = c.get("startupProbe") or {}
    budget = startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10)
    if budget < 300:
        errors.append(f"startupProbe allows {budget} s to load the tables; want at least 300 s")
    return errors


@check("listen-addresses", "EMBEDSERVE_*_ADDRESS bind all interfaces on the declared ports")
def check_addresses(ctx):
    errors = []
    env = ctx.env()
    _, by_name = ctx.ports()
    used = set()
    for var, port_name in (("EMBEDSERVE_ADDRESS", "grpc"), ("EMBEDSERVE_HEALTH_ADDRESS", "health"),
                           ("EMBEDSERVE_METRICS_ADDRESS", "metrics")):
        if var not in env:
            errors.append(f"{var}: not set")
            continue
        host, port = address_port(env[var])
        if host not in ("0.0.0.0", "[::]"):
            errors.append(f"{var}={env[var]}: kubelet, Services and Prometheus reach the pod's "
                          f"IP, not {host}")
        if (by_name.get(port_name) or {}).get("containerPort") != port:
            errors.append(f"{var}={env[var]}: the container port named {port_name} is "
                          f"{(by_name.get(port_name) or {}).get('containerPort')!r}")
        if port in used:
            errors.append(f"{var}: port {port} used twice")
        used.add(port)
    return errors


@check("tables-configmap", "EMBEDSERVE_CONFIG = a ConfigMap mount's path + a key that ConfigMap "
       "has")
def check_tables_configmap(ctx):
    env = ctx.env()
    path = env.get("EMBEDSERVE_CONFIG")
    if not path:
        return ["EMBEDSERVE_CONFIG: not set"]
    volumes = ctx.volumes()
    for m in ctx.mounts():
        vol = volumes.get(m.get("name")) or {}
        if "configMap" not in vol:
            continue
        source = vol["configMap"]
        mount_path = m["mountPath"].rstrip("/")
        if m.get("subPath"):
            if mount_path != path:
                continue
            key = m["subPath"]
        elif path.startswith(mount_path + "/"):
            rel = path[len(mount_path) + 1:]
            items = source.get("items")
            if items is None:
                key = rel
            else:
                keys = [i["key"] for i in items if i.get("path") == rel]
                if not keys:
                    return [f"EMBEDSERVE_CONFIG={path}: the volume {m['name']} projects no item "
                            f"to {rel}"]
                key = keys[0]
        else:
            continue
        errors = []
        if not m.get("readOnly"):
            errors.append(f"mount {m['name']}: want readOnly")
        if source.get("optional"):
            errors.append(f"volume {m['name']}: optional, the server would start without tables")
        cm = ctx.configmap(source.get("name"))
        if cm is None:
            errors.append(f"volume {m['name']}: ConfigMap {source.get('name')!r} is not in the "
                          f"manifests")
        elif key not in (cm.get("data") or {}):
            errors.append(f"ConfigMap/{cm['metadata']['name']}: no key {key!r} (has "
                          f"{sorted(cm.get('data') or {})})")
        return errors
    return [f"EMBEDSERVE_CONFIG={path}: no ConfigMap volume is mounted there"]


def _tables_text(ctx):
    path = ctx.env()["EMBEDSERVE_CONFIG"]
    mount_path, _, rel = path.rpartition("/")
    for m in ctx.mounts():
        if m["mountPath"].rstrip("/") == mount_path:
            source = ctx.volumes()[m["name"]]["configMap"]
            key = next((i["key"] for i in source.get("items") or [] if i["path"] == rel), rel)
            return ctx.configmap(source["name"])["data"][key]
    raise CheckError(f"EMBEDSERVE_CONFIG={path}: not found in a ConfigMap")


@check("tables-content", "the tables ConfigMap holds deploy/demo_tables.txtpb, byte for byte")
def check_tables_content(ctx):
    with open(ctx.demo_tables_path(), encoding="utf-8") as f:
        demo = f.read()
    if _tables_text(ctx) != demo:
        return ["the tables ConfigMap differs from deploy/demo_tables.txtpb: "
                "cp deploy/demo_tables.txtpb deploy/k8s/tables.txtpb"]
    return []


@check("configmap-hash", "each generated ConfigMap's name suffix is the hash of its data")
def check_configmap_hash(ctx):
    errors = []
    generators = read_kustomization(ctx.kdir).get("configMapGenerator") or []
    for gen in generators:
        prefix = gen["name"] + "-"
        found = [cm for cm in ctx.kind("ConfigMap") if cm["metadata"]["name"].startswith(prefix)]
        if len(found) != 1:
            errors.append(f"configMapGenerator {gen['name']}: {len(found)} ConfigMaps")
            continue
        data = found[0].get("data") or {}
        suffix = found[0]["metadata"]["name"][len(prefix):]
        hashes = {configmap_hash(gen["name"], data, w) for w in (False, True)}
        if suffix not in hashes:
            errors.append(f"ConfigMap/{found[0]['metadata']['name']}: suffix {suffix} is not the "
                          f"hash of its data ({' or '.join(sorted(hashes))}): a changed table "
                          f"config would not roll the pods")
    return errors


@check("secret", "the Secret volume: embedserve-tls-tokens, not optional, 0440, read-only, its "
       "keys exactly the files the EMBEDSERVE_* security variables name")
def check_secret(ctx):
    errors = []
    env = ctx.env()
    secret_vols = {n: v["secret"] for n, v in ctx.volumes().items() if "secret" in v}
    if len(secret_vols) != 1:
        return [f"want one Secret volume, found {sorted(secret_vols)}"]
    vol_name, source = next(iter(secret_vols.items()))
    if source.get("secretName") != SECRET_NAME:
        errors.append(f"secretName {source.get('secretName')!r}, want {SECRET_NAME}")
    if source.get("optional") is not False:
        errors.append(f"optional {source.get('optional')!r}: want false, stated (a missing "
                      f"Secret must stop the pod, not start a server without TLS)")
    if source.get("defaultMode") != 0o440:
        errors.append(f"defaultMode {source.get('defaultMode')!r}: want 288 (0440)")
    mounts = [m for m in ctx.mounts() if m.get("name") == vol_name]
    if len(mounts) != 1:
        return errors + [f"the Secret volume {vol_name} is mounted {len(mounts)} times"]
    mount = mounts[0]
    if mount.get("readOnly") is not True or mount.get("subPath"):
        errors.append(f"mount {vol_name}: want readOnly: true and no subPath")
    items = source.get("items")
    if not items:
        return errors + ["no items: list the keys, so that a missing one stops the pod"]
    files = {f"{mount['mountPath'].rstrip('/')}/{i['path']}": i["key"] for i in items}
    named = {var: env[var] for var in SECRET_ENV if env.get(var)}
    for var, path in named.items():
        if path not in files:
            errors.append(f"{var}={path}: no item of the Secret volume is mounted there "
                          f"({sorted(files)})")
    for path, key in files.items():
        if path not in named.values():
            errors.append(f"Secret key {key!r} ({path}) is named by none of {SECRET_ENV}")
    return errors


@check("secure-by-default", "TLS and tokens on, EMBEDSERVE_INSECURE unset, no secret material")
def check_secure(ctx):
    errors = []
    env = ctx.env()
    if env.get("EMBEDSERVE_INSECURE", "0") not in ("0", "false", "no", ""):
        errors.append(f"EMBEDSERVE_INSECURE={env['EMBEDSERVE_INSECURE']}: the manifests are "
                      f"secure by default")
    if any(a.startswith("--insecure") for a in ctx.container.get("args") or []):
        errors.append("--insecure in args")
    for var in ("EMBEDSERVE_TLS_CERT", "EMBEDSERVE_TLS_KEY", "EMBEDSERVE_TOKENS_FILE"):
        if not env.get(var):
            errors.append(f"{var}: not set (the server refuses 0.0.0.0 without TLS and tokens)")
    for o in ctx.objects:
        if "PRIVATE KEY" in json.dumps(o) or "BEGIN CERTIFICATE" in json.dumps(o):
            errors.append(f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}: PEM material")
    return errors


@check("security-context", "non-root uid/gid 10001, no privilege escalation, no capabilities, "
       "read-only root, RuntimeDefault seccomp, no service account token")
def check_security_context(ctx):
    errors = []
    ps = ctx.podspec
    pod_sc = ps.get("securityContext") or {}
    c_sc = ctx.container.get("securityContext") or {}

    def effective(key):
        return c_sc.get(key, pod_sc.get(key))
    for key, want in (("runAsNonRoot", True), ("runAsUser", USER_ID), ("runAsGroup", USER_ID)):
        if effective(key) != want:
            errors.append(f"{key}: {effective(key)!r}, want {want!r}")
    if pod_sc.get("fsGroup") != USER_ID:
        errors.append(f"fsGroup: {pod_sc.get('fsGroup')!r}, want {USER_ID} (the volume and the "
                      f"Secret's 0440 files must be readable to the server)")
    seccomp = (c_sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        errors.append(f"seccompProfile {seccomp!r}, want RuntimeDefault")
    for key, want in (("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)):
        if c_sc.get(key) is not want:
            errors.append(f"container {key}: {c_sc.get(key)!r}, want {want}")
    if c_sc.get("privileged"):
        errors.append("privileged")
    caps = c_sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
        errors.append(f"capabilities {caps}: want drop [ALL] and nothing added")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if ps.get(key):
            errors.append(f"{key}: true")
    if ps.get("automountServiceAccountToken") is not False:
        errors.append("automountServiceAccountToken: want false (the server never calls the API)")
    return errors


@check("data-volume", "a volumeClaimTemplate mounted read-write at EMBEDSERVE_DATA_DIR = "
       "/var/lib/embedserve/data")
def check_data_volume(ctx):
    errors = []
    env = ctx.env()
    if env.get("EMBEDSERVE_DATA_DIR") != DATA_DIR:
        errors.append(f"EMBEDSERVE_DATA_DIR={env.get('EMBEDSERVE_DATA_DIR')!r}, want {DATA_DIR}")
    templates = {t["metadata"]["name"]: t for t in
                 ctx.sts["spec"].get("volumeClaimTemplates") or []}
    mounts = [m for m in ctx.mounts() if m["mountPath"].rstrip("/") == DATA_DIR]
    if len(mounts) != 1:
        return errors + [f"{len(mounts)} mounts at {DATA_DIR}"]
    name = mounts[0]["name"]
    if name not in templates:
        return errors + [f"the mount at {DATA_DIR} is {name!r}, not a volumeClaimTemplate "
                         f"({sorted(templates)}): the tables would not outlive the pod"]
    if name in ctx.volumes():
        errors.append(f"pod volume {name!r} shadows the volumeClaimTemplate")
    if mounts[0].get("readOnly") or mounts[0].get("subPath"):
        errors.append(f"mount {name}: want read-write, no subPath")
    spec = templates[name]["spec"]
    if "ReadWriteOnce" not in (spec.get("accessModes") or []):
        errors.append("volumeClaimTemplate: want accessModes [ReadWriteOnce]")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None or quantity(storage) <= 0:
        errors.append("volumeClaimTemplate: no storage request")
    return errors


@check("volume-mounts", "every mount names a volume, paths are unique, writable /tmp on the "
       "read-only root")
def check_mounts(ctx):
    errors = []
    known = set(ctx.volumes()) | {t["metadata"]["name"] for t in
                                  ctx.sts["spec"].get("volumeClaimTemplates") or []}
    paths = set()
    for m in ctx.mounts():
        if m["name"] not in known:
            errors.append(f"mount {m['name']} at {m['mountPath']}: no such volume")
        if m["mountPath"] in paths:
            errors.append(f"two mounts at {m['mountPath']}")
        paths.add(m["mountPath"])
    c_sc = ctx.container.get("securityContext") or {}
    if c_sc.get("readOnlyRootFilesystem") and "/tmp" not in paths:
        errors.append("read-only root file system and no volume at /tmp")
    return errors


@check("scrape-annotations", "prometheus.io annotations point at the metrics port and /metrics")
def check_scrape(ctx):
    errors = []
    ann = (ctx.pod.get("metadata") or {}).get("annotations") or {}
    _, by_name = ctx.ports()
    metrics_port = (by_name.get("metrics") or {}).get("containerPort")
    env = ctx.env()
    if ann.get("prometheus.io/scrape") != "true":
        errors.append(f"prometheus.io/scrape {ann.get('prometheus.io/scrape')!r}, want \"true\"")
    if ann.get("prometheus.io/port") != str(metrics_port):
        errors.append(f"prometheus.io/port {ann.get('prometheus.io/port')!r}, the metrics "
                      f"container port is {metrics_port}")
    if ann.get("prometheus.io/path") != "/metrics":
        errors.append(f"prometheus.io/path {ann.get('prometheus.io/path')!r}, want /metrics")
    if "EMBEDSERVE_METRICS_ADDRESS" not in env or \
            address_port(env["EMBEDSERVE_METRICS_ADDRESS"])[1] != metrics_port:
        errors.append("EMBEDSERVE_METRICS_ADDRESS does not serve the annotated port")
    return errors


def memory_budget(ctx):
    """(lines, errors): the resource arithmetic, from the ConfigMap's tables and the args."""
    errors, lines = [], []
    args = {}
    for a in ctx.container.get("args") or []:
        key, sep, value = a.partition("=")
        if a.startswith("--") and sep:
            args[key[2:]] = value
    resources = ctx.container.get("resources") or {}
    req, lim = resources.get("requests") or {}, resources.get("limits") or {}
    for what in ("cpu", "memory"):
        if what not in req or what not in lim:
            errors.append(f"resources: want requests and limits for {what}")
        elif quantity(req[what]) > quantity(lim[what]):
            errors.append(f"resources: {what} request {req[what]} > limit {lim[what]}")
    if errors:
        return lines, errors
    limit = quantity(lim["memory"])
    if quantity(req["memory"]) != limit:
        errors.append(f"memory request {req['memory']} != limit {lim['memory']}: a stateful "
                      f"server should not be the first evicted under memory pressure")
    flags = {}
    for flag in ("max_table_bytes", "transport_memory_bytes", "max_message_bytes",
                 "max_response_bytes", "push_threads"):
        if flag not in args or not args[flag].isdigit():
            errors.append(f"--{flag}=N missing from args (its default follows the node, "
                          f"not the pod's limits)")
        else:
            flags[flag] = int(args[flag])
    if errors:
        return lines, errors
    tables = parse_txtpb(_tables_text(ctx)).get("tables", [])
    rows = 0
    for t in tables:
        b = table_bytes(t)
        rows += b
        lines.append(f"  table {t['name'][0]}: {t['num_embeddings'][0]} x "
                     f"{t['embedding_dim'][0]} -> {b:,} B")
    lines.append(f"  tables: {rows:,} B = {rows / MiB:.1f} MiB; --max_table_bytes "
                 f"{flags['max_table_bytes'] / MiB:.0f} MiB")
    if rows > flags["max_table_bytes"]:
        errors.append(f"the tables need {rows:,} B, over --max_table_bytes="
                      f"{flags['max_table_bytes']}: the server would refuse to create them")
    memtable, count, source = memtable_settings()
    memtables = len(tables) * count * memtable
    caches = (len(tables) + 1) * 8 * MiB
    calls = flags["max_message_bytes"] + 2 * flags["max_response_bytes"]
    overhead = 128 * MiB
    total = flags["max_table_bytes"] + memtables + caches + flags["transport_memory_bytes"] + \
        calls + overhead
    lines.append(f"  budget MiB: tables {flags['max_table_bytes'] / MiB:.0f} + memtables "
                 f"{len(tables)} x {count} x {memtable / MiB:.0f} {source} + block caches "
                 f"{caches / MiB:.0f} + transport {flags['transport_memory_bytes'] / MiB:.0f} + "
                 f"calls {calls / MiB:.0f} + process {overhead / MiB:.0f} = {total / MiB:.0f}; "
                 f"limit {limit / MiB:.0f}")
    if total > limit:
        errors.append(f"memory budget {total / MiB:.0f} MiB exceeds the limit "
                      f"{limit / MiB:.0f} MiB: the pod could be OOM-killed")
    if flags["push_threads"] > math.ceil(quantity(lim["cpu"])):
        errors.append(f"--push_threads={flags['push_threads']} > the CPU limit {lim['cpu']}")
    return lines, errors


@check("resources", "requests/limits and the flags that bound memory fit the tables of the "
       "ConfigMap")
def check_resources(ctx):
    return memory_budget(ctx)[1]


@check("termination", "terminationGracePeriodSeconds covers preStop + the 5 s drain + margin")
def check_termination(ctx):
    grace = ctx.podspec.get("terminationGracePeriodSeconds", 30)
    pre_stop = 0
    command = (((ctx.container.get("lifecycle") or {}).get("preStop") or {}).get("exec")
               or {}).get("command") or []
    if command[:1] == ["sleep"] and len(command) == 2 and command[1].isdigit():
        pre_stop = int(command[1])
    elif command:
        return [f"preStop {command}: only `sleep N` is understood by this check"]
    need = pre_stop + SERVER_DRAIN_S + 10
    if grace < need:
        return [f"terminationGracePeriodSeconds {grace} < preStop {pre_stop} + drain "
                f"{SERVER_DRAIN_S} + 10 s to close RocksDB"]
    return []


@check("image", "image embedserve:latest with imagePullPolicy IfNotPresent")
def check_image(ctx):
    c = ctx.container
    errors = []
    if c.get("image") != IMAGE:
        errors.append(f"image {c.get('image')!r}, want {IMAGE}")
    if c.get("imagePullPolicy") != "IfNotPresent":
        errors.append(f"imagePullPolicy {c.get('imagePullPolicy')!r}: want IfNotPresent (the "
                      f"image is loaded into the nodes, :latest would otherwise mean Always)")
    return errors


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


# ---------------------------------------------------------------------------
# Mutations: each breaks one rule; the named check must catch it.

def _sts(objs):
    return next(o for o in objs if o["kind"] == "StatefulSet")


def _c(objs):
    return _sts(objs)["spec"]["template"]["spec"]["containers"][0]


def _svc(objs, name):
    return next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == name)


def _pdb(objs):
    return next(o for o in objs if o["kind"] == "PodDisruptionBudget")


def _cm(objs):
    return next(o for o in objs if o["kind"] == "ConfigMap")


def _env(objs, name):
    return next(e for e in _c(objs)["env"] if e["name"] == name)


def _vol(objs, name):
    return next(v for v in _sts(objs)["spec"]["template"]["spec"]["volumes"] if v["name"] == name)


def _port(objs, name):
    return next(p for p in _c(objs)["ports"] if p["name"] == name)


def _svc_port(objs, svc, name):
    return next(p for p in _svc(objs, svc)["spec"]["ports"] if p["name"] == name)


def _mount(objs, name):
    return next(m for m in _c(objs)["volumeMounts"] if m["name"] == name)


def _set_arg(objs, flag, value):
    args = [a for a in _c(objs)["args"] if not a.startswith(f"--{flag}=")]
    if value is not None:
        args.append(f"--{flag}={value}")
    _c(objs)["args"] = args


def _grow_tables(objs):
    cm = _cm(objs)
    cm["data"]["tables.txtpb"] = cm["data"]["tables.txtpb"].replace(
        "num_embeddings: 100000", "num_embeddings: 10000000")


MUTATIONS = [
    # Strict model loading.
    ("unknown field in the container (imagePullPolicyy)", "strict-models",
     lambda o: _c(o).update(imagePullPolicyy="Always")),
    ("unknown field in the pod spec (securityContex)", "strict-models",
     lambda o: _sts(o)["spec"]["template"]["spec"].update(securityContex={})),
    ("unknown field in a Service port (targetport)", "strict-models",
     lambda o: _svc_port(o, "embedserve", "grpc").update(targetport="grpc")),
    ("unknown field in the grpc probe (host), a field the shim validates", "strict-models",
     lambda o: _c(o)["readinessProbe"]["grpc"].update(host="localhost")),
    ("wrong type: containerPort \"50051\" (string)", "strict-models",
     lambda o: _port(o, "grpc").update(containerPort="50051")),
    ("wrong type: replicas \"1\" (string)", "strict-models",
     lambda o: _sts(o)["spec"].update(replicas="1")),
    ("wrong type: runAsUser true (boolean, not integer)", "strict-models",
     lambda o: _sts(o)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=True)),
    ("wrong type: ports a mapping, not a list", "strict-models",
     lambda o: _c(o).update(ports={"grpc": 50051})),
    ("wrong type: labels a list, not a mapping", "strict-models",
     lambda o: _svc(o, "embedserve")["metadata"].update(labels=["app=embedserve"])),
    ("wrong type: maxUnavailable 1.5 (neither integer nor string)", "strict-models",
     lambda o: _pdb(o)["spec"].update(maxUnavailable=1.5)),
    ("wrong type: grpc probe port \"health\" (GRPCAction's port is an integer)", "strict-models",
     lambda o: _c(o)["livenessProbe"]["grpc"].update(port="health")),
    ("missing required field: the container's name", "strict-models",
     lambda o: _c(o).pop("name")),
    ("missing required field: a Service port's port", "strict-models",
     lambda o: _svc_port(o, "embedserve-headless", "metrics").pop("port")),
    ("missing required field: a volumeMount's mountPath", "strict-models",
     lambda o: _mount(o, "tmp").pop("mountPath")),
    ("missing required field: the grpc probe's port", "strict-models",
     lambda o: _c(o)["startupProbe"]["grpc"].pop("port")),
    ("missing required field: the StatefulSet's selector", "strict-models",
     lambda o: _sts(o)["spec"].pop("selector")),
    ("unknown kind: PodDisruptionBudget policy/v1beta1", "strict-models",
     lambda o: _pdb(o).update(apiVersion="policy/v1beta1")),
    # Cross-object checks.
    ("the pod template's labels no longer match the StatefulSet's selector",
     "statefulset-selector",
     lambda o: _sts(o)["spec"]["template"]["metadata"]["labels"].update(
         {"app.kubernetes.io/instance": "other"})),
    ("the client Service's selector has a typo", "service-selectors",
     lambda o: _svc(o, "embedserve")["spec"]["selector"].update(
         {"app.kubernetes.io/name": "embedserv"})),
    ("the client Service's targetPort names no container port (grpcc)", "service-ports",
     lambda o: _svc_port(o, "embedserve", "grpc").update(targetPort="grpcc")),
    ("the headless Service's metrics targetPort is a number no container declares",
     "service-ports",
     lambda o: _svc_port(o, "embedserve-headless", "metrics").update(targetPort=9465)),
    ("the metrics container port renamed (the Service's targetPort dangles)", "service-ports",
     lambda o: _port(o, "metrics").update(name="prom")),
    ("the headless Service gets a cluster IP", "headless-service",
     lambda o: _svc(o, "embedserve-headless")["spec"].pop("clusterIP")),
    ("serviceName names a Service that is not there", "headless-service",
     lambda o: _sts(o)["spec"].update(serviceName="embedserve-peers")),
    ("the client Service exposes 50052 instead of 50051", "client-service",
     lambda o: _svc_port(o, "embedserve", "grpc").update(port=50052)),
    ("the PodDisruptionBudget's selector matches no pod", "pdb",
     lambda o: _pdb(o)["spec"]["selector"]["matchLabels"].update(
         {"app.kubernetes.io/name": "other"})),
    ("minAvailable 1 with one replica (drains hang)", "pdb",
     lambda o: (_pdb(o)["spec"].pop("maxUnavailable"), _pdb(o)["spec"].update(minAvailable=1))),
    ("the readiness probe on the TLS port 50051", "probes",
     lambda o: _c(o)["readinessProbe"]["grpc"].update(port=50051)),
    ("the liveness probe on an undeclared port 50099", "probes",
     lambda o: _c(o)["livenessProbe"]["grpc"].update(port=50099)),
    ("the liveness probe with two handlers (grpc and tcpSocket)", "probes",
     lambda o: _c(o)["livenessProbe"].update(tcpSocket={"port": 50052})),
    ("the startup probe allows only 15 s", "probes",
     lambda o: _c(o)["startupProbe"].update(failureThreshold=3)),
    ("the readiness probe asks for an unknown health service", "probes",
     lambda o: _c(o)["readinessProbe"]["grpc"].update(service="embedserve.v1.Nope")),
    ("the readiness probe removed", "probes",
     lambda o: _c(o).pop("readinessProbe")),
    ("the health port bound to loopback", "listen-addresses",
     lambda o: _env(o, "EMBEDSERVE_HEALTH_ADDRESS").update(value="127.0.0.1:50052")),
    ("the server listens on 50061, the grpc port says 50051", "listen-addresses",
     lambda o: _env(o, "EMBEDSERVE_ADDRESS").update(value="0.0.0.0:50061")),
    ("the ConfigMap's key renamed (tables.txt)", "tables-configmap",
     lambda o: _cm(o).update(data={"tables.txt": _cm(o)["data"]["tables.txtpb"]})),
    ("EMBEDSERVE_CONFIG points at a file the mount does not have", "tables-configmap",
     lambda o: _env(o, "EMBEDSERVE_CONFIG").update(value="/etc/embedserve/demo.txtpb")),
    ("the pod mounts a ConfigMap that is not in the manifests", "tables-configmap",
     lambda o: _vol(o, "tables")["configMap"].update(name="embedserve-tables")),
    ("the tables edited in the ConfigMap only", "tables-content",
     lambda o: _cm(o)["data"].update({"tables.txtpb": _cm(o)["data"]["tables.txtpb"].replace(
         "embedding_dim: 64", "embedding_dim: 32")})),
    ("the ConfigMap's data changed, its name (hash) not", "configmap-hash",
     lambda o: _cm(o)["data"].update({"tables.txtpb": _cm(o)["data"]["tables.txtpb"] + "\n"})),
    ("the Secret volume optional", "secret",
     lambda o: _vol(o, "secrets")["secret"].update(optional=True)),
    ("the Secret volume's optional left unstated", "secret",
     lambda o: _vol(o, "secrets")["secret"].pop("optional")),
    ("the Secret's files world-readable (0644)", "secret",
     lambda o: _vol(o, "secrets")["secret"].update(defaultMode=0o644)),
    ("the Secret's key for the tokens renamed (token), the env var unchanged", "secret",
     lambda o: next(i for i in _vol(o, "secrets")["secret"]["items"]
                    if i["key"] == "tokens").update(key="token", path="token")),
    ("EMBEDSERVE_TOKENS_FILE outside the Secret's mount", "secret",
     lambda o: _env(o, "EMBEDSERVE_TOKENS_FILE").update(value="/etc/embedserve/tokens")),
    ("the Secret mounted read-write", "secret",
     lambda o: _mount(o, "secrets").pop("readOnly")),
    ("EMBEDSERVE_INSECURE=1 added", "secure-by-default",
     lambda o: _c(o)["env"].append({"name": "EMBEDSERVE_INSECURE", "value": "1"})),
    ("EMBEDSERVE_TLS_CERT removed", "secure-by-default",
     lambda o: _c(o).update(env=[e for e in _c(o)["env"] if e["name"] != "EMBEDSERVE_TLS_CERT"])),
    ("a Secret with a key committed with the manifests", "objects",
     lambda o: o.append({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": SECRET_NAME},
                         "stringData": {"tls.key": "-----BEGIN PRIVATE KEY-----"}})),
    ("a label value with a space", "objects",
     lambda o: _svc(o, "embedserve")["metadata"]["labels"].update(
         {"app.kubernetes.io/component": "grpc server"})),
    ("runAsUser 0 (root)", "security-context",
     lambda o: _sts(o)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0) or
     _c(o)["securityContext"].pop("runAsUser")),
    ("runAsNonRoot false in the container", "security-context",
     lambda o: _c(o)["securityContext"].update(runAsNonRoot=False)),
    ("allowPrivilegeEscalation true", "security-context",
     lambda o: _c(o)["securityContext"].update(allowPrivilegeEscalation=True)),
    ("capabilities not dropped", "security-context",
     lambda o: _c(o)["securityContext"].pop("capabilities")),
    ("NET_ADMIN added", "security-context",
     lambda o: _c(o)["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
    ("writable root file system", "security-context",
     lambda o: _c(o)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("seccomp Unconfined", "security-context",
     lambda o: _c(o)["securityContext"].update(seccompProfile={"type": "Unconfined"})),
    ("fsGroup removed", "security-context",
     lambda o: _sts(o)["spec"]["template"]["spec"]["securityContext"].pop("fsGroup")),
    ("the service account token mounted", "security-context",
     lambda o: _sts(o)["spec"]["template"]["spec"].pop("automountServiceAccountToken")),
    ("the volumeClaimTemplate renamed (state), the mount still says data", "data-volume",
     lambda o: _sts(o)["spec"]["volumeClaimTemplates"][0]["metadata"].update(name="state")),
    ("the data volume mounted at /data", "data-volume",
     lambda o: _mount(o, "data").update(mountPath="/data")),
    ("EMBEDSERVE_DATA_DIR elsewhere", "data-volume",
     lambda o: _env(o, "EMBEDSERVE_DATA_DIR").update(value="/var/lib/embedserve")),
    ("a mount of a volume that does not exist", "volume-mounts",
     lambda o: _c(o)["volumeMounts"].append({"name": "cache", "mountPath": "/cache"})),
    ("no /tmp on the read-only root", "volume-mounts",
     lambda o: _c(o).update(volumeMounts=[m for m in _c(o)["volumeMounts"]
                                          if m["mountPath"] != "/tmp"])),
    ("the scrape annotation names the gRPC port", "scrape-annotations",
     lambda o: _sts(o)["spec"]["template"]["metadata"]["annotations"].update(
         {"prometheus.io/port": "50051"})),
    ("scraping off", "scrape-annotations",
     lambda o: _sts(o)["spec"]["template"]["metadata"]["annotations"].update(
         {"prometheus.io/scrape": "false"})),
    ("memory limit 512Mi", "resources",
     lambda o: _c(o)["resources"].update(requests={"cpu": "1", "memory": "512Mi"},
                                         limits={"cpu": "2", "memory": "512Mi"})),
    ("memory request below the limit", "resources",
     lambda o: _c(o)["resources"]["requests"].update(memory="1Gi")),
    ("--max_table_bytes removed (80% of the node's memory)", "resources",
     lambda o: _set_arg(o, "max_table_bytes", None)),
    ("the user table grown to 10,000,000 rows (2.4 GiB)", "resources", _grow_tables),
    ("--transport_memory_bytes at its 1 GiB default", "resources",
     lambda o: _set_arg(o, "transport_memory_bytes", 1 << 30)),
    ("no CPU limit", "resources",
     lambda o: _c(o)["resources"]["limits"].pop("cpu")),
    ("terminationGracePeriodSeconds 5, shorter than the drain", "termination",
     lambda o: _sts(o)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=5)),
    ("imagePullPolicy Always (no registry to pull from)", "image",
     lambda o: _c(o).update(imagePullPolicy="Always")),
]

# Positive controls: these change the objects in ways the API accepts; every
# check must still pass (IntOrString fields take either form).
CONTROLS = [
    ("a Service targetPort as a number (50051) instead of a name",
     lambda o: _svc_port(o, "embedserve", "grpc").update(targetPort=50051)),
    ("maxUnavailable as a percentage (\"50%\")",
     lambda o: _pdb(o)["spec"].update(maxUnavailable="50%")),
]


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


# ---------------------------------------------------------------------------

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
