"""Cross-object checks on what the pod runs with: the tables ConfigMap and
its hash, the Secret, TLS, the security context, the data volume, mounts,
scrape annotations, resources sized from the tables, termination, the image.
Registered after checks_objects' (registration order is report order).
"""

import json
import math

from .context import (DATA_DIR, IMAGE, SECRET_ENV, SECRET_NAME, SERVER_DRAIN_S, USER_ID, MiB,
                      CheckError, address_port, check, memtable_settings, parse_txtpb, quantity,
                      table_bytes)
from .render import configmap_hash, read_kustomization


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
