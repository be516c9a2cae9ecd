"""What the machine was doing while a benchmark ran: its 1-minute load average at the start and the end, so a
result says whether its absolute times are the machine's speed or inflated by other jobs."""

from __future__ import annotations

import os


class LoadWatch:
    """``LoadWatch()`` at the start; ``note()`` at the end gives the sentence for the results file. The benchmark's
    own threads count in the load: above cores + 1, other jobs shared the cores."""

    def __init__(self):
        self.start = os.getloadavg()[0]

    def note(self) -> str:
        end, cores = os.getloadavg()[0], os.cpu_count()
        if max(self.start, end) <= cores + 1:
            verdict = "no other heavy job ran: absolute times are this machine's"
        else:
            verdict = "other jobs shared the cores: absolute times are inflated, ratios are side by side in one run"
        return (f"Load average {self.start:.1f} at the start, {end:.1f} at the end ({cores} cores, the benchmark's "
                f"own threads included): {verdict}.")
