"""``ssmd data``: inventory, gaps, quality, replay and export of archived days."""
