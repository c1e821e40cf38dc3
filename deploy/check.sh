#!/usr/bin/env bash
# Static checks for the deployment files (no cluster, no Docker needed):
#   deploy/check.sh
# Needs python3 with PyYAML and promtool (Debian: apt-get install prometheus);
# runs nginx -t and kubectl kustomize when those are installed.
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

# nginx -t on a copy of deploy/nginx/nginx.conf: the compose service names
# of its upstreams resolve only inside compose, so the copy names 127.0.0.1
# instead (and drops `resolve` and the `resolver`, Docker's DNS), and keeps
# its temporary files in a scratch directory. The file needs nginx 1.27.3+
# (`http2 on`, `resolve`), the compose image's 1.28: an older nginx (Debian
# 12 has 1.22) is skipped, not failed.
echo "== nginx -t"
if command -v nginx >/dev/null 2>&1; then
    version=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
    if [ "$(printf '%s\n' 1.27.3 "$version" | sort -V | head -n1)" = 1.27.3 ]; then
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        python3 - deploy/nginx/nginx.conf "$tmp" <<'PY'
import re, sys
src, tmp = sys.argv[1], sys.argv[2]
text = open(src).read()
text = re.sub(r"(?m)^(\s*server\s+)[A-Za-z0-9_.-]+:", r"\g<1>127.0.0.1:", text)
text = re.sub(r"(?m)(^\s*server\s[^;]*?)\s+resolve\b", r"\1", text)
text = re.sub(r"(?m)^\s*resolver\s[^;]*;", "", text)
temp = "".join(f"\n    {k}_temp_path {tmp}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
text, n = re.subn(r"(?m)^http\s*\{", lambda m: m.group(0) + temp, text, count=1)
assert n == 1, "no http block"
open(f"{tmp}/nginx.conf", "w").write(text)
PY
        nginx -t -q -p "$tmp" -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid;" && echo "  ok (nginx $version)"
    else
        echo "  skipped: nginx $version is older than 1.27.3"
    fi
else
    echo "  skipped: nginx not installed"
fi

if command -v kubectl >/dev/null 2>&1; then
    echo "== kustomize build"
    kubectl kustomize deploy/k8s >/dev/null && echo "  ok"
fi
