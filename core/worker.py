"""`python -m core.worker --run-id N`: the local backend's worker (core.backends.local.worker).

Kept at this path because it is a documented command: a worker on another machine is started
with it (README, "Parallel trials and workers on other machines").
"""

import sys

from core.backends.local.worker import main

if __name__ == "__main__":
    sys.exit(main(fresh_process=True))
