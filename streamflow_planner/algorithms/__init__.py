"""Planning algorithms selectable with --algo; `plan` runs one and checks its result."""
