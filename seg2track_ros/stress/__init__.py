"""`seg2track stress`: the reliability suite. It drives the real tracker_node executable
over DDS (a subprocess, as in production) and checks that it keeps running:

- soak: thousands of frames with many track births; node RSS sampled as it goes;
- fuzz: malformed images and detections mixed with good frames; every burst must be
  followed by a good frame's output and every rejection counted in /diagnostics;
- lifecycle: configure / activate / deactivate / cleanup cycles with frames while
  active; transitions, subscription and publisher counts, RSS, idle CPU;
- fault: an injected exception in Tracker.step every N frames costs exactly its frame.

Every loop is bounded in count and in time. `scenes` draws the frames, `driver` runs
and talks to the node, `fuzz` builds the malformed messages, `suites` runs the four
checks, `command` is the command line and the table.
"""
