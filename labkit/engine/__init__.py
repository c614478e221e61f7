"""The engine and what it moves: the decision loop (`core`), the book (`portfolio`) and the
decision line with its writer and reader (`journal`)."""
