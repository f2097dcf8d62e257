"""The gateway: live books and market events to clients over WebSocket and REST."""
