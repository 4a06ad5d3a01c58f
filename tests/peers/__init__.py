"""Real peers for tests: fixtures that start and stop real daemons."""
