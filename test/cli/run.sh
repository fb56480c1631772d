#!/usr/bin/env bash
# Command-line tier: the three command lines as an operator meets them, no DPDK needed.
#   test/cli/run.sh BUILD_DIR
# 1. --version of evenflowd, evenctl and evengen is the meson project version.
# 2. --help of each binary, and `evenctl COMMAND --help` for every command of the
#    vocabulary: exit 0, the command's usage, its arguments and options.
# 3. Usage errors of every command: exit 2 and a message naming the bad argument.
# 4. evenctl against a stand-in daemon (fake_daemon.py): the status line with the
#    daemon's evenflow_version, `evenctl diff` (request fields, rendering and exit code
#    of each verdict), --socket and $EVENFLOW_SOCKET.
# 5. The generated bash completion: commands, options, files, services and backends.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=test/lib/harness.sh
source "$here/../lib/harness.sh"
harness_init cli "${1:?usage: test/cli/run.sh BUILD_DIR}"
needs_tools python3
needs_binaries "$evenflowd" "$evenctl" "$evengen"
make_workdir

version=$(json 'r["version"]' <"$build/meson-info/intro-projectinfo.json")
run() { # ARGS... : out, rc of the command (stdout and stderr together)
  out=$("$@" 2>&1)
  rc=$?
}

# ---- 1. versions ----
for bin in evenflowd evenctl evengen; do
  run "$build/app/$bin" --version
  expect_eq "$bin --version" "$rc $out" "0 $bin $version"
done

# ---- 2. help ----
for bin in evenflowd evenctl evengen; do
  run "$build/app/$bin" --help
  if [[ $rc -eq 0 && $out == *"Usage: $bin"* && $out == *"Exit status"* ]]; then
    pass "$bin --help: usage, options, exit status"
  else
    fail "$bin --help: exit $rc" "$out"
  fi
done
run "$evenflowd" --help
expect_contains "evenflowd --help: --config FILE and the EAL arguments" "$out" \
  "usage: evenflowd --config FILE [-- EXTRA_EAL_ARGS...]"
run "$evengen" --help
expect_contains "evengen --help: lists --lifecycle-data" "$out" "--lifecycle-data N"

# The commands, their positionals and options, as evenctl's own help lists them.
run "$evenctl" --help
mapfile -t commands < <(sed -n '/^Subcommands:/,/^$/p' <<<"$out" | awk 'NF && !/Subcommands:/ { print $1 }')
expect_eq "evenctl --help lists 17 commands, diff among them" \
  "${#commands[@]} $(printf '%s\n' "${commands[@]}" | grep -cx diff)" "17 1"
