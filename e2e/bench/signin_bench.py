"""Sign-in storm against one auth process: how much memory it takes and what it answers.

Signs up one user, then sends BENCH_SIGNINS concurrent sign-ins (half with the right
password, half wrong) and again as many, sampling the process's resident memory the whole
time. Prints the answers by status, the latency, and auth's peak RSS (VmHWM). Asserts
nothing: `make bench` prints figures.
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BASE = os.environ["BENCH_AUTH_URL"]
PID = int(os.environ["BENCH_AUTH_PID"])
SIGNINS = int(os.environ.get("BENCH_SIGNINS", "200"))


def post(path, body):
    request = urllib.request.Request(
        BASE + path, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as err:
        status, headers = err.code, err.headers
    except OSError as err:
        return f"error {type(err).__name__}", time.monotonic() - started, None
    return status, time.monotonic() - started, headers.get("retry-after")


def status_field(field):
    with open(f"/proc/{PID}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory(field):
    """A memory field of /proc/PID/status in MB (the kernel gives kB)."""
    return status_field(field) // 1024


def main():
    email = f"bench-{int(time.time())}@example.com"
    status, _, _ = post("/api/users/signup", {"email": email, "password": "correct horse"})
    print(f"signin-bench: sign-up {status}; idle RSS {memory('VmRSS')} MB")
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append(memory("VmRSS"))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for round_ in (1, 2):
        bodies = [{"email": email, "password": "correct horse" if i % 2 else "wrong horse!"} for i in range(SIGNINS)]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=SIGNINS) as pool:
            answers = list(pool.map(lambda body: post("/api/users/signin", body), bodies))
        took = time.monotonic() - started
        by_status = {}
        for status, _, _ in answers:
            by_status[status] = by_status.get(status, 0) + 1
        latencies = sorted(seconds for _, seconds, _ in answers)
        retry = sum(1 for status, _, after in answers if status == 503 and after)
        print(
            f"signin-bench: round {round_}: {SIGNINS} concurrent sign-ins in {took:.1f}s: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items(), key=str))
            + f"; 503s with Retry-After: {retry}; p50 {latencies[len(latencies) // 2] * 1000:.0f} ms,"
            + f" p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms"
        )
    done.set()
    sampler.join()
    print(
        f"signin-bench: auth RSS peak {memory('VmHWM')} MB (sampled max {max(samples)} MB, now {memory('VmRSS')} MB);"
        f" threads {status_field('Threads')}; goal: under 200 MB"
    )


if __name__ == "__main__":
    main()
