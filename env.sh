# Source this file (bash or zsh) after `make env` to use seg2track_ros from the
# venv built by scripts/bootstrap.sh:
#     source env.sh
# It activates .venv and puts the colcon install/ (seg2track_msgs, the vision_msgs
# fallback where it was built, seg2track_ros) on PYTHONPATH, LD_LIBRARY_PATH,
# AMENT_PREFIX_PATH and PATH, so that in a plain shell
#     python -c "import rclpy, seg2track_msgs.msg, vision_msgs.msg"
# works. On a ROS 2 system, source /opt/ros/<distro>/setup.bash and your
# workspace's install/setup.bash instead; this file is for the venv only.

if [ -n "${BASH_SOURCE:-}" ]; then
  _s2t_root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
elif [ -n "${ZSH_VERSION:-}" ]; then
  # shellcheck disable=SC2296  # zsh's own expansion for the sourced file
  _s2t_root="$(cd "$(dirname "${(%):-%x}")" && pwd)"
else
  _s2t_root="$(pwd)"
fi

if [ ! -x "$_s2t_root/.venv/bin/python" ] || [ ! -d "$_s2t_root/install" ]; then
  echo "seg2track_ros: no environment in $_s2t_root yet; run 'make env' there first" >&2
  unset _s2t_root
  return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
. "$_s2t_root/.venv/bin/activate"

_s2t_prepend() { # _s2t_prepend VAR DIR: put DIR first in VAR unless already there
  eval "_s2t_cur=\${$1:-}"
  case ":$_s2t_cur:" in
    *":$2:"*) ;;
    *) eval "export $1=\"$2\${_s2t_cur:+:\$_s2t_cur}\"" ;;
  esac
  unset _s2t_cur
}

_s2t_prepend AMENT_PREFIX_PATH "$VIRTUAL_ENV"
_s2t_prepend CMAKE_PREFIX_PATH "$VIRTUAL_ENV"
# Packages later in this list take precedence (prepended last).
for _s2t_pkg in vision_msgs seg2track_msgs seg2track_ros; do
  _s2t_prefix="$_s2t_root/install/$_s2t_pkg"
  [ -d "$_s2t_prefix" ] || continue
  _s2t_prepend AMENT_PREFIX_PATH "$_s2t_prefix"
  _s2t_prepend CMAKE_PREFIX_PATH "$_s2t_prefix"
  [ -d "$_s2t_prefix/lib" ] && _s2t_prepend LD_LIBRARY_PATH "$_s2t_prefix/lib"
  _s2t_site="$_s2t_prefix/lib/python3.11/site-packages"
  [ -d "$_s2t_site" ] && _s2t_prepend PYTHONPATH "$_s2t_site"
done
# The Python package itself, from the source tree (edits take effect at once).
_s2t_prepend PYTHONPATH "$_s2t_root"
# Installed executables (tracker_node, ...), as `ros2 run seg2track_ros <exe>` finds them.
[ -d "$_s2t_root/install/seg2track_ros/lib/seg2track_ros" ] &&
  _s2t_prepend PATH "$_s2t_root/install/seg2track_ros/lib/seg2track_ros"

# The ROS wheels' bootstrapper (a .pth in the venv) still re-executes each Python
# once to add the wheels' library folders; it keeps the entries set above.
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export SEG2TRACK_ROOT="$_s2t_root"

unset -f _s2t_prepend
unset _s2t_root _s2t_pkg _s2t_prefix _s2t_site
