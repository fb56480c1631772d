#!/usr/bin/env bash
# Operations tier: the deployment assets in conf/ are what operators install, so
# they are checked like code.
#
#   test/ops/run.sh BUILD_DIR
#
# 1. promtool check rules conf/prometheus/alerts.yml; every rule has a severity and
#    summary/description/runbook annotations.
# 2. promtool test rules conf/prometheus/alerts_test.yml; every alert has a test where
#    it fires and one where it must not.
# 3. conf/grafana/evenflow.json is valid JSON and a sane dashboard (schemaVersion,
#    ${DS_PROMETHEUS}, $service templating, unique ids, layout in 24 columns) and
#    every query parses as PromQL (promtool, variables substituted).
# 4. Every evenflow_* metric and every label the rules and the dashboard use is one
#    evenflowd exports (the list below is the contract with app/evenflowd/observe.cpp).
# 5. systemd-analyze verify on the unit: the template with the build's binaries, and
#    the unit `meson install` generates, with its paths inside the DESTDIR.
# 6. meson install --destdir puts binaries, the config example, the unit, the rules
#    and the dashboard in the usual places, with the unit naming them.
# Ends with "N passed, N failed"; exits non-zero if anything failed or a tool is missing.
set -uo pipefail

# shellcheck source=test/lib/harness.sh
source "$(dirname "$0")/../lib/harness.sh"
harness_init ops "${1:?usage: test/ops/run.sh BUILD_DIR}"
conf=$root/conf
# Missing tools are failures, loudly: a check that silently skips proves nothing.
needs_tools promtool systemd-analyze python3 meson
needs_python_modules yaml
make_workdir

# The metrics and labels evenflowd exports (prefix evenflow_), and Prometheus' own.
metrics=(
  evenflow_config_version evenflow_config_applies_total evenflow_config_apply_refused_total
  evenflow_config_rollbacks_total
  evenflow_config_baseline_version evenflow_config_baseline_age_seconds
  evenflow_config_baseline_window_seconds evenflow_config_baseline_accepted
  evenflow_backend_baseline_drift evenflow_backend_accepted_drift
  evenflow_backend_up evenflow_backend_state evenflow_backend_active_flows
  evenflow_backend_new_flows_total evenflow_backend_packets_total evenflow_backend_bytes_total
  evenflow_backend_expected_share evenflow_backend_observed_share evenflow_backend_skew_ratio
  evenflow_backend_skew_alarm evenflow_backend_bytes_share evenflow_backend_packets_share
  evenflow_backend_heavy_hitter_alarm evenflow_heavy_hitter_connections
  evenflow_service_backends_up evenflow_service_no_backend_alarm
  evenflow_worker_rx_packets_total evenflow_worker_tx_packets_total evenflow_worker_rx_bytes_total
  evenflow_worker_tx_bytes_total evenflow_worker_drops_total evenflow_worker_flows_active
  evenflow_worker_flow_capacity evenflow_worker_flow_evictions_total
  evenflow_worker_flow_insert_failures_total
  evenflow_alarms_active evenflow_config_fingerprint evenflow_bgp_vip_announced
  evenflow_gateway_held evenflow_gateway_transitions_total evenflow_gateway_adverts_total
)
labels=(service backend state direction worker reason trigger instance job fingerprint vip client basis address interface)

# ---- 1, 2: alert rules
check "promtool check rules alerts.yml" promtool check rules "$conf/prometheus/alerts.yml"
check "promtool test rules alerts_test.yml" promtool test rules "$conf/prometheus/alerts_test.yml"

check "every alert has severity, summary, description, runbook" python3 - "$conf/prometheus/alerts.yml" <<'EOF'
import sys, yaml
bad = []
for group in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for rule in group["rules"]:
        if "alert" not in rule:
            continue
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            bad.append(f"{rule['alert']}: severity label missing or not critical|warning|info")
        for a in ("summary", "description", "runbook"):
            if not rule.get("annotations", {}).get(a, "").strip():
                bad.append(f"{rule['alert']}: annotation {a} missing")
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF

