"""The station simulator: a fleet of MQTT stations speaking PROTOCOL.md v1 and v2.

    Simulator(SimulatorConfig(stations=10, riders=100, swaps=500, rate=20)).run() -> Summary

See docs/simulator.md; ``bss simulate`` is the command line.
"""

from adapters.mqtt.simulator.config import SimulatorConfig
from adapters.mqtt.simulator.fleet import Simulator, SimulatorError
from adapters.mqtt.simulator.summary import Summary

__all__ = ["Simulator", "SimulatorConfig", "SimulatorError", "Summary"]
