"""Property-based tests against a rendered project's running server (`nox -s fuzz`).

Hypothesis makes the inputs: publish bodies, content types, headers, channel
names, query values, Last-Event-IDs, WebSocket frames and op sequences. Every
example speaks to one real server process, started from the rendered
project's own environment, and checks what any client may rely on: never a
5xx, never a traceback, whatever is accepted is delivered as valid JSON, no
hang, and the process and /healthz live throughout. docs/testing.md.
"""
