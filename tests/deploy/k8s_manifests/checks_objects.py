"""Cross-object checks on the objects and how they connect: names and
labels, selectors, Service ports, the headless and client Services, the
PodDisruptionBudget, probes and listen addresses. Each returns a list of
errors (empty: passed); registration order is report order.
"""

import math
import re

from .context import HEALTH_SERVICES, CheckError, address_port, check, selector_matches


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