check "every alert has a firing and a not-firing test" python3 - "$conf/prometheus/alerts.yml" "$conf/prometheus/alerts_test.yml" <<'EOF'
import sys, yaml
alerts = [r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
fires, quiet = set(), set()
for t in yaml.safe_load(open(sys.argv[2]))["tests"]:
    for case in t.get("alert_rule_test", []):
        (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
bad = [f"{a}: no test where it fires" for a in alerts if a not in fires]
bad += [f"{a}: no test where it must not fire" for a in alerts if a not in quiet]
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF

# ---- 3: dashboard
dashboard=$conf/grafana/evenflow.json
check "dashboard is valid JSON" python3 -m json.tool "$dashboard"

check "dashboard is sane" python3 - "$dashboard" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
if not 36 <= d.get("schemaVersion", 0) <= 39:
    bad.append(f"schemaVersion {d.get('schemaVersion')}: expected 36..39 (Grafana 9.x-10.x)")
for key in ("title", "uid"):
    if not d.get(key):
        bad.append(f"no {key}")
variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
    bad.append("no datasource variable DS_PROMETHEUS")
if "service" not in variables:
    bad.append("no templating on service")
ids, rects, queries = set(), [], 0
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
for p in panels(d.get("panels", [])):
    name = f"panel {p.get('id')} {p.get('title')!r}"
    if p.get("id") in ids:
        bad.append(f"{name}: duplicate id")
    ids.add(p.get("id"))
    if not p.get("title"):
        bad.append(f"{name}: no title")
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] < 0 or g["x"] + g["w"] > 24:
        bad.append(f"{name}: gridPos {g} outside 24 columns")
    else:
        rects.append((name, g))
    if p.get("type") == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
        bad.append(f"{name}: datasource is not ${{DS_PROMETHEUS}}")
    targets = p.get("targets", [])
    if not targets:
        bad.append(f"{name}: no queries")
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs):
        bad.append(f"{name}: duplicate refId")
    for t in targets:
        queries += 1
        if not t.get("expr", "").strip():
            bad.append(f"{name}: empty query {t.get('refId')}")
        if t.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
            bad.append(f"{name}: query {t.get('refId')} datasource is not ${{DS_PROMETHEUS}}")
for i, (n1, a) in enumerate(rects):
    for n2, b in rects[i + 1:]:
        if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and
                a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):
            bad.append(f"{n1} overlaps {n2}")
if queries < 10:
    bad.append(f"only {queries} queries")
print("\n".join(bad) or f"{len(ids)} panels, {queries} queries")
sys.exit(1 if bad else 0)
EOF

# Every query (panels, annotations, variables) must parse: wrap them as recording
# rules, Grafana's variables replaced by values, and let promtool parse them.
python3 - "$dashboard" >"$work/dashboard-rules.yml" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "expr" and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(d)
for v in d.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q or "")
    if m:
        exprs.append(m.group(1))
subs = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h",
        "$instance": ".*", "$service": ".*"}
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    for k, v in subs.items():
        e = e.replace(k, v)
    print(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}")
EOF
check "every dashboard query parses (promtool)" promtool check rules "$work/dashboard-rules.yml"

# ---- 4: names against the exported set
check "rules and dashboard use only exported metrics and labels" python3 - \
  "$conf/prometheus/alerts.yml" "$dashboard" "$work/dashboard-rules.yml" \
  "${metrics[*]}" "${labels[*]}" <<'EOF'
import re, sys, yaml
rules_file, dashboard, dash_rules, metrics, labels = sys.argv[1:6]
metrics, labels = set(metrics.split()), set(labels.split())
exprs = {}
for g in yaml.safe_load(open(rules_file))["groups"]:
    for r in g["rules"]:
        exprs[f"alert {r.get('alert') or r.get('record')}"] = r["expr"]
for g in yaml.safe_load(open(dash_rules))["groups"]:
    for r in g["rules"]:
        exprs[f"dashboard {r['record']}"] = r["expr"]
bad, used = [], set()
for name, e in exprs.items():
    for m in re.findall(r"\bevenflow_[a-z0-9_]+", e):
        used.add(m)
        if m not in metrics:
            bad.append(f"{name}: unknown metric {m}")
    # Label names: matchers {l="..."}, by/without/on/ignoring (...) lists.
    for m in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"", e):
        if m not in labels and m != "__name__":
            bad.append(f"{name}: unknown label {m}")
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        for m in filter(None, (x.strip() for x in group.split(","))):
            if m not in labels:
                bad.append(f"{name}: unknown label {m}")
    # Any other bare metric name (not a function, keyword or label) must be `up`.
    stripped = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', " ", e)
    stripped = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    for tok in re.findall(r"(?<![\w.$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", stripped):
        if tok.startswith("evenflow_") or tok in ("and", "or", "unless", "bool", "offset", "up"):
            continue
        bad.append(f"{name}: unexpected metric or keyword {tok}")
