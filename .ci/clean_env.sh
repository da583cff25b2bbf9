# shellcheck shell=bash
# Sourced by .ci/run: drop what a caller's shell leaks into the test run, so that CI is
# the same whether or not the caller sourced env.sh (of this or another checkout), a ROS
# setup.bash, or runs inside a Python of another venv.
#
# - the venv and the colcon prefixes: VIRTUAL_ENV, PYTHONPATH, AMENT_PREFIX_PATH,
#   CMAKE_PREFIX_PATH, COLCON_PREFIX_PATH, RMW_IMPLEMENTATION, SEG2TRACK_ROOT, the venv's
#   PS1 (a script has no prompt), ...;
# - ROS_* (ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE, ROS_VERSION, ...) except
#   ROS_DISTRO, the Makefile's documented choice of distribution;
# - the ROS wheels' bootstrap guard (_ROS_WHEELS_BOOTSTRAP_COMPLETE): left set, the
#   clone's Python would not add its own library folders and would load the caller's;
# - PATH and LD_LIBRARY_PATH entries inside a venv, a checkout that env.sh came from,
#   this repository, the ROS wheels' library folders or /opt/ros.
#
# Afterwards CI_DROPPED lists what was dropped (for the log).

_ci_roots=()
for _ci_root in "${CI_REPO:-}" "${SEG2TRACK_ROOT:-}" "${VIRTUAL_ENV:-}"; do
  [[ -n "$_ci_root" ]] && _ci_roots+=("${_ci_root%/}")
done
CI_DROPPED=""

_ci_leaked_entry() { # _ci_leaked_entry DIR: whether a PATH-like entry comes from a sourced env
  local root
  for root in "${_ci_roots[@]}"; do
    [[ "$1" == "$root" || "$1" == "$root"/* ]] && return 0
  done
  case "$1" in
    */site-packages/ros_*.libs | */.venv/bin | */.venv/lib | /opt/ros/*) return 0 ;;
    */install/seg2track_ros/* | */install/seg2track_msgs/* | */install/vision_msgs/*) return 0 ;;
  esac
  return 1
}

_ci_strip() { # _ci_strip VAR: drop leaked entries from a colon-separated list
  local var="$1" entry kept=()
  local -a entries
  IFS=: read -r -a entries <<<"${!var:-}"
  for entry in "${entries[@]}"; do
    [[ -z "$entry" ]] && continue
    if _ci_leaked_entry "$entry"; then
      CI_DROPPED+=" $var:$entry"
    else
      kept+=("$entry")
    fi
  done
  if ((${#kept[@]})); then
    export "$var=$(IFS=:; echo "${kept[*]}")"
  else
    unset "$var"
  fi
}

_ci_strip PATH
_ci_strip LD_LIBRARY_PATH
for _ci_var in VIRTUAL_ENV VIRTUAL_ENV_PROMPT PS1 PYTHONPATH PYTHONHOME AMENT_PREFIX_PATH \
  CMAKE_PREFIX_PATH COLCON_PREFIX_PATH COLCON_CURRENT_PREFIX RMW_IMPLEMENTATION \
  SEG2TRACK_ROOT SEG2TRACK_TEST_DOMAIN_ID _ROS_WHEELS_BOOTSTRAP_COMPLETE \
  $(compgen -e | grep '^ROS_' | grep -v '^ROS_DISTRO$'); do
  if [[ -n "${!_ci_var+set}" ]]; then
    CI_DROPPED+=" $_ci_var"
    unset "$_ci_var"
  fi
done
unset _ci_roots _ci_root _ci_var
unset -f _ci_leaked_entry _ci_strip
