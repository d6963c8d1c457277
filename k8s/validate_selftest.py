#!/usr/bin/env python3
"""Proves k8s/validate.py catches what it claims to: each case copies k8s/ to a scratch
directory, breaks one thing, validates the copy against the real code, and expects a
problem mentioning a given phrase. The real k8s/ is never modified.

Run through k8s/run-validate.sh, which runs this after validate.py; `-v` prints the
problem that caught each case.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import validate

# (what is broken, file under k8s/, text to replace (must occur exactly once), replacement,
#  phrase expected in a reported problem), or (what, [(file, text, replacement), ...], phrase).
CASES = [
    ("container port differs from the code's default",
     "base/dispatch/deployment.yaml", "containerPort: 50052", "containerPort: 50025",
     "differs from the code's default port 50052"),
    ("misspelt variable name",
     "base/dispatch/config.yaml", "MINHU_ROSTER_URL: http://roster:50051", "MINHU_ROSTR_URL: http://roster:50051",
     "sets MINHU_ROSTR_URL"),
    ("callee URL missing (default would be 127.0.0.1)",
     "base/dispatch/config.yaml", "  MINHU_ROSTER_URL: http://roster:50051\n", "",
     "MINHU_ROSTER_URL is not set"),
    ("URL points at the wrong service",
     "base/appraisal/config.yaml", "MINHU_DISPATCH_URL: http://dispatch:50052",
     "MINHU_DISPATCH_URL: http://roster:50051", "should point at the dispatch Service"),
    ("required variable not provided",
     "base/roster/deployment.yaml", "- name: MINHU_ROSTER_DATABASE_URL", "- name: MINHU_ROSTER_DB_URL",
     "requires MINHU_ROSTER_DATABASE_URL"),
    ("service token missing outside development mode",
     "base/appraisal/deployment.yaml", "key: MINHU_APPRAISAL_SERVICE_TOKEN\n",
     "key: MINHU_APPRAISAL_SERVICE_TOKEN\n                  optional: true\n",
     "requires MINHU_APPRAISAL_SERVICE_TOKEN unless MINHU_AUTH_DEV=true"),
    ("readiness probe asks for the wrong health service",
     "base/appraisal/deployment.yaml", "service: minhu.appraisal.v1.AppraisalService",
     "service: minhu.appraisal.v1.AppraisalsService", "should be 'minhu.appraisal.v1.AppraisalService'"),
    ("image names another binary",
     "base/roster/deployment.yaml", 'command: ["/usr/local/bin/minhu-roster"]',
     'command: ["/usr/local/bin/minhu-rooster"]', "command should start with /usr/local/bin/minhu-roster"),
    ("Service port differs from the container port",
     "base/roster/service.yaml", "port: 50051", "port: 50061", "Service/roster: port 50061 differs"),
    ("NetworkPolicy ingress port differs from the Service port",
     "base/dispatch/networkpolicy.yaml", "      ports:\n        - protocol: TCP\n          port: 50052\n    - from:",
     "      ports:\n        - protocol: TCP\n          port: 50053\n    - from:",
     "NetworkPolicy blocks gateway -> dispatch:50052/TCP"),
    ("a path outside the DAG, opened on both sides (appraisal -> roster)",
     [("base/roster/networkpolicy.yaml",
       "              app.kubernetes.io/name: dispatch\n              app.kubernetes.io/component: grpc-service\n",
       "              app.kubernetes.io/component: grpc-service\n"),
      ("base/appraisal/networkpolicy.yaml",
       "              app.kubernetes.io/name: dispatch\n              app.kubernetes.io/component: grpc-service\n"
       "      ports:\n        - protocol: TCP\n          port: 50052\n",
       "              app.kubernetes.io/component: grpc-service\n"
       "      ports:\n        - protocol: TCP\n          port: 50051\n        - protocol: TCP\n          port: 50052\n")],
     "allows appraisal -> roster:50051"),
    ("Redis opened to appraisal on both sides",
     [("base/redis/redis.yaml",
       "              app.kubernetes.io/name: dispatch\n              app.kubernetes.io/component",
       "              app.kubernetes.io/part-of: minhu\n              app.kubernetes.io/component"),
      ("base/appraisal/networkpolicy.yaml", "  egress:\n",
       "  egress:\n    - to:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: redis\n"
       "      ports:\n        - protocol: TCP\n          port: 6379\n")],
     "allows appraisal -> redis:6379"),
    ("Redis URL missing (default would be 127.0.0.1)",
     "base/dispatch/config.yaml", "  REDIS_URL: redis://redis:6379\n", "", "REDIS_URL is not set"),
    ("Redis URL on a port the Service does not expose",
     "base/dispatch/config.yaml", "REDIS_URL: redis://redis:6379", "REDIS_URL: redis://redis:6380",
     "uses port 6380, which Service/redis does not expose"),
    ("dispatch's egress to Redis on the wrong port",
     "base/dispatch/networkpolicy.yaml", "port: 6379", "port: 6380", "NetworkPolicy blocks dispatch -> redis:6379/TCP"),
    ("no default deny",
     "base/network-policies.yaml", "  name: default-deny\nspec:\n  podSelector: {}\n  policyTypes:\n    - Ingress\n    - Egress\n",
     "  name: default-deny\nspec:\n  podSelector: {}\n  policyTypes:\n    - Ingress\n",
     "no default-deny NetworkPolicy"),
    ("termination grace shorter than the drain",
     "base/dispatch/deployment.yaml", "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 20",
     "terminationGracePeriodSeconds 20 must exceed"),
    ("unknown field (Kubernetes schema)",
     "base/roster/deployment.yaml", "            periodSeconds: 5\n            failureThreshold: 2\n",
     "            periodSeconds: 5\n            failureTreshold: 2\n", "does not validate against Kubernetes"),
    ("CNPG parameter of the wrong type (hand-written schema)",
     "overlays/prod/patches/databases.yaml", 'max_connections: "200"', "max_connections: 200",
     "hand-written CNPG schema"),
    ("patch target that does not exist",
     "overlays/prod/patches/roster-hpa.yaml", "name: roster", "name: rooster", "matches 0 objects"),
    ("development tokens in prod",
     "overlays/prod/kustomization.yaml", "patches:\n", "patches:\n  - path: ../dev/patches/common-config.yaml\n",
     "prod must not set MINHU_AUTH_DEV"),
    ("autoscaling ceiling beyond the database's connections",
     "overlays/prod/patches/dispatch-hpa.yaml", "maxReplicas: 10", "maxReplicas: 25",
     "max_connections 200 leaves too little for dispatch"),
    ("one replica with minAvailable 1 blocks drains",
     "overlays/dev/patches/disruption-budgets.yaml", "minAvailable: 0", "minAvailable: 1", "blocks every node drain"),
    ("writable root filesystem",
     "base/redis/redis.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
     "readOnlyRootFilesystem is not true"),
    ("unsupported kustomize feature",
     "overlays/dev/kustomization.yaml", "namespace: minhu\n", "namespace: minhu\nnamePrefix: dev-\n",
     "not implemented by k8s/validate.py's renderer"),
    ("exec-form ENTRYPOINT with a build argument",
     "Dockerfile", 'ENTRYPOINT ["/usr/local/bin/minhu-service"]', 'ENTRYPOINT ["/usr/local/bin/minhu-${SVC}"]',
     "does not expand variables"),
    ("reporter key that is not 32 bytes",
     "overlays/dev/secrets.dev.env", "MINHU_DISPATCH_REPORTER_KEY=bWluaHUtZGV2LXJlcG9ydGVyLWtleS1ub3QtcHJvZCE=",
     "MINHU_DISPATCH_REPORTER_KEY=c2hvcnQ=", "must decode to exactly 32 bytes"),
]


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    failures = []
    with tempfile.TemporaryDirectory(prefix="minhu-k8s-selftest-") as scratch:
        for number, case in enumerate(CASES):
            if len(case) == 5:
                name, file, old, new, expected = case
                edits = [(file, old, new)]
            else:
                name, edits, expected = case
            copy = Path(scratch) / f"case-{number}"
            shutil.copytree(validate.K8S, copy, ignore=shutil.ignore_patterns("__pycache__"))
            broken = True
            for file, old, new in edits:
                path = copy / file
                text = path.read_text(encoding="utf-8")
                if text.count(old) != 1:
                    failures.append(f"{name}: the text to break occurs {text.count(old)} times in k8s/{file} "
                                    "(update the case)")
                    broken = False
                    break
                path.write_text(text.replace(old, new), encoding="utf-8")
            if not broken:
                continue
            outcome = validate.validate_tree(copy)
            hits = [p for p in outcome.problems if expected in p]
            if hits:
                print(f"caught: {name}" + (f"\n    {hits[0]}" if verbose else ""))
            else:
                failures.append(f"{name}: no problem mentions {expected!r}; got {outcome.problems or 'none'}")
    for failure in failures:
        print(f"NOT CAUGHT: {failure}", file=sys.stderr)
    print(f"k8s-selftest: {len(CASES) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
