"""The timing loop the Python peers of bench/run_cpu.sh share (standard library only, so the benchmark venv's
scripts can import it): untimed warm-up calls, then timed ones, as bench/train_steps leaves its first step out."""
import statistics
import time


def median_seconds(step, timed, untimed):
    """Calls step() untimed + timed times. Returns the median seconds of the timed calls and what the last call
    returned (a loss, to report and to make sure the work was done)."""
    times, result = [], None
    for s in range(untimed + timed):
        t0 = time.perf_counter()
        result = step()
        if s >= untimed:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), result
