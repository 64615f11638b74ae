"""What the cross-object checks share: the image's contract, Ctx (the
rendered objects with the pieces the checks look at), parsers for quantities
and the tables' text format, the table sizing rules, and the check registry.
"""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

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
