#!/usr/bin/env python3
"""Validates Minhu's Kubernetes manifests (k8s/) against the Kubernetes schemas and the code.

Run through k8s/run-validate.sh (it makes the venv with kubernetes-validate and PyYAML):

    bash k8s/run-validate.sh            # from anywhere; exit 0 when every check passes

What it does, for k8s/base and every k8s/overlays/* directory:

1. Renders the kustomization with the small subset of kustomize the manifests use
   (`resources`, `namespace`, `patches` — strategic-merge and JSON 6902, with or without
   a `target` —, `configMapGenerator`/`secretGenerator` with `disableNameSuffixHash`, and
   `images`). Anything else in a kustomization is an error, not silently ignored, and so is
   a patch whose target does not exist.
2. Validates every rendered object against the Kubernetes JSON schemas shipped with
   kubernetes-validate (strict: unknown fields are errors). CloudNativePG `Cluster` objects
   are not in those schemas; they are checked against a hand-written schema of the fields
   Minhu uses (CNPG_CLUSTER_SCHEMA below).
3. Checks the manifests against the code (services/*, libs/*, proto/): binary and image
   names, ports, probes, environment variable names, required variables, database
   secrets, and the NetworkPolicy matrix against the service DAG.

Every problem is listed; the exit status is 1 if there is any.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import functools
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

K8S = Path(__file__).resolve().parent
ROOT = K8S.parent
KUBE_VERSION = "1.30"

# The service DAG of shared/DESIGN.md ("Dependencies between services"): caller -> callee.
DESIGN_CALLS = {
    ("dispatch", "roster"),
    ("appraisal", "dispatch"),
    ("personnel", "roster"),
    ("consultation", "roster"),
}
# Which services may use the Redis deadline index (DESIGN.md "Deadlines"; dispatch owns the
# sign and check-in deadlines). Who actually does is read from the code (a *REDIS_URL).
# personnel and consultation keep their deadlines in their own namespaces of the same index.
REDIS_USERS = {"dispatch", "personnel", "consultation"}
# The label that marks the namespace the portals' gateway / ingress controller runs in.
GATEWAY_NAMESPACE_LABELS = {"minhu.io/gateway": "true"}
IMAGE_REPOSITORY = "ghcr.io/minhu/minhu-{svc}"
BINARY_DIR = "/usr/local/bin"
# Postgres connections kept aside for the superuser and the CNPG instance manager.
POSTGRES_RESERVED_CONNECTIONS = 10
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100

CLUSTER_SCOPED_KINDS = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}

QUANTITY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# CloudNativePG's Cluster (postgresql.cnpg.io/v1), restricted to the fields Minhu sets. A
# field not listed here is an error: add it (with CNPG's type) when a manifest needs it.
CNPG_CLUSTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "postgresql.cnpg.io/v1"},
        "kind": {"const": "Cluster"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 50},
                "namespace": {"type": "string"},
                "labels": STRING_MAP,
                "annotations": STRING_MAP,
            },
        },
        "spec": {
            "type": "object",
            "required": ["instances", "storage"],
            "additionalProperties": False,
            "properties": {
                "instances": {"type": "integer", "minimum": 1},
                "imageName": {"type": "string", "minLength": 1},
                "bootstrap": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "initdb": {
                            "type": "object",
                            "required": ["database", "owner"],
                            "additionalProperties": False,
                            "properties": {"database": {"type": "string"}, "owner": {"type": "string"}},
                        }
                    },
                },
                "storage": {
                    "type": "object",
                    "required": ["size"],
                    "additionalProperties": False,
                    "properties": {
                        "size": {"type": "string", "pattern": QUANTITY},
                        "storageClass": {"type": "string"},
                    },
                },
                "postgresql": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"parameters": STRING_MAP},
                },
            },
        },
    },
}
CRD_SCHEMAS = {("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER_SCHEMA}
# Keys of the Secret CloudNativePG writes for a cluster's application user (`<cluster>-app`).
CNPG_APP_SECRET_KEYS = {"username", "password", "host", "port", "dbname", "uri", "jdbc-uri", "pgpass",
                        "fqdn-uri", "fqdn-jdbc-uri"}
# The ports of a CNPG instance pod: Postgres, the instance manager's status, metrics.
CNPG_POD_PORTS = [(5432, "TCP", "postgresql"), (8000, "TCP", "status"), (9187, "TCP", "metrics")]


class RenderError(Exception):
    pass


# kubernetes-validate reads its (large) schema files on every call; read each once.
if hasattr(kubernetes_validate, "utils") and hasattr(kubernetes_validate.utils, "schema_contents"):
    kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
        kubernetes_validate.utils.schema_contents)


# --------------------------------------------------------------------------------------
# Rendering: the subset of kustomize the manifests use.
# --------------------------------------------------------------------------------------

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "patches", "configMapGenerator",
                        "secretGenerator", "generatorOptions", "images"}
GENERATOR_FIELDS = {"name", "namespace", "behavior", "literals", "envs", "env", "files", "options"}
GENERATOR_OPTIONS = {"disableNameSuffixHash", "labels", "annotations", "immutable"}
TARGET_FIELDS = {"group", "version", "kind", "name", "namespace", "labelSelector"}


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_docs(path: Path) -> list[Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        raise RenderError(f"{rel(path)}: {e}") from e


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def version_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[-1]


def obj_id(o: dict) -> str:
    return f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"


def render(directory: Path, stack: tuple[Path, ...] = ()) -> list[dict]:
    directory = directory.resolve()
    if directory in stack:
        raise RenderError(f"{rel(directory)}: kustomization cycle")
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise RenderError(f"{rel(directory)}: no kustomization.yaml")
    docs = load_docs(kfile)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RenderError(f"{rel(kfile)}: expected one mapping")
    k = docs[0]
    unknown = set(k) - KUSTOMIZATION_FIELDS
    if unknown:
        raise RenderError(f"{rel(kfile)}: fields {sorted(unknown)} are not implemented by k8s/validate.py's "
                          "renderer: use the supported subset or extend the renderer")

    objects: list[dict] = []
    for entry in k.get("resources", []) or []:
        path = directory / entry
        if path.is_dir():
            objects += render(path, stack + (directory,))
        elif path.is_file():
            for doc in load_docs(path):
                if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion") \
                        or not (doc.get("metadata") or {}).get("name"):
                    raise RenderError(f"{rel(path)}: every document needs apiVersion, kind and metadata.name")
                doc["__source__"] = rel(path)
                objects.append(doc)
        else:
            raise RenderError(f"{rel(kfile)}: resource {entry!r} does not exist")

    objects += generate(k, directory, kfile)
    check_unique(objects, kfile)

    for i, patch in enumerate(k.get("patches", []) or []):
        apply_patch_entry(objects, patch, directory, f"{rel(kfile)} patches[{i}]")

    for image in k.get("images", []) or []:
        apply_image(objects, image, kfile)

    namespace = k.get("namespace")
    if namespace:
        for o in objects:
            if o["kind"] not in CLUSTER_SCOPED_KINDS:
                o.setdefault("metadata", {})["namespace"] = namespace
    check_unique(objects, kfile)
    return objects


def check_unique(objects: list[dict], kfile: Path) -> None:
    seen: dict[tuple, str] = {}
    for o in objects:
        key = (group_of(o["apiVersion"]), o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        if key in seen:
            raise RenderError(f"{rel(kfile)}: {obj_id(o)} is defined twice ({seen[key]}, {o.get('__source__')})")
        seen[key] = o.get("__source__", "?")


def parse_env_file(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise RenderError(f"{rel(path)}:{n}: expected KEY=VALUE")
        key, value = line.split("=", 1)
        pairs.append((key.strip(), value))
    return pairs


def generate(k: dict, directory: Path, kfile: Path) -> list[dict]:
    out = []
    global_options = k.get("generatorOptions") or {}
    if set(global_options) - GENERATOR_OPTIONS:
        raise RenderError(f"{rel(kfile)}: generatorOptions {sorted(set(global_options) - GENERATOR_OPTIONS)} "
                          "not implemented")
    for kind, field_name in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for gen in k.get(field_name, []) or []:
            where = f"{rel(kfile)} {field_name} {gen.get('name')!r}"
            if set(gen) - GENERATOR_FIELDS:
                raise RenderError(f"{where}: fields {sorted(set(gen) - GENERATOR_FIELDS)} not implemented")
            if gen.get("behavior", "create") != "create":
                raise RenderError(f"{where}: behavior {gen['behavior']!r} not implemented (patch the base "
                                  "object instead)")
            options = {**global_options, **(gen.get("options") or {})}
            if set(options) - GENERATOR_OPTIONS:
                raise RenderError(f"{where}: options {sorted(set(options) - GENERATOR_OPTIONS)} not implemented")
            if not options.get("disableNameSuffixHash"):
                raise RenderError(f"{where}: name-hash suffixes are not implemented by the renderer; set "
                                  "options.disableNameSuffixHash: true (the base refers to generated objects "
                                  "by their fixed names)")
            data: dict[str, str] = {}

            def put(key: str, value: str) -> None:
                if not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
                    raise RenderError(f"{where}: invalid key {key!r}")
                if key in data:
                    raise RenderError(f"{where}: key {key!r} given twice")
                data[key] = value

            for literal in gen.get("literals", []) or []:
                if "=" not in literal:
                    raise RenderError(f"{where}: literal {literal!r} is not KEY=VALUE")
                key, value = literal.split("=", 1)
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                put(key, value)
            envs = list(gen.get("envs", []) or []) + ([gen["env"]] if gen.get("env") else [])
            for env in envs:
                path = directory / env
                if not path.is_file():
                    raise RenderError(f"{where}: env file {env!r} does not exist")
                for key, value in parse_env_file(path):
                    put(key, value)
            for entry in gen.get("files", []) or []:
                key, _, file_name = entry.rpartition("=") if "=" in entry else (None, None, entry)
                path = directory / file_name
                if not path.is_file():
                    raise RenderError(f"{where}: file {file_name!r} does not exist")
                put(key or path.name, path.read_text(encoding="utf-8"))
            meta: dict[str, Any] = {"name": gen["name"]}
            if gen.get("namespace"):
                meta["namespace"] = gen["namespace"]
            if options.get("labels"):
                meta["labels"] = dict(options["labels"])
            if options.get("annotations"):
                meta["annotations"] = dict(options["annotations"])
            obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta}
            if kind == "ConfigMap":
                obj["data"] = data
            else:
                obj["type"] = "Opaque"
                obj["data"] = {key: base64.b64encode(v.encode()).decode() for key, v in data.items()}
            if options.get("immutable"):
                obj["immutable"] = True
            obj["__source__"] = f"{rel(kfile)} ({field_name})"
            obj["__generated__"] = True
            out.append(obj)
    return out


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        m = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", term)
        if m:
            key, op, value = m.groups()
            if (labels.get(key) == value) != (op != "!="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def select(objects: list[dict], target: dict, where: str) -> list[dict]:
    if set(target) - TARGET_FIELDS:
        raise RenderError(f"{where}: target fields {sorted(set(target) - TARGET_FIELDS)} not implemented")
    chosen = []
    for o in objects:
        api = o["apiVersion"]
        if "group" in target and group_of(api) != target["group"]:
            continue
        if "version" in target and version_of(api) != target["version"]:
            continue
        if "kind" in target and o["kind"] != target["kind"]:
            continue
        if "name" in target and not re.fullmatch(target["name"], o["metadata"]["name"]):
            continue
        if "namespace" in target and o["metadata"].get("namespace") != target["namespace"]:
            continue
        if "labelSelector" in target and not label_selector_matches(target["labelSelector"],
                                                                     o["metadata"].get("labels") or {}):
            continue
        chosen.append(o)
    return chosen


def apply_patch_entry(objects: list[dict], entry: dict, directory: Path, where: str) -> None:
    if set(entry) - {"path", "patch", "target"}:
        raise RenderError(f"{where}: fields {sorted(set(entry) - {'path', 'patch', 'target'})} not implemented")
    if ("path" in entry) == ("patch" in entry):
        raise RenderError(f"{where}: give exactly one of path and patch")
    if "path" in entry:
        path = directory / entry["path"]
        if not path.is_file():
            raise RenderError(f"{where}: {entry['path']!r} does not exist")
        docs = load_docs(path)
        where = f"{where} ({rel(path)})"
    else:
        docs = [d for d in yaml.safe_load_all(entry["patch"]) if d is not None]
    if len(docs) != 1:
        raise RenderError(f"{where}: a patch holds exactly one document (kustomize reads one)")
    patch = docs[0]
    target = entry.get("target")
    if isinstance(patch, list):
        if not target:
            raise RenderError(f"{where}: a JSON 6902 patch needs a target")
        chosen = select(objects, target, where)
        if not chosen:
            raise RenderError(f"{where}: target {target} matches no object")
        for o in chosen:
            json6902(o, patch, f"{where} on {obj_id(o)}")
        return
    if not isinstance(patch, dict):
        raise RenderError(f"{where}: neither a strategic-merge nor a JSON 6902 patch")
    if target:
        chosen = select(objects, target, where)
        if not chosen:
            raise RenderError(f"{where}: target {target} matches no object")
    else:
        meta = patch.get("metadata") or {}
        if not patch.get("kind") or not patch.get("apiVersion") or not meta.get("name"):
            raise RenderError(f"{where}: a patch without target needs apiVersion, kind and metadata.name")
        chosen = [o for o in objects
                  if o["kind"] == patch["kind"] and group_of(o["apiVersion"]) == group_of(patch["apiVersion"])
                  and o["metadata"]["name"] == meta["name"]
                  and (not meta.get("namespace") or o["metadata"].get("namespace") == meta["namespace"])]
        if len(chosen) != 1:
            raise RenderError(f"{where}: {patch['kind']}/{meta['name']} matches {len(chosen)} objects, "
                              "expected exactly one")
    for o in chosen:
        body = copy.deepcopy(patch)
        body.pop("apiVersion", None)
        body.pop("kind", None)
        pmeta = body.get("metadata")
        if isinstance(pmeta, dict):
            pmeta.pop("name", None)
            pmeta.pop("namespace", None)
        builtin = "." not in group_of(o["apiVersion"]) or group_of(o["apiVersion"]).endswith(".k8s.io")
        merged = strategic_merge(o, body, (), o["kind"], builtin, where)
        o.clear()
        o.update(merged)


def merge_key(kind: str, path: tuple[str, ...]) -> str | None:
    """The patchMergeKey Kubernetes declares for the list at `path` (None: replace the list)."""
    last = path[-1] if path else ""
    parent = path[-2] if len(path) > 1 else ""
    if last in ("containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets"):
        return "name"
    if last == "volumeMounts":
        return "mountPath"
    if last == "ports" and parent in ("containers", "initContainers"):
        return "containerPort"
    if last == "ports" and kind == "Service" and path == ("spec", "ports"):
        return "port"
    return None


def strategic_merge(base: Any, patch: Any, path: tuple[str, ...], kind: str, builtin: bool, where: str) -> Any:
    if isinstance(patch, dict):
        for directive in ("$patch", "$setElementOrder", "$retainKeys", "$deleteFromPrimitiveList"):
            if any(str(key).startswith(directive) for key in patch):
                raise RenderError(f"{where}: {directive} directives are not implemented")
        if not isinstance(base, dict):
            base = {}
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = strategic_merge(base.get(key), value, path + (key,), kind, builtin, where)
        return out
    if isinstance(patch, list):
        mkey = merge_key(kind, path) if builtin else None
        if mkey is None or not isinstance(base, list):
            return copy.deepcopy(patch)
        out = [copy.deepcopy(item) for item in base]
        for item in patch:
            if not isinstance(item, dict) or mkey not in item:
                raise RenderError(f"{where}: items of {'.'.join(path)} need {mkey!r} to merge")
            for i, existing in enumerate(out):
                if isinstance(existing, dict) and existing.get(mkey) == item[mkey]:
                    out[i] = strategic_merge(existing, item, path, kind, builtin, where)
                    break
            else:
                out.append(strategic_merge({}, item, path, kind, builtin, where))
        return out
    return copy.deepcopy(patch)


def json_pointer(pointer: str, where: str) -> list[str]:
    if not pointer.startswith("/"):
        raise RenderError(f"{where}: path {pointer!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def json6902(obj: dict, ops: list, where: str) -> None:
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
            raise RenderError(f"{where}: only add, replace and remove operations are implemented: {op}")
        parts = json_pointer(op.get("path", ""), where)
        node: Any = obj
        for part in parts[:-1]:
            try:
                node = node[int(part)] if isinstance(node, list) else node[part]
            except (KeyError, IndexError, ValueError) as e:
                raise RenderError(f"{where}: path {op['path']!r} does not exist") from e
        last = parts[-1]
        kind = op["op"]
        try:
            if isinstance(node, list):
                index = len(node) if last == "-" else int(last)
                if kind == "add":
                    node.insert(index, copy.deepcopy(op["value"]))
                elif kind == "replace":
                    node[index] = copy.deepcopy(op["value"])
                else:
                    del node[index]
            elif isinstance(node, dict):
                if kind != "add" and last not in node:
                    raise RenderError(f"{where}: path {op['path']!r} does not exist")
                if kind == "remove":
                    del node[last]
                else:
                    node[last] = copy.deepcopy(op["value"])
            else:
                raise RenderError(f"{where}: path {op['path']!r} does not lead into an object or list")
        except (IndexError, ValueError, KeyError) as e:
            raise RenderError(f"{where}: {kind} {op['path']!r}: {e}") from e


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        image, tag = image[:colon], image[colon + 1:]
    return image, tag, digest


def pod_spec(o: dict) -> dict | None:
    if o["kind"] in POD_TEMPLATE_KINDS:
        return (((o.get("spec") or {}).get("template") or {}).get("spec")) or {}
    if o["kind"] == "CronJob":
        return o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def all_containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def apply_image(objects: list[dict], image: dict, kfile: Path) -> None:
    if set(image) - {"name", "newName", "newTag", "digest"}:
        raise RenderError(f"{rel(kfile)}: images fields {sorted(set(image) - {'name', 'newName', 'newTag', 'digest'})} "
                          "not implemented")
    hits = 0
    for o in objects:
        spec = pod_spec(o)
        if spec is None:
            continue
        for c in all_containers(spec):
            name, tag, digest = split_image(c.get("image", ""))
            if name != image["name"]:
                continue
            hits += 1
            name = image.get("newName", name)
            if "digest" in image:
                c["image"] = f"{name}@{image['digest']}"
            else:
                tag = image.get("newTag", tag)
                c["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest and "newTag" not in image else "")
    if not hits:
        raise RenderError(f"{rel(kfile)}: images entry {image['name']!r} matches no container")


# --------------------------------------------------------------------------------------
# What the code says.
# --------------------------------------------------------------------------------------

# An environment variable the code reads: a MINHU_/OTEL_ string literal, or any upper-case
# literal handed to the config helpers or std::env (REDIS_URL, ...).
ENV_LITERAL = re.compile(r'"((?:MINHU|OTEL)_[A-Z0-9_]+|RUST_LOG)"')
ENV_CALL = re.compile(r'\b(?:optional|required|parsed|listen_addr|var|var_os)\(\s*"([A-Z][A-Z0-9_]*)"')


@dataclass
class Crate:
    svc: str
    package: str
    binaries: set[str]
    sources: list[Path]            # the crate's and its minhu-* dependencies' src/**/*.rs
    reads: set[str]                # env names the code reads (string literals)
    required: set[str]             # always required
    required_unless_dev: set[str]
    jwt_keys: set[str]             # one of these is required unless dev (empty: no such rule)
    listen_var: str | None
    default_port: int | None
    service_urls: dict[str, str]   # env var -> what it points at: MINHU_<X>_URL -> x, REDIS_URL -> redis
    shutdown_grace_default: int | None


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def workspace_paths() -> dict[str, Path]:
    root = tomllib.loads(read(ROOT / "Cargo.toml"))
    deps = root.get("workspace", {}).get("dependencies", {})
    return {name: ROOT / spec["path"] for name, spec in deps.items() if isinstance(spec, dict) and "path" in spec}


def crate_closure(crate_dir: Path, paths: dict[str, Path]) -> list[Path]:
    """crate_dir and the minhu path dependencies it builds with (not dev-dependencies)."""
    seen: list[Path] = []
    todo = [crate_dir]
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.append(d)
        manifest = tomllib.loads(read(d / "Cargo.toml"))
        for name, spec in (manifest.get("dependencies") or {}).items():
            if isinstance(spec, dict) and spec.get("path"):
                todo.append((d / spec["path"]).resolve())
            elif name in paths:
                todo.append(paths[name].resolve())
    return seen


RUST_TOKENS = re.compile(r"""r(#*)"(?:.|\n)*?"\1|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])'|//[^\n]*|/\*(?:.|\n)*?\*/""")


def strip_comments(text: str) -> str:
    """Rust source without its comments (string and char literals kept, `//` in them too)."""
    return RUST_TOKENS.sub(lambda m: "" if m.group(0).startswith("/") else m.group(0), text)


def analyse_crate(svc: str, paths: dict[str, Path], problems: list[str]) -> Crate | None:
    crate_dir = ROOT / "services" / svc
    manifest_path = crate_dir / "Cargo.toml"
    if not manifest_path.is_file():
        problems.append(f"services/{svc}/Cargo.toml does not exist, but k8s/base/{svc} deploys it")
        return None
    manifest = tomllib.loads(read(manifest_path))
    package = manifest.get("package", {}).get("name", "")
    binaries = {b.get("name") for b in manifest.get("bin", []) or [] if b.get("name")}
    if (crate_dir / "src" / "main.rs").is_file() and manifest.get("package", {}).get("autobins", True):
        binaries.add(package)
    sources = sorted(p for d in crate_closure(crate_dir.resolve(), paths) for p in (d / "src").rglob("*.rs"))
    reads: set[str] = set()
    required: set[str] = set()
    unless_dev: set[str] = set()
    jwt_keys: set[str] = set()
    grace = None
    for path in sources:
        text = strip_comments(read(path))
        reads |= set(ENV_LITERAL.findall(text)) | set(ENV_CALL.findall(text))
        if "try_from_default_env" in text or "from_default_env" in text:
            reads.add("RUST_LOG")  # tracing-subscriber's EnvFilter reads RUST_LOG
        for m in re.finditer(r'\brequired\(\s*"([A-Z0-9_]+)"\s*\)', text):
            fn_start = text.rfind("fn ", 0, m.start())
            before = text[fn_start:m.start()] if fn_start >= 0 else ""
            (unless_dev if 'parsed("MINHU_AUTH_DEV"' in before else required).add(m.group(1))
        for m in re.finditer(r'ConfigError::new\(\s*"([A-Z0-9_]+)"\s*,\s*"is required unless MINHU_AUTH_DEV', text):
            unless_dev.add(m.group(1))
        if "no token verification key is configured" in text:
            jwt_keys |= set(re.findall(r'optional\("(MINHU_JWT_[A-Z0-9_]+_(?:SECRET|KEY))"\)', text))
        g = re.search(r"shutdown_grace:\s*Duration::from_secs\((\d+)\)", text)
        if g:
            grace = int(g.group(1))
    lib = strip_comments(read(crate_dir / "src" / "lib.rs")) if (crate_dir / "src" / "lib.rs").is_file() else ""
    listen = re.search(r'listen_addr\(\s*"(MINHU_[A-Z0-9_]+_LISTEN_ADDR)"\s*,\s*"([^"]+)"\s*\)', lib)
    default_port = int(listen.group(2).rsplit(":", 1)[1]) if listen else None
    own = "\n".join(strip_comments(read(p)) for p in sorted((crate_dir / "src").rglob("*.rs")))
    urls = {}
    for var in set(re.findall(r'"(MINHU_([A-Z]+)_URL)"', own)):
        name, target = var[0], var[1].lower()
        if target != svc:
            urls[name] = target
    for var in set(ENV_LITERAL.findall(own)) | set(ENV_CALL.findall(own)):
        if re.search(r"(^|_)REDIS_URL$", var):
            urls[var] = "redis"
    return Crate(svc, package, binaries, sources, reads, required, unless_dev, jwt_keys,
                 listen.group(1) if listen else None, default_port, urls, grace)


def proto_services() -> set[str]:
    found = set()
    for path in (ROOT / "proto").rglob("*.proto"):
        text = read(path)
        package = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
        for m in re.finditer(r"^\s*service\s+(\w+)\s*\{", text, re.M):
            found.add(f"{package.group(1)}.{m.group(1)}" if package else m.group(1))
    return found


def deployable_services() -> list[str]:
    """services/* whose lib reads a MINHU_<SVC>_LISTEN_ADDR: the ones that run as a server."""
    out = []
    for lib in sorted((ROOT / "services").glob("*/src/lib.rs")):
        if re.search(r'listen_addr\(\s*"MINHU_[A-Z0-9_]+_LISTEN_ADDR"', strip_comments(read(lib))):
            out.append(lib.parent.parent.name)
    return out


# --------------------------------------------------------------------------------------
# Checks on a rendered set of objects.
# --------------------------------------------------------------------------------------

@dataclass
class Workload:
    name: str                      # the object's name
    kind: str
    identity: str                  # app.kubernetes.io/name (or cluster name for CNPG pods)
    namespace: str
    labels: dict[str, str]
    ns_labels: dict[str, str]
    ports: list[tuple[int, str, str]] = field(default_factory=list)  # (port, protocol, name)
    external: bool = False


class Checker:
    def __init__(self, label: str, objects: list[dict], crates: dict[str, Crate], protos: set[str],
                 deployable: list[str]):
        self.label = label
        self.objects = objects
        self.crates = crates
        self.protos = protos
        self.deployable = deployable
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.external_secrets: dict[str, set[str]] = {}

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        for o in self.objects:
            if o["kind"] == kind and o["metadata"]["name"] == name and \
                    (namespace is None or o["metadata"].get("namespace") == namespace):
                return o
        return None

    def of_kind(self, *kinds: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] in kinds]

    # ---- schemas ----

    def check_schemas(self) -> tuple[int, int]:
        k8s = crd = 0
        for o in self.objects:
            clean = {key: value for key, value in o.items() if not key.startswith("__")}
            schema = CRD_SCHEMAS.get((o["apiVersion"], o["kind"]))
            if schema is not None:
                crd += 1
                for e in sorted(jsonschema.Draft202012Validator(schema).iter_errors(clean), key=str):
                    where = ".".join(str(p) for p in e.absolute_path)
                    self.problem(f"{obj_id(o)} [{o.get('__source__')}]: {where}: {e.message} "
                                 "(hand-written CNPG schema in validate.py)")
                continue
            try:
                kubernetes_validate.validate(clean, KUBE_VERSION, strict=True)
                k8s += 1
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                self.problem(f"{obj_id(o)} [{o.get('__source__')}]: does not validate against Kubernetes "
                             f"{e.version}: {where}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                self.problem(f"{obj_id(o)} [{o.get('__source__')}]: {e.message}; add a schema to CRD_SCHEMAS "
                             "in validate.py")
        return k8s, crd

    # ---- environment of a container ----

    def container_env(self, o: dict, c: dict) -> dict[str, dict]:
        """name -> {value: str|None (None: unknown), provided: bool, source: str}."""
        where = f"{obj_id(o)} container {c.get('name')}"
        ns = o["metadata"].get("namespace")
        env: dict[str, dict] = {}
        for ref in c.get("envFrom") or []:
            prefix = ref.get("prefix", "")
            if "configMapRef" in ref:
                name = ref["configMapRef"]["name"]
                cm = self.find("ConfigMap", name, ns)
                if cm is None:
                    if not ref["configMapRef"].get("optional"):
                        self.problem(f"{where}: envFrom ConfigMap {name!r} is not in the manifests")
                    continue
                for key, value in (cm.get("data") or {}).items():
                    env[prefix + key] = {"value": str(value), "provided": True, "source": f"ConfigMap {name}"}
            elif "secretRef" in ref:
                name = ref["secretRef"]["name"]
                secret = self.find("Secret", name, ns)
                if secret is None:
                    self.problem(f"{where}: envFrom Secret {name!r} is created outside the manifests, so the "
                                 "variable names it brings cannot be checked: use env[].valueFrom.secretKeyRef")
                    continue
                for key, value in secret_data(secret).items():
                    env[prefix + key] = {"value": value, "provided": True, "source": f"Secret {name}"}
        names_seen = set()
        for item in c.get("env") or []:
            name = item["name"]
            if name in names_seen:
                self.problem(f"{where}: env {name} is set twice")
            names_seen.add(name)
            if "value" in item or "valueFrom" not in item:
                env[name] = {"value": str(item.get("value", "")), "provided": True, "source": "literal"}
                continue
            vf = item["valueFrom"]
            if "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = self.find("ConfigMap", ref["name"], ns)
                value = None if cm is None else (cm.get("data") or {}).get(ref["key"])
                if value is None and not ref.get("optional"):
                    self.problem(f"{where}: env {name} reads ConfigMap {ref['name']}/{ref['key']}, which the "
                                 "manifests do not define")
                env[name] = {"value": value, "provided": value is not None, "source": f"ConfigMap {ref['name']}"}
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                optional = bool(ref.get("optional"))
                secret = self.find("Secret", ref["name"], ns)
                if secret is not None:
                    value = secret_data(secret).get(ref["key"])
                    if value is None and not optional:
                        self.problem(f"{where}: env {name} reads Secret {ref['name']}/{ref['key']}, which has no "
                                     "such key")
                    env[name] = {"value": value, "provided": value is not None,
                                 "source": f"Secret {ref['name']}"}
                    continue
                cluster = ref["name"][:-4] if ref["name"].endswith("-app") else None
                if cluster and self.find("Cluster", cluster, ns) is not None:
                    if ref["key"] not in CNPG_APP_SECRET_KEYS:
                        self.problem(f"{where}: env {name} reads key {ref['key']!r} of CNPG Secret {ref['name']}, "
                                     f"which has only {sorted(CNPG_APP_SECRET_KEYS)}")
                else:
                    self.external_secrets.setdefault(ref["name"], set()).add(
                        ref["key"] + (" (optional)" if optional else ""))
                env[name] = {"value": None, "provided": not optional, "source": f"Secret {ref['name']}"}
            else:
                env[name] = {"value": None, "provided": True, "source": "fieldRef"}
        return env

    # ---- per service ----

    def check_service(self, crate: Crate) -> None:
        svc = crate.svc
        cap = svc.capitalize()
        dep = self.find("Deployment", svc)
        if dep is None:
            self.problem(f"service {svc}: no Deployment named {svc!r}")
            return
        spec = pod_spec(dep)
        containers = spec.get("containers") or []
        server = next((c for c in containers if c.get("name") == svc), containers[0] if containers else None)
        if server is None:
            self.problem(f"Deployment/{svc}: no containers")
            return
        where = f"Deployment/{svc} container {server.get('name')}"
        binary = f"minhu-{svc}"
        pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}

        # Binary and image.
        if crate.package != binary:
            self.problem(f"services/{svc}/Cargo.toml: package is {crate.package!r}, the image and Dockerfile "
                         f"expect {binary!r}")
        if binary not in crate.binaries:
            self.problem(f"services/{svc}: no binary {binary!r} (binaries: {sorted(crate.binaries) or 'none'})")
        name, tag, digest = split_image(server.get("image", ""))
        if name != IMAGE_REPOSITORY.format(svc=svc):
            self.problem(f"{where}: image {server.get('image')!r} is not {IMAGE_REPOSITORY.format(svc=svc)}:<tag>")
        command = server.get("command") or []
        if not command or command[0] != f"{BINARY_DIR}/{binary}":
            self.problem(f"{where}: command should start with {BINARY_DIR}/{binary} (the binary k8s/Dockerfile "
                         f"installs), got {command}")

        # Ports.
        grpc_ports = [p for p in server.get("ports") or [] if p.get("name") == "grpc"]
        if len(grpc_ports) != 1:
            self.problem(f"{where}: expected one container port named grpc, got {server.get('ports')}")
            return
        port = grpc_ports[0]["containerPort"]
        if crate.default_port is None:
            self.problem(f"services/{svc}/src/lib.rs: no listen_addr(\"MINHU_..._LISTEN_ADDR\", \"...\") default "
                         "found")
        elif port != crate.default_port:
            self.problem(f"{where}: containerPort {port} differs from the code's default port "
                         f"{crate.default_port} ({crate.listen_var})")

        # Probes.
        health_name = f"minhu.{svc}.v1.{cap}Service"
        if health_name not in self.protos:
            self.problem(f"proto/: no service {health_name} (the readiness probe's health service)")
        lib = ROOT / "services" / svc / "src" / "lib.rs"
        if lib.is_file() and f"{cap}ServiceServer" not in read(lib):
            self.problem(f"services/{svc}/src/lib.rs does not serve {cap}ServiceServer, so health never reports "
                         f"{health_name}")
        readiness = (server.get("readinessProbe") or {}).get("grpc")
        if not readiness:
            self.problem(f"{where}: readinessProbe must be a grpc probe")
        else:
            if readiness.get("port") != port:
                self.problem(f"{where}: readinessProbe grpc port {readiness.get('port')} is not the grpc port {port}")
            if readiness.get("service") != health_name:
                self.problem(f"{where}: readinessProbe grpc service {readiness.get('service')!r} should be "
                             f"{health_name!r}")
        for probe_name in ("livenessProbe", "startupProbe"):
            probe = server.get(probe_name)
            if probe is None:
                if probe_name == "livenessProbe":
                    self.problem(f"{where}: no livenessProbe")
                continue
            grpc = probe.get("grpc")
            if not grpc:
                self.problem(f"{where}: {probe_name} must be a grpc probe")
                continue
            if grpc.get("port") != port:
                self.problem(f"{where}: {probe_name} grpc port {grpc.get('port')} is not the grpc port {port}")
            if grpc.get("service", ""):
                self.problem(f"{where}: {probe_name} should ask for the overall health (service \"\"), not "
                             f"{grpc.get('service')!r}")

        # Service.
        service = self.find("Service", svc)
        if service is None:
            self.problem(f"service {svc}: no Service named {svc!r}")
        else:
            sspec = service.get("spec") or {}
            if sspec.get("type", "ClusterIP") != "ClusterIP":
                self.problem(f"Service/{svc}: type should be ClusterIP")
            sports = [p for p in sspec.get("ports") or [] if p.get("name") == "grpc"]
            if len(sports) != 1:
                self.problem(f"Service/{svc}: expected one port named grpc")
            else:
                sp = sports[0]
                if sp.get("port") != port:
                    self.problem(f"Service/{svc}: port {sp.get('port')} differs from the container's {port} (the "
                                 f"URLs other services use say {svc}:{port})")
                target = sp.get("targetPort", sp.get("port"))
                if target not in (port, "grpc"):
                    self.problem(f"Service/{svc}: targetPort {target!r} does not reach container port {port}")
                if sp.get("appProtocol") != "grpc":
                    self.problem(f"Service/{svc}: appProtocol should be grpc")
            selector = sspec.get("selector") or {}
            if not selector or not matches(selector, pod_labels):
                self.problem(f"Service/{svc}: selector {selector} does not select Deployment/{svc}'s pods")
            for other in self.of_kind(*POD_TEMPLATE_KINDS):
                if other is dep or other["metadata"].get("namespace") != dep["metadata"].get("namespace"):
                    continue
                labels = other["spec"]["template"]["metadata"].get("labels") or {}
                if selector and matches(selector, labels):
                    self.problem(f"Service/{svc}: selector also selects {obj_id(other)}'s pods")

        # Environment.
        env = self.check_env(dep, server, crate, port)

        # Termination.
        grace_value = (env.get("MINHU_SHUTDOWN_GRACE_SECS") or {}).get("value")
        grace = int(grace_value) if grace_value and grace_value.isdigit() else crate.shutdown_grace_default
        pre_stop = pre_stop_seconds(server)
        termination = spec.get("terminationGracePeriodSeconds", 30)
        if grace is not None and termination <= grace + pre_stop:
            self.problem(f"Deployment/{svc}: terminationGracePeriodSeconds {termination} must exceed "
                         f"MINHU_SHUTDOWN_GRACE_SECS {grace} + preStop {pre_stop}s, or the drain is cut short")

        # Autoscaling and disruption budget.
        hpas = [h for h in self.of_kind("HorizontalPodAutoscaler")
                if (h["spec"].get("scaleTargetRef") or {}).get("kind") == "Deployment"
                and h["spec"]["scaleTargetRef"].get("name") == svc]
        min_replicas = dep["spec"].get("replicas", 1)
        max_replicas = min_replicas
        if len(hpas) != 1:
            self.problem(f"Deployment/{svc}: expected one HorizontalPodAutoscaler, found {len(hpas)}")
        else:
            hspec = hpas[0]["spec"]
            if hpas[0]["apiVersion"] != "autoscaling/v2":
                self.problem(f"HorizontalPodAutoscaler/{hpas[0]['metadata']['name']}: use autoscaling/v2")
            min_replicas = hspec.get("minReplicas", 1)
            max_replicas = hspec.get("maxReplicas", 0)
            if max_replicas < min_replicas:
                self.problem(f"HorizontalPodAutoscaler for {svc}: maxReplicas {max_replicas} < minReplicas "
                             f"{min_replicas}")
            cpu = [m for m in hspec.get("metrics") or []
                   if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"]
            if not cpu:
                self.problem(f"HorizontalPodAutoscaler for {svc}: no CPU metric")
            if not ((server.get("resources") or {}).get("requests") or {}).get("cpu"):
                self.problem(f"{where}: no CPU request, so the HPA's CPU utilization is undefined")
            if "replicas" in dep["spec"]:
                self.problem(f"Deployment/{svc}: sets replicas while an HPA owns the count (each apply resets it)")
        pdbs = [p for p in self.of_kind("PodDisruptionBudget")
                if matches((p["spec"].get("selector") or {}).get("matchLabels") or {}, pod_labels)]
        if len(pdbs) != 1:
            self.problem(f"Deployment/{svc}: expected one PodDisruptionBudget selecting its pods, found {len(pdbs)}")
        else:
            min_available = pdbs[0]["spec"].get("minAvailable")
            if isinstance(min_available, int) and min_available >= min_replicas:
                self.problem(f"PodDisruptionBudget/{pdbs[0]['metadata']['name']}: minAvailable {min_available} with "
                             f"{min_replicas} replica(s) blocks every node drain")

        # Database.
        db_var = f"MINHU_{svc.upper()}_DATABASE_URL"
        db_env = next((e for e in server.get("env") or [] if e.get("name") == db_var), None)
        cluster_name = f"{svc}-db"
        cluster = self.find("Cluster", cluster_name)
        if cluster is None:
            self.problem(f"service {svc}: no CloudNativePG Cluster {cluster_name!r}")
        else:
            initdb = ((cluster["spec"].get("bootstrap") or {}).get("initdb")) or {}
            if not initdb.get("database") or not initdb.get("owner"):
                self.problem(f"Cluster/{cluster_name}: bootstrap.initdb needs database and owner")
            ref = ((db_env or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name") != f"{cluster_name}-app" or ref.get("key") != "uri":
                self.problem(f"{where}: {db_var} should come from Secret {cluster_name}-app key uri (written by "
                             f"CloudNativePG), got {db_env}")
            pool_value = (env.get(f"MINHU_{svc.upper()}_DATABASE_MAX_CONNECTIONS") or {}).get("value")
            pool = int(pool_value) if pool_value and pool_value.isdigit() else 10
            clients = max_replicas * pool
            for job in self.of_kind("Job"):
                if (job["spec"]["template"]["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == svc:
                    clients += pool
            params = ((cluster["spec"].get("postgresql") or {}).get("parameters")) or {}
            limit = int(params.get("max_connections", POSTGRES_DEFAULT_MAX_CONNECTIONS))
            if clients > limit - POSTGRES_RESERVED_CONNECTIONS:
                self.problem(f"Cluster/{cluster_name}: max_connections {limit} leaves too little for {svc}: up to "
                             f"{clients} connections (HPA maxReplicas {max_replicas} x pool {pool}) plus "
                             f"{POSTGRES_RESERVED_CONNECTIONS} reserved")

    def check_env(self, o: dict, c: dict, crate: Crate, port: int | None) -> dict[str, dict]:
        where = f"{obj_id(o)} container {c.get('name')}"
        env = self.container_env(o, c)
        for name, info in sorted(env.items()):
            if name not in crate.reads:
                self.problem(f"{where}: sets {name} (from {info['source']}), which {crate.package} never reads "
                             "(no such string literal in its sources or its minhu libraries)")
        dev_value = (env.get("MINHU_AUTH_DEV") or {}).get("value")
        if dev_value is not None and dev_value not in ("true", "false"):
            self.problem(f"{where}: MINHU_AUTH_DEV={dev_value!r} is not a Rust bool (true|false)")
        dev = dev_value == "true"

        def provided(name: str) -> bool:
            info = env.get(name)
            return bool(info and info["provided"] and info["value"] != "")

        for name in sorted(crate.required):
            if not provided(name):
                self.problem(f"{where}: {crate.package} requires {name}, which is not provided")
        if not dev:
            for name in sorted(crate.required_unless_dev):
                if not provided(name):
                    self.problem(f"{where}: {crate.package} requires {name} unless MINHU_AUTH_DEV=true, and it "
                                 "is neither provided nor in development mode")
            if crate.jwt_keys and not any(name in env and env[name]["value"] != "" for name in crate.jwt_keys):
                self.problem(f"{where}: no token verification key variable ({', '.join(sorted(crate.jwt_keys))}) "
                             "and not in development mode")

        for name, info in env.items():
            value = info["value"]
            if value is None:
                continue
            if name.endswith("_LISTEN_ADDR"):
                m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[0-9.]+):(\d+)", value)
                if not m:
                    self.problem(f"{where}: {name}={value!r} is not a socket address")
                elif port is not None and int(m.group(2)) != port:
                    self.problem(f"{where}: {name} listens on {m.group(2)} but the container port is {port}")
            elif name in crate.service_urls or name == "OTEL_EXPORTER_OTLP_ENDPOINT":
                m = re.fullmatch(r"(?:https?|redis|rediss)://(?:[^@/]*@)?([a-z0-9-]+)(?:\.[a-z0-9.-]+)?:(\d+)(?:/\d*)?",
                                 value)
                if not m:
                    self.problem(f"{where}: {name}={value!r} is not <scheme>://<service>:<port>")
                    continue
                host, url_port = m.group(1), int(m.group(2))
                target = self.find("Service", host)
                if target is None:
                    self.problem(f"{where}: {name} points at {host!r}, which is no Service in the manifests")
                elif url_port not in [p.get("port") for p in target["spec"].get("ports") or []]:
                    self.problem(f"{where}: {name} uses port {url_port}, which Service/{host} does not expose")
                if name in crate.service_urls and host != crate.service_urls[name]:
                    self.problem(f"{where}: {name} should point at the {crate.service_urls[name]} Service, not {host}")
            elif re.search(r"_(SECS|BYTES|MINUTES|CONNECTIONS|LIMIT|LIMIT_PER_CONNECTION)$", name):
                if not value.isdigit():
                    self.problem(f"{where}: {name}={value!r} is not a whole number")
            elif name.endswith("_METERS"):
                try:
                    float(value)
                except ValueError:
                    self.problem(f"{where}: {name}={value!r} is not a number")
            elif name == "MINHU_LOG_FORMAT" and value.lower() not in ("pretty", "text", "json"):
                self.problem(f"{where}: MINHU_LOG_FORMAT={value!r} is not pretty|text|json")
            elif name.endswith("_REPORTER_KEY") and value:
                try:
                    if len(base64.b64decode(value.strip(), validate=True)) != 32:
                        self.problem(f"{where}: {name} must decode to exactly 32 bytes")
                except binascii.Error:
                    self.problem(f"{where}: {name} is not base64")
            elif name == "MINHU_JWT_HS256_SECRET" and value and len(value) < 32:
                self.problem(f"{where}: MINHU_JWT_HS256_SECRET must be at least 32 bytes")

        # The service's callees (MINHU_<X>_URL in its own code) must be set: the defaults point
        # at 127.0.0.1, which is the pod itself.
        for var, target in sorted(crate.service_urls.items()):
            if target == "redis":
                if crate.svc not in REDIS_USERS:
                    self.problem(f"services/{crate.svc} reads {var}, but DESIGN.md gives the Redis index to "
                                 f"{', '.join(sorted(REDIS_USERS))} only (update REDIS_USERS in validate.py if "
                                 "that changed)")
            elif (crate.svc, target) not in DESIGN_CALLS:
                self.problem(f"services/{crate.svc} reads {var}: a call {crate.svc} -> {target} that is not in "
                             "DESIGN.md's DAG")
                continue
            if o["kind"] == "Deployment" and (target in self.crates or target == "redis") and not provided(var):
                self.problem(f"{where}: {crate.package} uses {target} but {var} is not set (its default is "
                             "127.0.0.1, the pod itself)")
        return env

    # ---- every workload ----

    def check_workloads(self) -> None:
        for o in self.of_kind(*POD_TEMPLATE_KINDS, "CronJob"):
            spec = pod_spec(o)
            pod_sc = spec.get("securityContext") or {}
            if spec.get("automountServiceAccountToken") is not False:
                self.problem(f"{obj_id(o)}: set automountServiceAccountToken: false (nothing here calls the API)")
            if (pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                self.problem(f"{obj_id(o)}: pod seccompProfile should be RuntimeDefault")
            for c in all_containers(spec):
                where = f"{obj_id(o)} container {c.get('name')}"
                sc = c.get("securityContext") or {}
                if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
                    self.problem(f"{where}: runAsNonRoot is not set")
                if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                    self.problem(f"{where}: runs as uid 0")
                if sc.get("readOnlyRootFilesystem") is not True:
                    self.problem(f"{where}: readOnlyRootFilesystem is not true")
                if sc.get("allowPrivilegeEscalation") is not False:
                    self.problem(f"{where}: allowPrivilegeEscalation is not false")
                if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                    self.problem(f"{where}: capabilities do not drop ALL")
                resources = c.get("resources") or {}
                for section in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        if not (resources.get(section) or {}).get(resource):
                            self.problem(f"{where}: no {resource} {section[:-1]}")
                _, tag, digest = split_image(c.get("image", ""))
                if not digest and (not tag or tag == "latest"):
                    self.problem(f"{where}: image {c.get('image')!r} needs a fixed tag")
            # Other containers that run a Minhu binary (the dev seed Job): its image, and the
            # same env checks as the Deployments.
            for c in all_containers(spec):
                command = c.get("command") or []
                binary = Path(command[0]).name if command else ""
                svc = binary[len("minhu-"):] if binary.startswith("minhu-") else None
                if o["kind"] != "Deployment" and svc in self.crates:
                    if split_image(c.get("image", ""))[0] != IMAGE_REPOSITORY.format(svc=svc):
                        self.problem(f"{obj_id(o)} container {c.get('name')}: runs {binary} from image "
                                     f"{c.get('image')!r}, not {IMAGE_REPOSITORY.format(svc=svc)}")
                    self.check_env(o, c, self.crates[svc], None)

    # ---- network policies ----

    def workloads(self) -> list[Workload]:
        out = []
        for o in self.of_kind(*POD_TEMPLATE_KINDS):
            spec = pod_spec(o)
            labels = o["spec"]["template"]["metadata"].get("labels") or {}
            ns = o["metadata"].get("namespace", "default")
            ports = [(p["containerPort"], p.get("protocol", "TCP"), p.get("name", ""))
                     for c in spec.get("containers") or [] for p in c.get("ports") or []]
            out.append(Workload(o["metadata"]["name"], o["kind"], labels.get("app.kubernetes.io/name", ""), ns,
                                labels, namespace_labels(ns, self.objects), ports))
        for cl in self.of_kind("Cluster"):
            ns = cl["metadata"].get("namespace", "default")
            name = cl["metadata"]["name"]
            out.append(Workload(name, "Cluster", name, ns, {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"},
                                namespace_labels(ns, self.objects), list(CNPG_POD_PORTS)))
        out += [
            Workload("gateway", "external", "gateway", "minhu-gateway", {"app": "gateway"},
                     {"kubernetes.io/metadata.name": "minhu-gateway", **GATEWAY_NAMESPACE_LABELS}, external=True),
            Workload("other-namespace", "external", "other-namespace", "elsewhere", {"app": "anything"},
                     {"kubernetes.io/metadata.name": "elsewhere"}, external=True),
            Workload("kube-dns", "external", "kube-dns", "kube-system", {"k8s-app": "kube-dns"},
                     {"kubernetes.io/metadata.name": "kube-system"}, [(53, "UDP", "dns"), (53, "TCP", "dns-tcp")],
                     external=True),
            Workload("cnpg-operator", "external", "cnpg-operator", "cnpg-system",
                     {"app.kubernetes.io/name": "cloudnative-pg"}, {"kubernetes.io/metadata.name": "cnpg-system"},
                     external=True),
            Workload("internet", "external", "internet", "", {}, {}, [(443, "TCP", "https"), (4317, "TCP", "otlp"),
                                                                      (6443, "TCP", "api")], external=True),
        ]
        return out

    def check_network(self) -> None:
        policies = self.of_kind("NetworkPolicy")
        namespaces = {o["metadata"].get("namespace") for o in self.objects if o["kind"] in POD_TEMPLATE_KINDS}
        for ns in namespaces:
            deny = [p for p in policies if p["metadata"].get("namespace") == ns
                    and not (p["spec"].get("podSelector") or {}).get("matchLabels")
                    and not (p["spec"].get("podSelector") or {}).get("matchExpressions")
                    and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
                    and not p["spec"].get("ingress") and not p["spec"].get("egress")]
            if not deny:
                self.problem(f"namespace {ns}: no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, "
                             "no rules)")
        pods = self.workloads()
        # Every port a policy names must be a port of a pod it is about.
        for p in policies:
            selected = [w for w in pods if not w.external and w.namespace == p["metadata"].get("namespace")
                        and selector_matches(p["spec"].get("podSelector") or {}, w.labels)]
            for i, rule in enumerate(p["spec"].get("ingress") or []):
                for port in rule.get("ports") or []:
                    if "port" in port and not any(port_matches(port, w) for w in selected):
                        self.problem(f"NetworkPolicy/{p['metadata']['name']} ingress[{i}]: port {port.get('port')} is "
                                     f"no port of the pods it selects ({', '.join(w.name for w in selected) or 'none'})")
            for i, rule in enumerate(p["spec"].get("egress") or []):
                peers = rule.get("to") or []
                if not peers or any("ipBlock" in peer for peer in peers):
                    continue
                dests = [w for w in pods if any(peer_matches(peer, p["metadata"].get("namespace"), w)
                                                for peer in peers)]
                if not dests:
                    self.problem(f"NetworkPolicy/{p['metadata']['name']} egress[{i}]: `to` matches no pod")
                for port in rule.get("ports") or []:
                    if "port" in port and dests and not any(port_matches(port, w) for w in dests):
                        self.problem(f"NetworkPolicy/{p['metadata']['name']} egress[{i}]: port {port.get('port')} is "
                                     f"no port of {', '.join(w.name for w in dests)}")

        expected = self.expected_paths(pods)
        for src in pods:
            for dst in pods:
                if src is dst or (src.external and dst.external):
                    continue
                for port, proto, _ in dst.ports:
                    allowed = connection_allowed(policies, src, dst, port, proto)
                    key = (src.identity, dst.identity, port, proto)
                    if key in expected and not allowed:
                        self.problem(f"NetworkPolicy blocks {src.name} -> {dst.name}:{port}/{proto}, which is "
                                     f"needed ({expected[key]})")
                    elif allowed and key not in expected and not self.tolerated(src, dst):
                        self.problem(f"NetworkPolicy allows {src.name} -> {dst.name}:{port}/{proto}, which is no "
                                     "path of the design")

    @staticmethod
    def tolerated(src: Workload, dst: Workload) -> bool:
        """Paths the matrix does not judge: a database's and the collector's way out (the
        Kubernetes API, backups, the tracing backend: their addresses are the cluster's)."""
        return dst.identity == "internet" and (src.kind == "Cluster" or src.identity == "otel-collector")

    def expected_paths(self, pods: list[Workload]) -> dict[tuple, str]:
        expected: dict[tuple, str] = {}
        identities = {w.identity for w in pods}
        for svc, crate in self.crates.items():
            dep = self.find("Deployment", svc)
            if dep is None:
                continue
            port = next((p["containerPort"] for c in pod_spec(dep).get("containers") or []
                         for p in c.get("ports") or [] if p.get("name") == "grpc"), None)
            if port is None:
                continue
            expected[("gateway", svc, port, "TCP")] = "the portals call every service through the gateway"
            for caller, callee in DESIGN_CALLS:
                if callee == svc and caller in self.crates:
                    expected[(caller, svc, port, "TCP")] = f"DESIGN.md: {caller} calls {callee}"
            if f"{svc}-db" in identities:
                expected[(svc, f"{svc}-db", 5432, "TCP")] = f"{svc}'s own Postgres"
            if "redis" in identities and "redis" in crate.service_urls.values():
                for w in pods:
                    if w.identity == "redis":
                        for redis_port, proto, _ in w.ports:
                            expected[(svc, "redis", redis_port, proto)] = f"{svc} reads a Redis URL (deadline index)"
            if "otel-collector" in identities:
                expected[(svc, "otel-collector", 4317, "TCP")] = "spans to the collector"
        for w in pods:
            if not w.external:
                expected[(w.identity, "kube-dns", 53, "UDP")] = "DNS"
                expected[(w.identity, "kube-dns", 53, "TCP")] = "DNS"
            if w.kind == "Cluster":
                for port in (5432, 8000):
                    expected[(w.identity, w.identity, port, "TCP")] = "CNPG replication and status"
                    expected[("cnpg-operator", w.identity, port, "TCP")] = "the CNPG operator"
                for port in (443, 6443):
                    expected[(w.identity, "internet", port, "TCP")] = "CNPG instance manager -> Kubernetes API"
        return expected

    def run(self) -> tuple[int, int]:
        counts = self.check_schemas()
        for svc in self.deployable:
            if svc not in self.crates:
                self.problem(f"services/{svc} is a server (it has a MINHU_{svc.upper()}_LISTEN_ADDR) but k8s/base has "
                             f"no {svc}/ directory: add one like k8s/base/roster/")
        for crate in self.crates.values():
            self.check_service(crate)
        self.check_workloads()
        self.check_network()
        if self.label.endswith("prod"):
            for o in self.of_kind("ConfigMap"):
                if "MINHU_AUTH_DEV" in (o.get("data") or {}):
                    self.problem(f"{obj_id(o)}: prod must not set MINHU_AUTH_DEV")
            if any(o["kind"] == "Secret" and o.get("__generated__") for o in self.objects):
                self.problem("prod generates a Secret: production secrets are created outside git")
        return counts


def secret_data(secret: dict) -> dict[str, str]:
    out = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    out.update({key: str(value) for key, value in (secret.get("stringData") or {}).items()})
    return out


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def selector_matches(selector: dict, labels: dict[str, str]) -> bool:
    if not matches(selector.get("matchLabels") or {}, labels):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def namespace_labels(ns: str, objects: list[dict]) -> dict[str, str]:
    for o in objects:
        if o["kind"] == "Namespace" and o["metadata"]["name"] == ns:
            return {**(o["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": ns}
    return {"kubernetes.io/metadata.name": ns}


def peer_matches(peer: dict, policy_ns: str | None, w: Workload) -> bool:
    if "ipBlock" in peer:
        return w.identity == "internet"
    if w.identity == "internet":
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], w.ns_labels):
            return False
    elif w.namespace != policy_ns:
        return False
    if "podSelector" in peer:
        return selector_matches(peer["podSelector"], w.labels)
    return True


def port_matches(spec: dict, w: Workload, port: int | None = None, proto: str | None = None) -> bool:
    want_proto = spec.get("protocol", "TCP")
    for p, pr, name in w.ports:
        if port is not None and (p, pr) != (port, proto):
            continue
        if pr != want_proto:
            continue
        if "port" not in spec:
            return True
        value = spec["port"]
        if isinstance(value, str):
            if value == name:
                return True
        elif value == p or (spec.get("endPort") and value <= p <= spec["endPort"]):
            return True
    return False


def rule_allows(rule: dict, peers_key: str, policy_ns: str | None, peer: Workload, target: Workload,
                port: int, proto: str) -> bool:
    peers = rule.get(peers_key)
    if peers and not any(peer_matches(p, policy_ns, peer) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(port_matches(p, target, port, proto) for p in ports)


def direction_allows(policies: list[dict], subject: Workload, direction: str, peer: Workload, target: Workload,
                     port: int, proto: str) -> bool:
    """Whether `subject`'s policies of this direction let the connection through."""
    if subject.identity == "internet":
        return True
    applicable = []
    for p in policies:
        spec = p["spec"]
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
        if direction not in types or p["metadata"].get("namespace") != subject.namespace:
            continue
        if selector_matches(spec.get("podSelector") or {}, subject.labels):
            applicable.append(p)
    if subject.external and not applicable:
        return True  # a pod outside the manifests: its own namespace's policies are not ours
    if not applicable:
        return True
    key = "ingress" if direction == "Ingress" else "egress"
    peers_key = "from" if direction == "Ingress" else "to"
    return any(rule_allows(rule, peers_key, p["metadata"].get("namespace"), peer, target, port, proto)
               for p in applicable for rule in p["spec"].get(key) or [])


def connection_allowed(policies: list[dict], src: Workload, dst: Workload, port: int, proto: str) -> bool:
    return (direction_allows(policies, src, "Egress", dst, dst, port, proto)
            and direction_allows(policies, dst, "Ingress", src, dst, port, proto))


def pre_stop_seconds(c: dict) -> int:
    pre_stop = (c.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"].get("seconds", 0))
    command = (pre_stop.get("exec") or {}).get("command") or []
    if command and Path(command[0]).name == "sleep" and len(command) > 1 and command[1].isdigit():
        return int(command[1])
    return 0


def check_dockerfile(path: Path, problems: list[str]) -> None:
    if not path.is_file():
        problems.append("k8s/Dockerfile does not exist")
        return
    text = read(path)
    stages = re.split(r"^FROM\s", text, flags=re.M)[1:]
    if len(stages) < 2:
        problems.append("k8s/Dockerfile: expected a build stage and a runtime stage")
        return
    for i, stage in enumerate(stages):
        if not re.search(r"^ARG\s+SVC\b", stage, re.M):
            problems.append(f"k8s/Dockerfile: stage {i + 1} does not declare ARG SVC (arguments are per stage)")
    if not re.search(r'cargo build[^\n]*--release[^\n]*-p\s+"?minhu-\$\{SVC\}"?', text.replace("\\\n", " ")):
        problems.append("k8s/Dockerfile: no `cargo build --release -p minhu-${SVC}`")
    if not re.search(rf"^COPY\s[^\n]*\s{re.escape(BINARY_DIR)}/minhu-\$\{{SVC\}}\s*$", stages[-1], re.M):
        problems.append(f"k8s/Dockerfile: the runtime stage should install the binary as {BINARY_DIR}/minhu-${{SVC}} "
                        "(the Deployments' command)")
    entry = re.search(r"^ENTRYPOINT\s+(.*)$", stages[-1], re.M)
    if not entry:
        problems.append("k8s/Dockerfile: no ENTRYPOINT")
    elif entry.group(1).lstrip().startswith("[") and "$" in entry.group(1):
        problems.append("k8s/Dockerfile: exec-form ENTRYPOINT does not expand variables: "
                        f"{entry.group(1).strip()}")
    user = re.findall(r"^USER\s+(\S+)", stages[-1], re.M)
    if not user or not re.fullmatch(r"[1-9]\d*(:\d+)?", user[-1]):
        problems.append("k8s/Dockerfile: the runtime stage needs a numeric non-root USER (runAsNonRoot checks it)")


@dataclass
class Outcome:
    problems: list[str]
    passed: int
    failed: int
    info: list[str]


def validate_tree(k8s_dir: Path) -> Outcome:
    """Renders and checks k8s_dir/base and every k8s_dir/overlays/* against the code in ROOT."""
    general: list[str] = []
    info: list[str] = []
    paths = workspace_paths()
    services = sorted(d.name for d in (k8s_dir / "base").iterdir()
                      if d.is_dir() and (ROOT / "services" / d.name).is_dir())
    crates = {}
    for svc in services:
        crate = analyse_crate(svc, paths, general)
        if crate:
            crates[svc] = crate
    protos = proto_services()
    deployable = deployable_services()
    check_dockerfile(k8s_dir / "Dockerfile", general)

    overlays = k8s_dir / "overlays"
    targets = [k8s_dir / "base"] + (sorted(p for p in overlays.iterdir() if (p / "kustomization.yaml").is_file())
                                    if overlays.is_dir() else [])
    passed = failed = 0
    report: list[str] = []
    for target in targets:
        label = "k8s/" + str(target.relative_to(k8s_dir))
        try:
            objects = render(target)
        except RenderError as e:
            report.append(f"{label}: render failed: {e}")
            failed += 1
            continue
        checker = Checker(label, objects, crates, protos, deployable)
        k8s_count, crd_count = checker.run()
        kinds: dict[str, int] = {}
        for o in objects:
            kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
        info.append(f"{label}: rendered {len(objects)} objects "
                    f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")
        info.append(f"  schemas: {k8s_count} against Kubernetes {KUBE_VERSION} (strict); {crd_count} CNPG Cluster "
                    "against the hand-written schema in validate.py (CRDs are not in kubernetes-validate's schemas)")
        for name, keys in sorted(checker.external_secrets.items()):
            info.append(f"  needs Secret {name}, created outside these manifests: keys {', '.join(sorted(keys))}")
        if checker.problems:
            failed += 1
            report += [f"{label}: {p}" for p in checker.problems]
        else:
            passed += 1
    if general:
        failed += 1
        report += general
    else:
        passed += 1
    info.append(f"services checked against the code: {', '.join(sorted(crates))} "
                f"(servers in services/: {', '.join(deployable)})")
    return Outcome(report, passed, failed, info)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    parser.add_argument("--render", metavar="DIR",
                        help="print DIR's rendered manifests (like `kubectl kustomize DIR`) and exit")
    args = parser.parse_args()
    if args.render:
        try:
            objects = render(Path(args.render))
        except RenderError as e:
            print(f"render failed: {e}", file=sys.stderr)
            return 1
        clean = [{k: v for k, v in o.items() if not k.startswith("__")} for o in objects]
        yaml.safe_dump_all(clean, sys.stdout, sort_keys=False, allow_unicode=True)
        return 0

    outcome = validate_tree(K8S)
    if not args.quiet:
        for line in outcome.info:
            print(line)
    if outcome.problems:
        print(f"\n{len(outcome.problems)} problem(s):")
        for line in outcome.problems:
            print(f"  - {line}")
    print(f"k8s: {outcome.passed} passed, {outcome.failed} failed")
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
