"""Raw Celery's trigger latency: `.delay()` to the task body starting, no Django anywhere.

    python -m bench.baselines.clock_client BROKER_URL RESULT_BACKEND_URL QUEUE COUNT WARMUP

Sends `bench.clock` (which returns time.time() as its body starts) COUNT times, one at a
time on an idle worker, and prints the latencies in seconds as a JSON list.
"""

import json
import sys
import time

from .raw_celery import configure


def main(argv: list[str]) -> None:
    broker, backend, queue, count, warmup = argv
    app = configure(broker, backend)
    latencies = []
    for number in range(int(warmup) + int(count)):
        sent = time.time()
        started = app.send_task("bench.clock", queue=queue).get(timeout=30, interval=0.01)
        if number >= int(warmup):
            latencies.append(started - sent)
        time.sleep(0.05)  # an idle stack between triggers
    print(json.dumps(latencies), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
