"""Built-in exchange simulators. Data from them is simulated and must be marked as such."""
