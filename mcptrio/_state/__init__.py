"""Sessions, events and tasks and their stores (memory, SQLite, Redis), and the change buses."""
