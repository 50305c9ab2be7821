"""A map function whose module takes 8 s to import in a worker process named w2: a model that is
slow to load (int8 quantised at deploy, say) on one host. The coordinator, which imports the
plan's functions to check them, and the other workers import it at once."""
import sys
import time

if "--name" in sys.argv and sys.argv[sys.argv.index("--name") + 1:][:1] == ["w2"]:
    time.sleep(8.0)


def tag(record: dict) -> dict:
    return {**record, "slow": True}