# Every alert references at least one exported metric or up; the dashboard shows most of them.
print("\n".join(bad) or f"{len(used)} of {len(metrics)} exported metrics used")
sys.exit(1 if bad else 0)
EOF

# Text outside PromQL (annotations, descriptions) may mention metric names too.
check "no unknown evenflow_* name anywhere in conf/" python3 - "${metrics[*]}" \
  "$conf/prometheus/alerts.yml" "$conf/prometheus/alerts_test.yml" "$dashboard" <<'EOF'
import re, sys
metrics = set(sys.argv[1].split())
bad = [f"{f}: {m}" for f in sys.argv[2:] for m in sorted(set(re.findall(r"\bevenflow_[a-z0-9_]+", open(f).read())))
       if m not in metrics]
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF

# ---- 5, 6: unit and install layout
unit_template=$conf/evenflowd.service
mkdir -p "$work/unit"
sed -e "s|@BINDIR@|$build/app|g" -e "s|@SYSCONFDIR@/evenflow/evenflow.toml|$conf/evenflow.toml|g" \
  "$unit_template" >"$work/unit/evenflowd.service"
# verify exits 0 on unknown keys and bad values (it only warns): any output fails.
# The unit's Documentation= names man pages that only an install puts where man finds
# them: --man=no here, test/package/run.sh verifies the installed unit with them.
verify() { # UNIT
  local out
  out=$(systemd-analyze verify --man=no "$1" 2>&1)
  local rc=$?
  echo "$out"
  [[ $rc -eq 0 && -z $out ]]
}
check "systemd-analyze verify (template, build binaries)" verify "$work/unit/evenflowd.service"

destdir=$work/destdir
if out=$(meson install -C "$build" --destdir "$destdir" --no-rebuild 2>&1); then
  pass "meson install --destdir"
  read -r prefix bindir sysconfdir datadir < <(python3 - "$build/meson-info/intro-buildoptions.json" <<'EOF'
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(open(sys.argv[1]))}
p = o["prefix"]
print(p, *(os.path.join(p, o[k]) for k in ("bindir", "sysconfdir", "datadir")))
EOF
)
  unit=$destdir$prefix/lib/systemd/system/evenflowd.service
  layout_errors=()
  for f in "$bindir/evenflowd" "$bindir/evenctl" "$sysconfdir/evenflow/evenflow.toml.example" \
      "$prefix/lib/systemd/system/evenflowd.service" "$datadir/evenflow/prometheus/alerts.yml" \
      "$datadir/evenflow/grafana/evenflow.json"; do
    [[ -f $destdir$f ]] || layout_errors+=("missing $f")
  done
  for f in "$bindir/evenflowd" "$bindir/evenctl"; do
    [[ -x $destdir$f ]] || layout_errors+=("not executable $f")
  done
  # A reinstall must never overwrite the operator's config.
  [[ ! -e $destdir$sysconfdir/evenflow/evenflow.toml ]] ||
    layout_errors+=("installs $sysconfdir/evenflow/evenflow.toml (would overwrite the operator's)")
  if [[ -f $unit ]]; then
    grep -q '@[A-Z_]*@' "$unit" && layout_errors+=("unsubstituted @VAR@ in the installed unit")
    grep -qx "ExecStart=$bindir/evenflowd --config $sysconfdir/evenflow/evenflow.toml" "$unit" ||
      layout_errors+=("installed unit's ExecStart is not $bindir/evenflowd --config $sysconfdir/evenflow/evenflow.toml")
    cmp -s "$destdir$datadir/evenflow/prometheus/alerts.yml" "$conf/prometheus/alerts.yml" ||
      layout_errors+=("installed alerts.yml differs from conf/")
  fi
  if ((${#layout_errors[@]} == 0)); then
    pass "install layout (prefix $prefix)"
  else
    fail "install layout (prefix $prefix)" "$(printf '%s\n' "${layout_errors[@]}")"
  fi
  # The unit meson generated, pointed at the binaries inside DESTDIR.
  if [[ -f $unit ]]; then
    mkdir -p "$work/installed"
    sed "s|$bindir/|$destdir$bindir/|g" "$unit" >"$work/installed/evenflowd.service"
    check "systemd-analyze verify (installed unit)" verify "$work/installed/evenflowd.service"
  else
    fail "systemd-analyze verify (installed unit): not installed"
  fi
else
  fail "meson install --destdir" "$out"
fi

finish
