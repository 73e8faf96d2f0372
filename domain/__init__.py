"""The pure swap domain: aggregates, events, commands, rules and handlers. No I/O, no clock."""
