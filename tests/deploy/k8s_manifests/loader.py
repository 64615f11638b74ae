"""Strict loading of rendered objects into Debian's python3-kubernetes models.

Unknown fields, wrong types and missing required fields fail (ApiClient.
deserialize would silently drop unknown fields, so the dicts are walked
against each model's openapi_types/attribute_map here, and models are
constructed with client-side validation on).
"""

import difflib
import re

from kubernetes import client as k8s


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
