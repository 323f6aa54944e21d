"""The benchmark harness behind bench/run.py (`make bench`), one module per concern:

  machine.py    binaries' location, /proc readings (CPU, RSS, idle cores), ports, versions
  brokers.py    Turnpike and mosquitto with equivalent settings: start, stop, CPU, RSS, log
  clients.py    mqbench processes: flags, live lines, JSON reports, their own CPU
  scenarios/    one file per scenario (a_idle.py … h_memory.py), each registering itself
  report.py     the results .md (tables, method, disturbance check, commands)
  charts.py     the PNG per scenario
  cli.py        the command line and the run loop

bench/durability.py, cluster.py, admin.py and bridges.py use machine, brokers and clients too.
"""
