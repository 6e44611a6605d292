"""`nox -s bench`: the generated app's server CPU and memory, side by side with peers.

Every peer is a real ASGI app under uvicorn in its own process; the load comes
from another process (bench.load). Run with `python -m bench --help`.
"""
