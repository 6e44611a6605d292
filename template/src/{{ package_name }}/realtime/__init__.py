"""The real-time core: framework-agnostic, asyncio only.

Adapters turn requests into calls on the `Hub` and write what a `Subscriber`
yields; everything about ordering, resume, buffering and draining lives here.
"""