declare -A usage
while IFS= read -r line; do
  [[ $line == "usage: evenctl "* ]] && usage[$(awk '{ print $3 }' <<<"$line")]=${line#usage: evenctl }
done < <(for c in "${commands[@]}"; do "$evenctl" "$c" --help; done)
for c in "${commands[@]}"; do
  run "$evenctl" "$c" --help
  u=${usage[$c]:-}
  if [[ $rc -eq 0 && $out == *"Usage: evenctl $c"* && -n $u ]]; then
    pass "evenctl $c --help: $u"
  else
    fail "evenctl $c --help: exit $rc" "$out"
  fi
done

# ---- 3. usage errors: exit 2, the bad argument named ----
usage_case() { # WHAT NEEDLE COMMAND...
  local what=$1 needle=$2
  shift 2
  run "$@"
  if [[ $rc -eq 2 && $out == *"$needle"* ]]; then
    pass "$what: exit 2, [$needle]"
  else
    fail "$what: exit $rc, expected 2 and [$needle]" "$out"
  fi
}
for c in "${commands[@]}"; do
  # The positionals of the usage line, options left out: required, then [optional].
  read -r -a words <<<"$(sed 's/ \[--[^]]*\]//g' <<<"${usage[$c]}")"
  required=() optional=0
  for w in "${words[@]:1}"; do
    case $w in
      \[*) optional=$((optional + 1)) ;;
      *) required+=("$w") ;;
    esac
  done
  usage_case "evenctl $c --bogus" "$c: unknown option --bogus" "$evenctl" "$c" "${required[@]}" --bogus
  if ((${#required[@]})); then
    # All but the last required argument: the last one is named as missing.
    usage_case "evenctl $c without ${required[-1]}" "${required[-1]} is required" \
      "$evenctl" "$c" "${required[@]:0:${#required[@]}-1}"
  fi
  # One word more than it takes.
  extra=("${required[@]}")
  for ((i = 0; i < optional; i++)); do extra+=(7); done
  usage_case "evenctl $c with a stray word" "unexpected argument \"stray\"" \
    "$evenctl" "$c" "${extra[@]}" stray
done
usage_case "evenctl rollback 0" "VERSION must be a positive integer, not \"0\"" "$evenctl" rollback 0
usage_case "evenctl rollback x" "VERSION must be a positive integer, not \"x\"" "$evenctl" rollback x
usage_case "evenctl top --iterations" "--iterations needs a value N" "$evenctl" top --iterations
usage_case "evenctl top --iterations x" "N must be a positive integer" "$evenctl" top --iterations x
usage_case "evenctl frobnicate" "unknown command \"frobnicate\"" "$evenctl" frobnicate
usage_case "evenctl without a command" "no command given" "$evenctl"
usage_case "evenctl --bogus status" "unknown option --bogus" "$evenctl" --bogus status
usage_case "evenctl --socket without a path" "--socket needs a value PATH" "$evenctl" --socket
usage_case "evenctl apply of a missing file" "cannot read $work/none.toml" "$evenctl" apply "$work/none.toml"
usage_case "evenflowd without --config" "--config is required" "$evenflowd"
usage_case "evenflowd --config without a file" "--config needs a value FILE" "$evenflowd" --config
usage_case "evenflowd --bogus" "unknown option --bogus" "$evenflowd" --config x.toml --bogus
usage_case "evenflowd with a stray word" "unexpected argument \"stray\"" "$evenflowd" --config x.toml stray
usage_case "evengen --flows without a value" "--flows needs a value N" "$evengen" --flows
usage_case "evengen with a stray word" "unexpected argument \"stray\"" "$evengen" stray
# (evengen's value errors: test/evengen/run.sh)

# ---- 4. evenctl against a stand-in daemon ----
fake=$work/fake.sock
FAKE_EVENFLOW_VERSION=$version python3 "$here/fake_daemon.py" "$fake" "$work/requests.log" &
bgpids+=($!)
for _ in $(seq 1 50); do [[ -S $fake ]] && break; sleep 0.1; done
run "$evenctl" --socket "$fake" status
expect_contains "status: the daemon's software version" "$out" "evenflow $version"
[[ $out != *"the daemon runs other software"* ]] && pass "status: same version, no warning" ||
  fail "status: warns although the versions agree" "$out"
EVENFLOW_SOCKET=$fake run "$evenctl" status --json
expect_eq "status --json after the command, socket from \$EVENFLOW_SOCKET" \
  "$rc $(json 'r["evenflow_version"]' <<<"$out")" "0 $version"

older=$work/older.sock
FAKE_EVENFLOW_VERSION=0.0.1 python3 "$here/fake_daemon.py" "$older" "$work/requests-older.log" &
bgpids+=($!)
nover=$work/nover.sock
FAKE_EVENFLOW_VERSION='' python3 "$here/fake_daemon.py" "$nover" "$work/requests-nover.log" &
bgpids+=($!)
for _ in $(seq 1 50); do [[ -S $older && -S $nover ]] && break; sleep 0.1; done
run "$evenctl" --socket "$older" status
expect_contains "status: a daemon older than evenctl is pointed out" "$out" \
  "evenflow 0.0.1 (evenctl is $version: the daemon runs other software"
run "$evenctl" --socket "$nover" status
[[ $rc -eq 0 && $out != *evenflow* && $out == *"version 3"* ]] &&
  pass "status: a reply without evenflow_version renders as before" ||
  fail "status: a reply without evenflow_version: exit $rc" "$out"

diff_case() { # VERDICT EXIT NEEDLE...
  local verdict=$1 want=$2 needle
  shift 2
  printf '# verdict: %s\n[control]\n' "$verdict" >"$work/$verdict.toml"
  run "$evenctl" --socket "$fake" diff "$work/$verdict.toml"
  local bad=""
  [[ $rc -eq $want ]] || bad+=" exit $rc, expected $want;"
  for needle in "$@"; do [[ $out == *"$needle"* ]] || bad+=" no [$needle];"; done
  if [[ -z $bad ]]; then pass "diff, verdict $verdict: exit $want, $*"; else fail "diff, verdict $verdict:$bad" "$out"; fi
}
diff_case accept 0 "changes against version 3:" "  + backend web 10.20.0.14:8080 weight 1" \
  "apply would accept this config"
diff_case unchanged 0 "no changes against version 3"
diff_case shift 1 "  ~ backend web 10.20.0.13:8080 weight 2 -> 1" \
  "apply would refuse it: this config shifts traffic too far" "  web 10.20.0.13:8080: expected share"
diff_case invalid 1 "apply would refuse it: invalid config" "invalid.toml:3: unknown key colour"
diff_case restart 1 "apply would refuse it: [eal] changed: needs systemctl restart evenflowd"
request=$(grep '"cmd": "diff"' "$work/requests.log" | head -1)
expect_eq "diff sends apply's fields: cmd, config (the text), path" \
  "$(json 'sorted(r) == ["cmd", "config", "path"] and r["config"].startswith("# verdict: accept") and r["path"].endswith("accept.toml")' <<<"$request")" "True"
run "$evenctl" --socket "$fake" --json diff "$work/shift.toml"
expect_eq "diff --json: the reply, exit 1 for a refusal" "$rc $(json 'r["verdict"]' <<<"$out")" "1 shift"
[[ $(grep -c '"cmd": "apply"' "$work/requests.log") == 0 ]] && pass "diff never sends an apply" ||
  fail "diff sent an apply"

# ---- 5. bash completion, generated from the same definitions ----
completion=$build/app/completions/evenctl
cmp -s "$completion" <("$evenctl" --bash-completion) &&
  pass "the built completion is what evenctl --bash-completion prints" ||
  fail "build/app/completions/evenctl differs from evenctl --bash-completion"
check "completion script: bash -n" bash -n "$completion"
complete_words() { # WORDS... (the last one is being completed) -> the candidates, sorted
  EVENCTL="$evenctl" bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    COMP_WORDS[0]=$EVENCTL
    _evenctl
    ((${#COMPREPLY[@]})) && printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$completion" "$@"
}
expect_eq "complete evenctl d" "$(complete_words evenctl d)" "diff disable drain drain-host "
expect_eq "complete evenctl apply --" "$(complete_words evenctl apply --)" \
  "--accept-shift --help --json --socket --version "
touch "$work/cand-one.toml" "$work/cand-two.toml"
expect_eq "complete evenctl diff FILE" "$(complete_words evenctl diff "$work/cand-")" \
  "$work/cand-one.toml $work/cand-two.toml "
expect_eq "complete evenctl drain SERVICE from the daemon" \
  "$(complete_words evenctl --socket "$fake" drain "")" "echo web "
expect_eq "complete evenctl drain web BACKEND from the daemon" \
  "$(complete_words evenctl --socket "$fake" drain web 10.20.0.1)" "10.20.0.11:8080 10.20.0.12:8080 "
expect_eq "complete evenctl top --iterations N: nothing" "$(complete_words evenctl top --iterations "")" ""
finish
