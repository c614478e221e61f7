"""Sessions on disk: their files, lock, state, control log, tape, runner, recovery, replay and status."""
