"""The apps the generated one is measured against, each a module with an ASGI `app`.

Each serves `GET /channels/{c}/sse` (first frame `retry:`, so a client knows it
is subscribed) and `POST /channels/{c}/events` with a JSON body.
"""
