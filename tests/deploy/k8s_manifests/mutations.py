"""Mutations: each breaks one rule in memory; the named check must catch it.
Controls: changes the API accepts, which every check must pass.

"""

from .context import SECRET_NAME


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
