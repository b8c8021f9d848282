#!/usr/bin/python3
"""Validates deploy/k8s/*.yaml without a cluster (deploy/test-packaging.sh runs it).

There is no Kubernetes cluster or API server here, and Debian bookworm has no schema
validator (kubeconform, kubeval); its `python3-kubernetes` (the official client, 22.6:
Kubernetes 1.22's API) carries every API type as a model class with its fields, their
types and the required ones. This checks each document against those models, strictly:
an unknown field, a wrong type or a missing required field is an error (the API server
would reject or silently drop it). Then it checks how the objects fit together: the
StatefulSet's selector, headless Service, ConfigMap, Secret keys and volumes, probes on
/readyz and /healthz, one replica, a non-root security context.

Usage: check-manifests.py [DIR]  (default: this file's directory). Prints one line per
document and per check; exit 0 when all hold, 1 otherwise. --dump-config FILE writes the
ConfigMap's atriumd.toml to FILE (the test then starts atriumd with it).
"""
import os
import re
import sys

import kubernetes.client as k8s
import yaml

KINDS = {
    ("v1", "ConfigMap"): k8s.V1ConfigMap,
    ("v1", "Secret"): k8s.V1Secret,
    ("v1", "Service"): k8s.V1Service,
    ("apps/v1", "StatefulSet"): k8s.V1StatefulSet,
}
errors = []


def fail(where, what):
    errors.append(f"{where}: {what}")


def check_value(type_name, value, where):
    """Checks `value` against an openapi type name of the client ('str', 'list[V1Container]', ...)."""
    if value is None:
        return None
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            return fail(where, f"must be a list, not {type(value).__name__}")
        return [check_value(m.group(1), v, f"{where}[{i}]") for i, v in enumerate(value)]
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            return fail(where, f"must be a map, not {type(value).__name__}")
        return {k: check_value(m.group(1), v, f"{where}.{k}") for k, v in value.items()}
    simple = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float), "datetime": (str,)}
    if type_name in simple:
        ok = isinstance(value, simple[type_name]) and not (type_name == "int" and isinstance(value, bool))
        if not ok:
            fail(where, f"must be {type_name}, not {type(value).__name__} {value!r}")
        return value
    if type_name == "object":  # IntOrString, Quantity, free-form
        return value
    model = getattr(k8s, type_name, None)
    if model is None:
        return fail(where, f"unknown type {type_name}")
    return check_model(model, value, where)


def check_model(model, doc, where):
    if not isinstance(doc, dict):
        return fail(where, f"must be a map ({model.__name__}), not {type(doc).__name__}")
    by_json = {json: attr for attr, json in model.attribute_map.items()}
    kwargs = {}
    for key, value in doc.items():
        if key not in by_json:
            fail(where, f"unknown field '{key}' in {model.__name__}")
            continue
        attr = by_json[key]
        kwargs[attr] = check_value(model.openapi_types[attr], value, f"{where}.{key}")
    try:
        return model(**kwargs)
    except (ValueError, TypeError) as e:  # a required field missing, a value not allowed
        fail(where, f"{model.__name__}: {e}")
        return None


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    dump = None
    if "--dump-config" in argv:
        i = argv.index("--dump-config")
        dump = argv[i + 1]
        del argv[i : i + 2]
    folder = argv[1] if len(argv) > 1 else here
    objects = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".yaml") or name == "kustomization.yaml":
            continue
        with open(os.path.join(folder, name)) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is None:
                    continue
                where = f"{name}#{i}"
                key = (doc.get("apiVersion"), doc.get("kind"))
                if key not in KINDS:
                    fail(where, f"unexpected apiVersion/kind {key}")
                    continue
                before = len(errors)
                check_model(KINDS[key], doc, where)
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
                print(f"{'ok  ' if len(errors) == before else 'FAIL'} {where}: {doc['kind']} "
                      f"{doc['metadata']['name']} against the {KINDS[key].__name__} model")
    with open(os.path.join(folder, "kustomization.yaml")) as f:
        listed = set(yaml.safe_load(f)["resources"])
    files = {n for n in os.listdir(folder) if n.endswith(".yaml") and n != "kustomization.yaml"}
    if listed != files:
        fail("kustomization.yaml", f"resources {sorted(listed)} are not the files {sorted(files)}")
    relations(objects)
    if dump:
        cm = objects.get(("ConfigMap", "atriumd-config"), {})
        with open(dump, "w") as f:
            f.write(cm.get("data", {}).get("atriumd.toml", ""))
    for e in errors:
        print(f"FAIL {e}")
    print(f"{'ok  ' if not errors else 'FAIL'} {len(objects)} objects, {len(errors)} errors")
    return 0 if not errors else 1


def relations(objects):
    def need(cond, what):
        print(f"{'ok  ' if cond else 'FAIL'} {what}")
        if not cond:
            errors.append(what)

    sts = objects.get(("StatefulSet", "atriumd"))
    if sts is None:
        return fail("statefulset", "no StatefulSet atriumd")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    labels = spec["template"]["metadata"]["labels"]
    need(spec.get("replicas") == 1, "StatefulSet: one replica")
    need(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
         "StatefulSet: the selector matches the pod template's labels")
    headless = objects.get(("Service", spec["serviceName"]))
    need(headless is not None and headless["spec"].get("clusterIP") == "None",
         f"StatefulSet: serviceName {spec['serviceName']} is a headless Service")
    for (kind, name), svc in objects.items():
        if kind == "Service":
            sel = svc["spec"]["selector"]
            need(all(labels.get(k) == v for k, v in sel.items()), f"Service {name} selects the pod")
            ports = {p["name"] for p in c["ports"]}
            need(all(p["targetPort"] in ports for p in svc["spec"]["ports"]), f"Service {name}: target ports exist")
    need(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness probe on /readyz")
    need(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness probe on /healthz")
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True and isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0,
         "pod runs as a non-root numeric user")
    need(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
         and csc.get("capabilities", {}).get("drop") == ["ALL"],
         "container: read-only root, no privilege escalation, no capabilities")
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    need("data" in claims, "a volumeClaimTemplate `data`")
    for m in c["volumeMounts"]:
        need(m["name"] in vols or m["name"] in claims, f"volumeMount {m['name']} has a volume")
    need(any(m["name"] == "data" and m["mountPath"] == "/data" for m in c["volumeMounts"]), "the claim is /data")
    for v in vols.values():
        if "configMap" in v:
            cm = objects.get(("ConfigMap", v["configMap"]["name"]))
            need(cm is not None and "atriumd.toml" in cm.get("data", {}), f"ConfigMap {v['configMap']['name']} holds atriumd.toml")
        if "secret" in v:
            s = objects.get(("Secret", v["secret"]["secretName"]), {})
            keys = set(s.get("stringData", {})) | set(s.get("data", {}))
            need(all(i["key"] in keys for i in v["secret"].get("items", [])), f"Secret {v['secret']['secretName']}: mounted keys exist")
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            s = objects.get(("Secret", ref["name"]), {})
            need(ref["key"] in s.get("stringData", {}) or ref["key"] in s.get("data", {}),
                 f"env {e['name']} from Secret {ref['name']} key {ref['key']}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
