"""Stand-ins for ROS 2 `launch` and `launch_ros` (not installable here), to run our
launch files' Python: each class records its arguments, so a test can read the actions,
remaps and parameters a launch file builds."""

from __future__ import annotations

import sys
import types
from pathlib import Path

LAUNCH_MODULES = (
    "launch",
    "launch.actions",
    "launch.event_handlers",
    "launch.substitutions",
    "launch_ros",
    "launch_ros.actions",
    "launch_ros.substitutions",
)


class Recorded:
    """Stand-in for a `launch` class: records its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


def stand_in_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    classes: dict[str, type] = {}

    def __getattr__(attr: str) -> type:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return classes.setdefault(attr, type(attr, (Recorded,), {}))

    module.__getattr__ = __getattr__
    return module


def launch_description(monkeypatch, path: Path):
    """The launch file's generate_launch_description(), built of stand-ins."""
    for module in LAUNCH_MODULES:
        monkeypatch.setitem(sys.modules, module, stand_in_module(module))
    namespace: dict = {}
    exec(compile(Path(path).read_text(), Path(path).name, "exec"), namespace)
    return namespace["generate_launch_description"]()


def walk(item):
    """Every stand-in, list and value reachable from `item`, depth first."""
    yield item
    if isinstance(item, Recorded):
        for value in (*item.args, *item.kwargs.values()):
            yield from walk(value)
    elif isinstance(item, list | tuple):
        for value in item:
            yield from walk(value)


def run_tracker_launch(monkeypatch, path: Path, **values: str):
    """tracker.launch.py's node for these launch arguments (the others empty): the Node
    action and its remaps ({from: to}, in order), substitutions performed. Every given
    argument must be declared."""
    description = launch_description(monkeypatch, path)
    (opaque,) = [i for i in walk(description) if type(i).__name__ == "OpaqueFunction"]
    arguments = [
        i.args[0] for i in walk(description) if type(i).__name__ == "DeclareLaunchArgument"
    ]
    assert set(values) <= set(arguments), set(values) - set(arguments)

    class Configuration:
        def __init__(self, name: str) -> None:
            self.name = name

        def perform(self, context: dict) -> str:
            return context[self.name]

    function = opaque.kwargs["function"]
    monkeypatch.setitem(function.__globals__, "LaunchConfiguration", Configuration)
    context = {name: "" for name in arguments}
    context.update(values)
    (node,) = function(context)
    remaps = {
        source: target if isinstance(target, str) else target.perform(context)
        for source, target in node.kwargs["remappings"]
    }
    return node, remaps
