"""The Django project: its settings, URLs, views and (with WebSocket) Channels consumer."""
