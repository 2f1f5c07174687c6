"""What the peer scripts report about the machine they ran on (shared by compare.py,
ppo_lstm.py and numpy_env.py, which import it from this folder)."""

import os
import platform

import numpy as np


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else the architecture."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def runtime():
    """The fields every peer's JSON ends with: NumPy and Python versions, CPU, cores."""
    return {
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
    }
