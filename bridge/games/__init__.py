"""Players: one game kind and one engine protocol each, no server knowledge."""
