#!/usr/bin/env bash
# Static checks for the deployment files (no cluster, no Docker needed):
#   deploy/check.sh
# Needs python3 with PyYAML and promtool (Debian: apt-get install prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== YAML parses"
python3 - docker-compose.yml deploy/k8s/*.yaml deploy/prometheus/*.yml <<'PY'
import sys, yaml
for f in sys.argv[1:]:
    with open(f) as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    print(f"  ok {f} ({len(docs)} doc{'s' if len(docs) != 1 else ''})")
PY

echo "== PrometheusRule spec.groups == alerts.yml groups"
python3 - <<'PY'
import sys, yaml
plain = yaml.safe_load(open("deploy/prometheus/alerts.yml"))["groups"]
rule = yaml.safe_load(open("deploy/k8s/prometheusrule.yaml"))
assert rule["kind"] == "PrometheusRule", rule["kind"]
if rule["spec"]["groups"] != plain:
    sys.exit("  FAIL: deploy/k8s/prometheusrule.yaml spec.groups differ from deploy/prometheus/alerts.yml")
print(f"  ok ({sum(len(g['rules']) for g in plain)} rules identical)")
PY

echo "== promtool"
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
promtool check config deploy/prometheus/prometheus.yml

if command -v kubectl >/dev/null 2>&1; then
    echo "== kustomize build"
    kubectl kustomize deploy/k8s >/dev/null && echo "  ok"
fi
