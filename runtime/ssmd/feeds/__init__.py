"""Venue adapters. Each venue is one folder: config, parsing, websocket client, data client."""
