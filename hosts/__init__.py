"""Process hosts: the ``vip`` command and every long-running process it starts.

The top layer: a host wires the layers below it (``infra``, ``consumers``,
``projections``, ``schemas``, ``domain``) into a process and runs it until
SIGTERM; nothing but tests and benchmarks imports a host
(tests/test_architecture.py). ``main`` (the ``vip`` group and its lazy
command table), ``serve`` (``vip serve``: consumers, relay, scheduler, read
models in one loop), ``streams`` (``vip streams run``: one Faust worker),
``bus`` (the bus commands: ``vip serve``, ``relay``, ``consume``,
``streams``, ``topics``, ``produce``, ``broker``), ``api`` (``vip api``,
``vip api-key``) and ``api_server`` (the API on a thread beside other work).
"""
