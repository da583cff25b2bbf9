# seg2track_ros developer entry points. Everything runs inside the venv that
# scripts/bootstrap.sh builds (ROS 2 from PyPI wheels); see README.md.
#   make demo    env + the whole path on a bundled sequence (see README), in demo_output/
#   make env     build or update .venv and install/ (idempotent)
#   make test    env + lint + the test suite
#   make stress  env + the reliability suite at full size (about an hour), in stress_output/
#   make lint    ruff check and ruff format --check
#   make format  ruff format + ruff check --fix
#   make clean   remove build/, install/, log/ (keeps .venv)
#   make distclean  also remove .venv
# ROS_DISTRO=kilted selects ROS 2 Kilted (default: jazzy).

SHELL := /bin/bash
ROS_DISTRO ?= jazzy
export ROS_DISTRO
IN_ENV := source ./env.sh &&
PYTEST_ARGS ?=

.PHONY: demo env test stress lint format clean distclean

demo: env
	@rm -rf demo_output
	@$(IN_ENV) seg2track demo --out demo_output

env:
	@bash scripts/bootstrap.sh

lint: env
	@$(IN_ENV) ruff check . && ruff format --check .

format: env
	@$(IN_ENV) ruff format . && ruff check --fix .

test: lint
	@$(IN_ENV) python -m pytest $(PYTEST_ARGS)

stress: env
	@$(IN_ENV) seg2track stress --out stress_output

clean:
	rm -rf build install log

distclean: clean
	rm -rf .venv
